#!/usr/bin/env bash
# expo demo on the trained models of demo/models, as a new user runs it: the paper's
# experiment at toy scale. The numbers the demo reports are recomputed here from its answer
# files with demo/train/task.py (the gold score the models were trained for), and the claims
# the README makes are checked: readable answers at alpha 0, a chosen alpha whose gold score
# is significantly above alpha 0's and not below the fully trained DPO model's.
# Usage: bash tests/cli/demo_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"
root="$(cd "$here/../.." && pwd)"
cd "$work"

start=$(date +%s)
check "demo" "$expo" demo --dir d
took=$(( $(date +%s) - start ))
cp "$work/last.out" d.out
check "demo in about a minute ($took s)" test "$took" -lt 120
check "demo prints the table, the comparison and the answers" bash -c "grep -q 'dpo-10 a=0 ' d.out && grep -q '<- best by reward' d.out && grep -q '^dpo-full ' d.out && grep -q 'gold at the chosen alpha' d.out && grep -q '^Q: ' d.out"
check "demo files" test -f d/demo.json -a -f d/demo.md -a -f d/reward_and_gold_vs_alpha.svg -a -f d/expo-best/model.safetensors -a -f d/search/results.jsonl -a -f d/search-dpo-full/alpha-0/answers.jsonl
check "plot is SVG with both curves" $py -c "
import xml.etree.ElementTree as ET
t = ET.parse('d/reward_and_gold_vs_alpha.svg').getroot()
text = ET.tostring(t, encoding='unicode')
assert 'mean reward' in text and 'mean gold score' in text and 'dpo-full' in text"

# The report's numbers, recomputed from the answers with task.py.
check "demo.json = task.py on the answer files" $py - "$root" <<'PY'
import json, math, sys
sys.path.insert(0, sys.argv[1] + '/demo/train')
import task
d = json.load(open('d/demo.json'))
prompts = {}
for line in open('d/prompts.jsonl'):
    r = json.loads(line); prompts[str(r['id'])] = r
def gold_of(path):
    out = {}
    for line in open(path):
        a = json.loads(line); p = prompts[str(a['id'])]
        out[str(a['id'])] = task.gold_score(a['output'], p['claim'], p['answer'])
    return out
def mean(v): return sum(v) / len(v)
for row in d['alphas']:
    a = row['alpha']
    name = ('%g' % a) if a != int(a) else str(int(a))
    g = gold_of(f'd/search/alpha-{name}/answers.jsonl')
    assert len(g) == len(prompts), (a, len(g))
    assert abs(mean(list(g.values())) - row['gold']) < 1e-12, (a, mean(list(g.values())), row['gold'])
ref = gold_of('d/search-dpo-full/alpha-0/answers.jsonl')
assert abs(mean(list(ref.values())) - d['reference']['gold']) < 1e-12
best = d['best_alpha']
rewards = {r['alpha']: r['reward'] for r in d['alphas']}
assert rewards[best] == max(rewards.values()), 'best alpha is the one with the highest reward'
PY

# Readable answers at alpha 0: printable ASCII sentences, most of them stating the answer.
check "readable answers at alpha 0" $py - "$root" <<'PY'
import json, random, sys
sys.path.insert(0, sys.argv[1] + '/demo/train')
import task
prompts = {str(json.loads(l)['id']): json.loads(l) for l in open('d/prompts.jsonl')}
answers = [json.loads(l) for l in open('d/search/alpha-0/answers.jsonl')]
printable = [a for a in answers if a['output'] and all(32 <= ord(c) < 127 for c in a['output'])]
words = [w for a in answers for w in a['output'].split()]
vocab = set()
for f in task.all_facts():
    rng = random.Random(1)
    for s in task.STYLES:
        for _ in range(20):
            vocab.update(task.answer_in_style(f, s, rng).split())
in_vocab = sum(w in vocab for w in words) / len(words)
correct = sum(task.is_correct(a['output'], prompts[str(a['id'])]['claim'], prompts[str(a['id'])]['answer']) for a in answers)
print(f'{len(printable)}/{len(answers)} printable, {in_vocab:.3f} of words are the task\'s, {correct} correct')
assert len(printable) >= 0.95 * len(answers)
assert in_vocab >= 0.95
assert correct >= 0.6 * len(answers)
PY

# Extrapolating the 10% model raises the gold score: some alpha of the search is above alpha
# 0 by more than three paired standard errors (README: the gold curve).
check "extrapolation raises the gold score significantly" $py - "$root" <<'PY'
import json, math, sys
sys.path.insert(0, sys.argv[1] + '/demo/train')
import task
prompts = {str(json.loads(l)['id']): json.loads(l) for l in open('d/prompts.jsonl')}
def gold(alpha):
    name = ('%g' % alpha) if alpha != int(alpha) else str(int(alpha))
    out = {}
    for line in open(f'd/search/alpha-{name}/answers.jsonl'):
        a = json.loads(line); p = prompts[str(a['id'])]
        out[str(a['id'])] = task.gold_score(a['output'], p['claim'], p['answer'])
    return out
d = json.load(open('d/demo.json'))
g0 = gold(0)
best_z = 0
for row in d['alphas']:
    if row['alpha'] == 0: continue
    g = gold(row['alpha'])
    diff = [g[k] - g0[k] for k in g0]
    m = sum(diff) / len(diff)
    sd = math.sqrt(sum((x - m) ** 2 for x in diff) / (len(diff) - 1))
    z = m / (sd / math.sqrt(len(diff))) if sd > 0 else 0
    print(f"alpha {row['alpha']}: gold {m:+.3f} vs alpha 0, z = {z:.1f}")
    best_z = max(best_z, z)
assert best_z >= 3, best_z
PY

# The other pairs, options and errors.
check "demo --pair 20" "$expo" demo --dir d20 --pair 20 --alphas 0,4 --prompts 32
check "--pair 20 extrapolates dpo-20, compares with dpo-full" bash -c "grep -q 'dpo-20 a=4 ' '$work/last.out' && grep -q '^dpo-full ' '$work/last.out' && test -f d20/dpo-20/model.safetensors"
check "demo --pair full" "$expo" demo --dir dfull --pair full --alphas 0,1 --prompts 16
check "--pair full has no comparison row" bash -c "grep -q 'dpo-full a=1 ' '$work/last.out' && ! grep -q 'for comparison' '$work/last.out' && ! test -d dfull/search-dpo-full"
check "demo --planted still writes the generated models" "$expo" demo --planted --dir dp --alphas 0,1
check "planted layout" test -f dp/aligned/config.json -a -f dp/sft/config.json -a -f dp/reward/config.json
expect_error "--pair 5" "--pair: 5 not in" "$expo" demo --dir dx --pair 5
expect_error "--models without the models" "nothere/sft/config.json: missing.*--models DIR" "$expo" demo --dir dx --models nothere
check "nothing written after a refused run" test ! -e dx
expect_error "demo again without --force" "already exists; use --force" "$expo" demo --dir d20 --pair 20
check "--force over a trained demo folder" "$expo" demo --dir d20 --pair 20 --alphas 0 --prompts 8 --force
mkdir -p mine && echo keep > mine/notes.txt
expect_error "--force over a folder it did not write" "--force replaces only a folder expo demo wrote" "$expo" demo --dir mine --force
check "that folder left alone" test -f mine/notes.txt
check "the shipped models' checksums" bash -c "cd '$root/demo/models' && sha256sum --quiet -c SHA256SUMS"

finish
