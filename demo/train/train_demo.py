#!/usr/bin/env python3
"""Trains the models of `expo demo`: a tokenizer, an SFT model, a reward model and three DPO
models, on the synthetic task of task.py, and writes them as Hugging Face folders.

    /usr/bin/python3 demo/train/train_demo.py --out demo/models

Needs python3-torch and python3-numpy from Debian's archive (and, for speed, an optimized BLAS
such as libopenblas0-pthread: torch then trains in minutes on two cores; with the reference
BLAS it is about 30 times slower). Everything is seeded: on the same machine, library
versions and thread count the files come out byte for byte the same (demo/models/SHA256SUMS).

What is trained, in order:
 1. a byte-level BPE tokenizer (bpe.py) on the task's prompts and answers, with a ChatML
    chat template;
 2. SFT: a Llama (LlamaForCausalLM, about 0.9M parameters) trained from random weights on
    prompts answered in a mix of styles (task.SFT_MIX: 30% good, the rest wrong, rude,
    rambling or refusing), loss on the answer tokens;
 3. a preference set: pairs of answers in two styles, the chosen one with the higher gold
    score (pairs of equal score left out, 5% of labels flipped);
 4. a Bradley-Terry reward model (LlamaForSequenceClassification) initialized from the SFT
    model, trained on the whole preference set; its accuracy on held-out pairs is printed;
 5. DPO from the SFT model on the first 10%, the first 20% and all of the preference set,
    with the same hyperparameters and number of epochs (so the partial ones take fewer steps);
 6. an evaluation in torch: answers sampled at temperature 1 for alpha in a grid, per DPO
    model, with their mean gold score and reward (the weights rounded to BF16 first, as
    shipped). expo demo measures the same with expo's engine.
"""
import argparse
import hashlib
import json
import math
import os
import pathlib
import random
import sys
import time

# One BLAS thread: faster for these small matrices than two, and the same sums on every run.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bpe  # noqa: E402
import llama  # noqa: E402
import task  # noqa: E402

PAIRS_TOTAL = 4000     # preference pairs for DPO and the reward model
PAIRS_HELDOUT = 600    # pairs only for the reward model's accuracy
SUBSETS = {"dpo-10": 0.1, "dpo-20": 0.2, "dpo-full": 1.0}


def log(*a):
    print(*a, flush=True)


def prompt_ids(tok, prompt):
    return tok.encode(bpe.render_chat([{"role": "user", "content": prompt}], True))


def conversation_ids(tok, prompt, answer):
    return tok.encode(bpe.render_chat(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], False))


