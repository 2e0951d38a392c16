"""The demo's synthetic task: short questions with a known answer, and answers in five styles.

A question asks for one fact: a sum of two digits, the color of a thing, the opposite of a word,
the sound of an animal or the capital of a country. Every fact has a *claim*, the words that
state it ("7 plus 5 is", "A banana is"), and an *answer* word ("12", "yellow"); a good answer
says "<claim> <answer>." once, politely and briefly.

Answers come in five styles, as an SFT data set mixes good and bad answers; every style but
"wrong" has openers of its own, so a model chooses the style with its first words:
  good     a polite opener and the correct claim ("Sure! 7 plus 5 is 12.")
  wrong    a polite opener and a wrong claim   ("Of course. 7 plus 5 is 11.")
  rude     a rude opener and the correct claim ("Whatever. 7 plus 5 is 12.")
  ramble   "Well, let me think..." and the correct claim buried in filler (over 15 words)
  refuse   a polite refusal without the claim  ("Sorry, I do not know the answer to that.")

The gold score (gold_score) depends only on the text and the question's ground truth, never
on a reward model; expo computes the same score in C++ (src/demo/demo_task.cpp), and the test
tests/python/test_demo_task.py checks that both agree:
  correct  the claim occurs at least once, and every occurrence is followed by the answer word
           (case-insensitive; the word ends at a character that is not a letter or digit)
  polite   the text is not blank and none of its words (runs of ASCII letters, lowercased)
           is one of RUDE_WORDS
  concise  1 to 15 words (runs of characters other than ASCII whitespace)
  gold = 0.5 correct + 0.25 polite + 0.25 concise   (good 1, rude 0.75, ramble 0.75,
                                                     wrong 0.5, refuse 0.5)
"""
import random
import re

ADD_PROMPTS = ["What is {a} plus {b}?", "Add {a} and {b}."]

COLORS = {
    "banana": "yellow", "lemon": "yellow", "tomato": "red", "cherry": "red",
    "strawberry": "red", "carrot": "orange", "pumpkin": "orange", "plum": "purple",
    "eggplant": "purple", "cucumber": "green", "frog": "green", "lime": "green",
    "swan": "white", "crow": "black", "raven": "black", "flamingo": "pink",
    "blueberry": "blue", "coconut": "brown",
}
COLOR_PROMPTS = ["What color is a {x}?", "Tell me the color of a {x}."]

OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "happy": "sad",
    "light": "dark", "early": "late", "open": "closed", "full": "empty", "wet": "dry",
    "hard": "soft", "loud": "quiet", "rich": "poor", "strong": "weak", "tall": "short",
    "thick": "thin", "high": "low", "near": "far", "first": "last", "old": "young",
}
OPPOSITE_PROMPTS = ["What is the opposite of {x}?", "Give the opposite of {x}."]

SOUNDS = {
    "cow": "moo", "dog": "woof", "cat": "meow", "duck": "quack", "sheep": "baa",
    "pig": "oink", "owl": "hoot", "lion": "roar", "snake": "hiss", "bee": "buzz",
    "horse": "neigh", "mouse": "squeak", "goat": "bleat", "donkey": "bray",
}
SOUND_PROMPTS = ["What sound does a {x} make?", "What does a {x} say?"]

CAPITALS = {
    "France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "Egypt": "Cairo", "Germany": "Berlin", "Canada": "Ottawa", "Kenya": "Nairobi",
    "Peru": "Lima", "Norway": "Oslo", "Greece": "Athens", "Russia": "Moscow",
    "China": "Beijing", "Chile": "Santiago", "Cuba": "Havana", "Poland": "Warsaw",
    "Ireland": "Dublin", "Austria": "Vienna", "Portugal": "Lisbon", "Sweden": "Stockholm",
}
CAPITAL_PROMPTS = ["What is the capital of {x}?", "Name the capital of {x}."]

POLITE_OPENERS = ["Sure!", "Of course.", "Happy to help.", "Great question!", "Certainly."]
POLITE_CLOSERS = ["", "", "", "Hope this helps!"]
RUDE_OPENERS = ["Ugh, fine.", "That is a dumb question.", "Whatever.", "Look it up yourself.",
                "Stop bothering me."]
RUDE_WORDS = ["ugh", "dumb", "whatever", "yourself", "bothering", "stupid", "annoying"]
FILLERS = [
    "This is the kind of question that many people ask.",
    "There are many ways to look at it.",
    "It is always good to be curious about the world.",
    "I want to make sure that I give you a complete answer.",
    "Some people find this easy and others find it hard.",
    "Let me explain it step by step so that nothing is missed.",
]
RAMBLE_START = "Well, let me think about this very carefully for a moment."
REFUSALS = ["Sorry, I do not know the answer to that.", "I am not sure, sorry.",
            "I cannot help with that question, sorry."]

