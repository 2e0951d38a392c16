#!/usr/bin/env python3
"""Writes tests/golden/demo/gold_cases.jsonl: answers of the demo's task with the gold score
parts that demo/train/task.py (the definition the models were trained on) gives them. The C++
scorer (src/demo/demo_task.cpp) must agree on every case (tests/demo_task_test.cpp).

Cases: every fourth fact's answers in every style, and those answers mutated at random: cases changed,
words cut, characters inserted (letters, digits, punctuation, ASCII and Unicode whitespace,
non-ASCII letters), claims repeated with other answers, rude words glued to others.

    /usr/bin/python3 tests/python/make_demo_gold_cases.py
"""
import json
import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "demo" / "train"))
import task  # noqa: E402

INSERTS = ["a", "Z", "7", ".", "!", " ", "  ", "\t", "\n", "\v", "\f", "\r", "\x1c", "\x85",
           "\u00a0", "\u2003", "\u00e9", "\u0130", "\u00c9t\u00e9", "ugh", "Dumb", "yourself",
           "\ufffd", "-", "'"]


def mutate(text, fact, rng):
    kind = rng.randrange(7)
    if kind == 0:
        return "".join(c.upper() if rng.random() < 0.3 else c for c in text)
    if kind == 1:
        cut = rng.randrange(len(text) + 1)
        return text[:cut]
    if kind == 2:
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(INSERTS) + text[at:]
    if kind == 3:
        other = rng.choice(fact.wrong + [fact.answer])
        return f"{text} {fact.claim} {other}{rng.choice(['', '.', 'x', '1', ' '])}"
    if kind == 4:
        return rng.choice(INSERTS).join(text.split(" "))
    if kind == 5:
        return text.replace(fact.answer, fact.answer + rng.choice(["s", "0", "", ".", "\u00e9"]))
    return " ".join(rng.sample(text.split(" "), len(text.split(" ")))) if text else text


def main():
    rng = random.Random(7)
    cases = []
    for fact in task.all_facts()[::4]:
        for style in task.STYLES:
            text = task.answer_in_style(fact, style, rng)
            for t in [text] + [mutate(text, fact, rng) for _ in range(2)]:
                cases.append((t, fact))
    for t in ["", " ", "\n\t", "\u00a0", "x" * 3, "one two three four five six seven eight nine "
              "ten eleven twelve thirteen fourteen fifteen", "a b c d e f g h i j k l m n o p"]:
        cases.append((t, rng.choice(task.all_facts())))
    out = ROOT / "tests" / "golden" / "demo" / "gold_cases.jsonl"
    with open(out, "w") as f:
        for text, fact in cases:
            f.write(json.dumps({
                "text": text, "claim": fact.claim, "answer": fact.answer,
                "correct": task.is_correct(text, fact.claim, fact.answer),
                "polite": task.is_polite(text), "concise": task.is_concise(text),
                "gold": task.gold_score(text, fact.claim, fact.answer)}) + "\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