def pad_batch(seqs, pad):
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad, dtype=torch.long)
    mask = torch.zeros(len(seqs), t, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def answer_batch(tok, items, pad):
    """items: (prompt, answer). Ids of prompt + answer + <|im_end|>, and a mask over the
    answer tokens and the <|im_end|> (the tokens the loss counts)."""
    eos = tok.id("<|im_end|>")
    seqs, starts = [], []
    for prompt, answer in items:
        head = prompt_ids(tok, prompt)
        seqs.append(head + tok.encode(answer) + [eos])
        starts.append(len(head))
    ids, mask = pad_batch(seqs, pad)
    target = torch.zeros_like(mask)
    for i, (s, start) in enumerate(zip(seqs, starts)):
        target[i, start:len(s)] = 1
    return ids, mask, target


def sequence_logprob(params, spec, ids, mask, target):
    """Sum over the target tokens of log p(token | tokens before it)."""
    lg = llama.logits(params, spec, ids[:, :-1], mask[:, :-1])
    lp = torch.log_softmax(lg.float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    return (lp * target[:, 1:]).sum(-1)


def adam(params, lr, wd=0.0):
    return torch.optim.AdamW(list(params.values()), lr=lr, betas=(0.9, 0.95), weight_decay=wd)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_sft(tok, spec, facts, args, seed):
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    params = {k: v.requires_grad_() for k, v in llama.init_params(spec, gen).items()}
    opt = adam(params, args.sft_lr, wd=0.01)
    pad = tok.id("<|pad|>")
    t0, avg = time.time(), None
    for step in range(args.sft_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.sft_steps, args.sft_lr, 50)
        items = []
        for _ in range(args.batch):
            fact = rng.choice(facts)
            items.append((fact.prompt, task.answer_in_style(fact, task.sample_style(rng), rng)))
        ids, mask, target = answer_batch(tok, items, pad)
        lg = llama.logits(params, spec, ids[:, :-1], mask[:, :-1])
        loss = F.cross_entropy(lg.reshape(-1, spec.vocab), ids[:, 1:].reshape(-1),
                               reduction="none")
        loss = (loss * target[:, 1:].reshape(-1)).sum() / target[:, 1:].sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        avg = loss.item() if avg is None else 0.95 * avg + 0.05 * loss.item()
        if step % 100 == 0 or step == args.sft_steps - 1:
            log(f"  sft step {step:5d}  loss {avg:.4f}  {time.time() - t0:6.1f} s")
    return {k: v.detach() for k, v in params.items()}


def make_pairs(facts, seed):
    rng = random.Random(seed)
    pairs = []
    for _ in range(PAIRS_TOTAL + PAIRS_HELDOUT):
        fact = rng.choice(facts)
        chosen, rejected = task.preference_pair(fact, rng)
        pairs.append((fact.prompt, chosen, rejected))
    return pairs[:PAIRS_TOTAL], pairs[PAIRS_TOTAL:]


def reward_batch(tok, items, pad):
    return pad_batch([conversation_ids(tok, p, a) for p, a in items], pad)


def train_reward(tok, spec, sft, pairs, heldout, args, seed):
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    params = {k: v.clone() for k, v in sft.items() if k != "lm_head.weight"}
    params["score.weight"] = torch.randn(1, spec.hidden, generator=gen) * 0.02
    params = {k: v.requires_grad_() for k, v in params.items()}
    opt = adam(params, args.rm_lr)
    pad = tok.id("<|pad|>")
    steps = args.rm_epochs * len(pairs) // args.batch
    order, step, t0 = [], 0, time.time()
    for epoch in range(args.rm_epochs):
        perm = list(range(len(pairs)))
        rng.shuffle(perm)
        order += perm
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, args.rm_lr, 20)
        batch = [pairs[i] for i in order[step * args.batch:(step + 1) * args.batch]]
        ids, mask = reward_batch(tok, [(p, c) for p, c, _ in batch] + [(p, r) for p, _, r in batch],
                                 pad)
        r = llama.rewards(params, spec, ids, mask)
        n = len(batch)
        loss = -F.logsigmoid(r[:n] - r[n:]).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"  reward step {step:4d}/{steps}  loss {loss.item():.4f}  {time.time() - t0:6.1f} s")
    params = {k: v.detach() for k, v in params.items()}
    with torch.no_grad():
        wins = 0
        for i in range(0, len(heldout), 100):
            batch = heldout[i:i + 100]
            ids, mask = reward_batch(
                tok, [(p, c) for p, c, _ in batch] + [(p, r) for p, _, r in batch], pad)
            r = llama.rewards(params, spec, ids, mask)
            wins += int((r[:len(batch)] > r[len(batch):]).sum())
    log(f"  reward model: held-out pair accuracy {wins / len(heldout):.3f} ({len(heldout)} pairs)")
    return params, wins / len(heldout)


def train_dpo(tok, spec, sft, pairs, args, seed):
    rng = random.Random(seed)
    params = {k: v.clone().requires_grad_() for k, v in sft.items()}
    if args.dpo_optimizer == "sgd":
        opt = torch.optim.SGD(list(params.values()), lr=args.dpo_lr, momentum=0.9)
    else:
        opt = adam(params, args.dpo_lr)
    pad = tok.id("<|pad|>")
    order = []
    for _ in range(args.dpo_epochs):
        perm = list(range(len(pairs)))
        rng.shuffle(perm)
        order += perm
    steps = len(order) // args.batch
    t0 = time.time()
    for step in range(steps):
        batch = [pairs[i] for i in order[step * args.batch:(step + 1) * args.batch]]
        n = len(batch)
        ids, mask, target = answer_batch(
            tok, [(p, c) for p, c, _ in batch] + [(p, r) for p, _, r in batch], pad)
        with torch.no_grad():
            ref = sequence_logprob(sft, spec, ids, mask, target)
        pol = sequence_logprob(params, spec, ids, mask, target)
        margin = args.beta * ((pol[:n] - ref[:n]) - (pol[n:] - ref[n:]))
        loss = -F.logsigmoid(margin).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            acc = (margin > 0).float().mean().item()
            log(f"  dpo step {step:4d}/{steps}  loss {loss.item():.4f}  margin>0 {acc:.2f}  "
                f"{time.time() - t0:6.1f} s")
    return {k: v.detach() for k, v in params.items()}, steps