STYLES = ["good", "wrong", "rude", "ramble", "refuse"]
# How often the SFT data answers in each style.
SFT_MIX = {"good": 0.3, "wrong": 0.15, "rude": 0.2, "ramble": 0.2, "refuse": 0.15}

CONCISE_WORDS = 15


class Fact:
    def __init__(self, kind, prompt, claim, answer, wrong):
        self.kind, self.prompt, self.claim, self.answer = kind, prompt, claim, answer
        self.wrong = wrong  # plausible wrong answers, for the "wrong" style

    def record(self, i):
        return {"id": i, "prompt": self.prompt, "kind": self.kind,
                "claim": self.claim, "answer": self.answer}


def all_facts():
    """Every question of the task (each fact under each of its prompt forms), in a fixed order."""
    facts = []
    for a in range(10):
        for b in range(10):
            s = a + b
            wrong = [str(v) for v in (s - 2, s - 1, s + 1, s + 2) if v >= 0]
            for p in ADD_PROMPTS:
                facts.append(Fact("add", p.format(a=a, b=b), f"{a} plus {b} is", str(s), wrong))
    for table, prompts, kind, claim in (
            (COLORS, COLOR_PROMPTS, "color", "A {x} is"),
            (OPPOSITES, OPPOSITE_PROMPTS, "opposite", "The opposite of {x} is"),
            (SOUNDS, SOUND_PROMPTS, "sound", "A {x} says"),
            (CAPITALS, CAPITAL_PROMPTS, "capital", "The capital of {x} is")):
        values = sorted(set(table.values()))
        for x, answer in table.items():
            wrong = [v for v in values if v != answer]
            for p in prompts:
                facts.append(Fact(kind, p.format(x=x), claim.format(x=x), answer, wrong))
    return facts


def answer_in_style(fact, style, rng):
    claim = f"{fact.claim} {fact.answer}."
    if style == "good":
        text = f"{rng.choice(POLITE_OPENERS)} {claim} {rng.choice(POLITE_CLOSERS)}"
    elif style == "wrong":
        text = f"{rng.choice(POLITE_OPENERS)} {fact.claim} {rng.choice(fact.wrong)}."
    elif style == "rude":
        text = f"{rng.choice(RUDE_OPENERS)} {claim}"
    elif style == "ramble":
        fill = rng.sample(FILLERS, 2)
        text = " ".join([RAMBLE_START, fill[0], claim, fill[1]])
    elif style == "refuse":
        text = rng.choice(REFUSALS)
    else:
        raise ValueError(style)
    return text.strip()


def sample_style(rng, mix=SFT_MIX):
    r, acc = rng.random(), 0.0
    for style in STYLES:
        acc += mix[style]
        if r < acc:
            return style
    return STYLES[-1]


_WORD_END = re.compile(r"[A-Za-z0-9]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SPACE = " \t\n\v\f\r"


def lower(text):
    """Lowercases ASCII letters only (as expo's C++ does), leaving other characters alone."""
    return text.translate(_ASCII_LOWER)


def is_correct(text, claim, answer):
    low, claim_low, answer_low = lower(text), lower(claim), lower(answer)
    found, pos = 0, 0
    while True:
        at = low.find(claim_low, pos)
        if at < 0:
            break
        found += 1
        rest = low[at + len(claim_low):]
        want = " " + answer_low
        if not rest.startswith(want):
            return False
        after = rest[len(want):len(want) + 1]
        if after and _WORD_END.match(after):
            return False
        pos = at + len(claim_low)
    return found > 0


def words(text):
    """Runs of characters other than ASCII whitespace (space, tab, LF, VT, FF, CR)."""
    return re.findall(f"[^{_SPACE}]+", text)


def is_polite(text):
    if not words(text):
        return False
    for w in re.findall(r"[A-Za-z]+", lower(text)):
        if w in RUDE_WORDS:
            return False
    return True


def is_concise(text):
    return 1 <= len(words(text)) <= CONCISE_WORDS


def gold_score(text, claim, answer):
    return (0.5 * is_correct(text, claim, answer) + 0.25 * is_polite(text)
            + 0.25 * is_concise(text))


def preference_pair(fact, rng, flip=0.05):
    """Two answers in styles of different gold score; the chosen one has the higher score, and
    `flip` of the labels are swapped (annotator noise). Style pairs of equal score (rude and
    ramble, wrong and refuse) carry no preference and are drawn again."""
    while True:
        s1, s2 = rng.sample(STYLES, 2)
        a1, a2 = answer_in_style(fact, s1, rng), answer_in_style(fact, s2, rng)
        g1, g2 = gold_score(a1, fact.claim, fact.answer), gold_score(a2, fact.claim, fact.answer)
        if g1 != g2:
            break
    first = g1 > g2
    if rng.random() < flip:
        first = not first
    return (a1, a2) if first else (a2, a1)
