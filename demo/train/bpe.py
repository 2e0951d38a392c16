"""A byte-level BPE tokenizer trained on the demo's corpus, written as Hugging Face files.

GPT-2's scheme: text is split at special tokens, then into pre-tokens by GPT-2's regex, each
pre-token's bytes are mapped to printable characters (bytes_to_unicode) and merged by rank.
The corpus is ASCII, so the regex's letter and number classes are [A-Za-z] and [0-9] here;
train() refuses other text. Merges never join a digit to anything, so numbers stay one token
per digit, as the models have to add them.

Ids: 0..255 bytes, then the merges in rank order, then the special tokens
<|begin_of_text|> (bos), <|im_start|>, <|im_end|> (eos, end of turn) and <|pad|>.
"""
import collections
import json
import re

SPECIALS = ["<|begin_of_text|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def bytes_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


BYTE_CHAR = bytes_to_unicode()


def pretokens(text):
    return ["".join(BYTE_CHAR[b] for b in piece.encode()) for piece in PRETOKEN.findall(text)]


class Bpe:
    def __init__(self, merges):
        self.merges = merges  # list of (left, right) in rank order
        self.rank = {pair: i for i, pair in enumerate(merges)}
        self.vocab = {BYTE_CHAR[b]: b for b in range(256)}
        for left, right in merges:
            self.vocab[left + right] = len(self.vocab)
        for s in SPECIALS:
            self.vocab[s] = len(self.vocab)
        self.cache = {}

    @property
    def size(self):
        return len(self.vocab)

    def id(self, special):
        return self.vocab[special]

    def _word(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = min(range(len(parts) - 1),
                       key=lambda i: self.rank.get((parts[i], parts[i + 1]), 1 << 30))
            if (parts[best], parts[best + 1]) not in self.rank:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        """Ids of `text`; special tokens written in the text become their ids (no bos added)."""
        ids = []
        for piece in re.split("(" + "|".join(re.escape(s) for s in SPECIALS) + ")", text):
            if piece in SPECIALS:
                ids.append(self.vocab[piece])
            elif piece:
                for word in pretokens(piece):
                    ids.extend(self._word(word))
        return ids

    def decode(self, ids):
        inverse = {v: k for k, v in self.vocab.items()}
        byte_of = {c: b for b, c in BYTE_CHAR.items()}
        out = bytearray()
        for i in ids:
            tok = inverse[i]
            if tok in SPECIALS:
                continue
            out.extend(byte_of[c] for c in tok)
        return out.decode("utf-8", errors="replace")


def train(texts, vocab_size):
    """Merges learned from `texts` until the vocabulary (bytes, merges, specials) has
    vocab_size entries or no pair occurs twice. Ties between pairs go to the smaller pair."""
    counts = collections.Counter()
    for t in texts:
        if not t.isascii():
            raise ValueError(f"demo corpus must be ASCII: {t!r}")
        counts.update(pretokens(t))
    words = {w: list(w) for w in counts}
    merges = []
    target = vocab_size - 256 - len(SPECIALS)
    while len(merges) < target:
        pairs = collections.Counter()
        for w, parts in words.items():
            for a, b in zip(parts, parts[1:]):
                if a[-1].isdigit() or b[0].isdigit():
                    continue
                pairs[(a, b)] += counts[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        for w, parts in words.items():
            i, out = 0, []
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    out.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            words[w] = out
    return Bpe(merges)


def _added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


def write_files(bpe, folder):
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json, as transformers'
    PreTrainedTokenizerFast writes them for a byte-level BPE with a ChatML template."""
    bos, eos, pad = "<|begin_of_text|>", "<|im_end|>", "<|pad|>"
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    vocab = {k: v for k, v in bpe.vocab.items() if k not in SPECIALS}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added(bpe.id(s), s) for s in SPECIALS],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bpe.id(bos)], "tokens": [bos]}},
        },
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in bpe.merges]},
    }
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": bos, "eos_token": eos,
              "pad_token": pad, "clean_up_tokenization_spaces": False,
              "model_max_length": 256, "tokenizer_class": "PreTrainedTokenizerFast",
              "chat_template": CHAT_TEMPLATE}
    special = {"bos_token": bos, "eos_token": eos, "pad_token": pad}
    for name, obj in (("tokenizer.json", tokenizer), ("tokenizer_config.json", config),
                      ("special_tokens_map.json", special)):
        with open(folder / name, "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")


def render_chat(messages, add_generation_prompt):
    """CHAT_TEMPLATE rendered by hand (the template is this simple)."""
    text = SPECIALS[0]
    for m in messages:
        text += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    if add_generation_prompt:
        text += "<|im_start|>assistant\n"
    return text
