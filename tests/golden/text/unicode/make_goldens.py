#!/usr/bin/python3
"""Golden renderings of Python's Unicode string rules for tests/jinja_test.cpp, made by jinja2.

Each case renders one template over one tricky string `s` with jinja2's
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), as transformers does: the
str methods upper, lower, casefold, title, capitalize, swapcase and the predicates isalpha,
isdigit, isdecimal, isnumeric, isalnum, isspace, isupper, islower, istitle, plus the jinja2
filters upper, lower, title and capitalize. The strings cover full case mappings (ligatures,
sharp s, dotted I), titlecase digraphs, final sigma, Cherokee, Georgian, Deseret, fullwidth and
non-ASCII digits, numerals and whitespace. Only characters of Unicode 14 (Debian 12's Python)
are used, so ICU 72 (Unicode 15) agrees.

Regenerate (Debian's python3-jinja2, no network):
  /usr/bin/python3 tests/golden/text/unicode/make_goldens.py
"""
import json
import pathlib
import sys
import unicodedata

from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent

STRINGS = [
    "hello world", "Hello World", "HELLO", "",
    "ﬁ ﬂ ﬀ ﬃ", "straße", "Straße", "ß", "İstanbul", "ıi", "ŉ", "ǰ",
    "ǆ ǅ Ǆ", "ǳ", "ǉubljana", "ΐ", "ᾳ ᾼ ᾀ", "ﬓ", "և",
    "ΣΑΣ", "ΌΣΟΣ Σ", "ὈΔΥΣΣΕΎΣ", "aΣ", "Σa", "a\u0301Σ.", "σς",
    "Ꭰ ꭰ ᏸ", "Ᏸ", "ა ბ Ა", "𐐀𐐨", "ＡＢＣ ａｂｃ", "ƀ ɐ ʃ", "Ⅻ ⅻ ⓐ Ⓐ",
    "৩", "٣٤", "¹²³", "①", "½", "一二三", "Ⅷ", "0x1F", "१२३", "𝟘𝟙",
    "\u00a0", "\u2003", "\u3000", "\u200b", "\x1c\x1d\x1e\x1f", "\x85", "\u2028", " \t\n",
    "ǅungla", "Ǆungla", "Hello ǅ", "they're bill's", "1st 2nd", "a-b c_d",
    "ʼn", "ﬅ", "ﬆ", "\u0345", "Ϊ́", "ǈ", "ᾈ", "Ɐ ɐ", "ꞵ Ꞵ", "ẞ",
    "caf\u0065\u0301", "Ⓜ", "ⓜ", "ª º", "ʰ", "ˆ", "ǃ", "〇", "ｱ", "가나", "あ", "ア",
]

TEMPLATES = [
    "{{ s.upper() }}", "{{ s.lower() }}", "{{ s.casefold() }}", "{{ s.title() }}",
    "{{ s.capitalize() }}", "{{ s.swapcase() }}",
    "{{ s|upper }}", "{{ s|lower }}", "{{ s|title }}", "{{ s|capitalize }}",
    "{{ s.isalpha() }}", "{{ s.isdigit() }}", "{{ s.isdecimal() }}", "{{ s.isnumeric() }}",
    "{{ s.isalnum() }}", "{{ s.isspace() }}", "{{ s.isupper() }}", "{{ s.islower() }}",
    "{{ s.istitle() }}",
]


def main():
    for s in STRINGS:
        for ch in s:
            if unicodedata.category(ch) == "Cn":
                sys.exit(f"{ch!r} is unassigned in this Python's Unicode {unicodedata.unidata_version}")
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    cases = []
    for template in TEMPLATES:
        compiled = env.from_string(template)
        for s in STRINGS:
            cases.append({"template": template, "s": s, "expected": compiled.render(s=s)})
    out = {
        "generator": "tests/golden/text/unicode/make_goldens.py",
        "python": sys.version.split()[0],
        "unicode": unicodedata.unidata_version,
        "cases": cases,
    }
    (HERE / "goldens.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    main()