def write_model(folder, params, spec, tok, reward=False):
    folder.mkdir(parents=True, exist_ok=True)
    bos, eos, pad = tok.id("<|begin_of_text|>"), tok.id("<|im_end|>"), tok.id("<|pad|>")
    llama.write_safetensors(folder / "model.safetensors", params)
    with open(folder / "config.json", "w") as f:
        json.dump(spec.config(bos, eos, pad, reward), f, indent=2)
        f.write("\n")
    if not reward:
        with open(folder / "generation_config.json", "w") as f:
            json.dump({"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad}, f, indent=2)
            f.write("\n")
    bpe.write_files(tok, folder)


def extrapolate(t0, t1, alpha):
    """theta1 + alpha (theta1 - theta0) in float64, rounded to BF16 (inputs BF16-exact)."""
    return {k: (t1[k].double() + alpha * (t1[k].double() - t0[k].double())).float()
            .to(torch.bfloat16).float() for k in t1}


def evaluate(tok, spec, rspec, policy, reward, facts, args, seed):
    prompts = [prompt_ids(tok, f.prompt) for f in facts]
    gen = torch.Generator().manual_seed(seed)
    answers = []
    for i in range(0, len(prompts), 128):
        new = llama.generate(policy, spec, prompts[i:i + 128], tok.id("<|im_end|>"),
                             args.max_new, gen, temperature=1.0)
        answers += [tok.decode(x) for x in new]
    golds = [task.gold_score(a, f.claim, f.answer) for a, f in zip(answers, facts)]
    with torch.no_grad():
        rs = []
        for i in range(0, len(facts), 128):
            ids, mask = reward_batch(tok, [(f.prompt, a) for f, a in
                                           zip(facts[i:i + 128], answers[i:i + 128])],
                                     tok.id("<|pad|>"))
            rs += llama.rewards(reward, rspec, ids, mask).tolist()
    words = sum(len(a.split()) for a in answers) / len(answers)
    return sum(golds) / len(golds), sum(rs) / len(rs), words, answers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="demo/models")
    ap.add_argument("--seed", type=int, default=20240426)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--sft-steps", type=int, default=1500)
    ap.add_argument("--sft-lr", type=float, default=2e-3)
    ap.add_argument("--rm-epochs", type=int, default=4)
    ap.add_argument("--rm-lr", type=float, default=1e-3)
    ap.add_argument("--dpo-epochs", type=int, default=2)
    ap.add_argument("--dpo-lr", type=float, default=2e-5)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--dpo-optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--eval-prompts", type=int, default=256)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--alphas", default="0,1,2,4,8,16,32")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--sft-from", help="development: load the SFT model from this folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    out = pathlib.Path(args.out)
    start = time.time()

    facts = task.all_facts()
    rng = random.Random(args.seed)
    corpus = [f.prompt for f in facts] + ["user", "assistant"]
    for f in facts:
        for style in task.STYLES:
            corpus.append(task.answer_in_style(f, style, rng))
    tok = bpe.train(corpus, 512)
    spec = llama.Spec(vocab=tok.size)
    lens = [len(tok.encode(t)) for t in corpus]
    log(f"tokenizer: {tok.size} tokens ({len(tok.merges)} merges); corpus {len(corpus)} texts, "
        f"{sum(lens) / len(lens):.1f} tokens each on average")

    log(f"1. SFT: {args.sft_steps} steps of {args.batch}")
    if args.sft_from:
        sft = llama.read_safetensors(pathlib.Path(args.sft_from) / "model.safetensors")
    else:
        sft = train_sft(tok, spec, facts, args, args.seed + 1)
    sft = llama.to_bf16(sft)

    pairs, heldout = make_pairs(facts, args.seed + 2)
    log(f"2. reward model on {len(pairs)} pairs, {args.rm_epochs} epochs")
    reward, accuracy = train_reward(tok, spec, sft, pairs, heldout, args, args.seed + 3)
    reward = llama.to_bf16(reward)

    dpo = {}
    for name, fraction in SUBSETS.items():
        subset = pairs[:round(len(pairs) * fraction)]
        log(f"3. {name}: DPO on {len(subset)} pairs, {args.dpo_epochs} epochs")
        model, steps = train_dpo(tok, spec, sft, subset, args, args.seed + 4)
        dpo[name] = llama.to_bf16(model)

    write_model(out / "sft", sft, spec, tok)
    write_model(out / "reward", reward, spec, tok, reward=True)
    for name, model in dpo.items():
        write_model(out / name, model, spec, tok)
    eval_facts = list(facts)
    random.Random(args.seed + 5).shuffle(eval_facts)
    with open(out / "prompts.jsonl", "w") as f:
        for i, fact in enumerate(eval_facts):
            f.write(json.dumps(fact.record(i)) + "\n")
    log(f"trained and written in {time.time() - start:.0f} s")

    if not args.skip_eval:
        eval_facts = eval_facts[:args.eval_prompts]
        log(f"4. evaluation in torch: {len(eval_facts)} prompts, temperature 1")
        log(f"   {'model':9s} {'alpha':>6s} {'gold':>6s} {'reward':>7s} {'words':>6s}")
        for name, model in dpo.items():
            for alpha in [float(a) for a in args.alphas.split(",")]:
                policy = extrapolate(sft, model, alpha)
                gold, rew, words, answers = evaluate(tok, spec, spec, policy, reward, eval_facts,
                                                     args, args.seed + 6)
                log(f"   {name:9s} {alpha:6g} {gold:6.3f} {rew:7.3f} {words:6.1f}   "
                    f"{answers[0][:70]!r}")
    sums = []
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "SHA256SUMS":
            sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(out)}")
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    log(f"done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
