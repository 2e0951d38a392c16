// A real llama.cpp as a reference for expo's GGUF files: a small command-line tool around the
// npm package node-llama-cpp (pinned by scripts/install-npm-deps.sh into tests/gguf/node_modules,
// its prebuilt CPU binary only; nothing is built or downloaded at run time). CPU only, a fixed
// number of threads, llama.cpp's log kept out of stdout (its warnings come back in the JSON).
//
//   node tests/gguf/llama_cpp_ref.mjs --model M.gguf --tokenize TEXTS.json
//       TEXTS.json: a JSON list of strings. For each: `special` = model.tokenize(text, true)
//       (text that spells a special token becomes that token), `plain` = model.tokenize(text,
//       false) (special-token text is ordinary text), and both detokenized again. Neither adds
//       BOS: node-llama-cpp calls common_tokenize(vocab, text, add_special = false,
//       parse_special), so a caller that wants llama.cpp's BOS prepends metadata.bos itself when
//       metadata.should_prepend_bos (llama_vocab_get_add_bos) is true. Also the model's metadata.
//   node tests/gguf/llama_cpp_ref.mjs --model M.gguf --greedy PROMPTS.json [--n 8] [--top 10]
//       [--all-logits] [--kv-type F32|F16]
//       PROMPTS.json: a JSON list of token-id lists (given as they are: no BOS added). For each,
//       N greedy tokens (argmax: the greedy sampler alone, no penalty, no top-k/p, no bias), and
//       at each step the top logits (raw, before any sampling) or all of them. The same prompt is
//       also run through sequence.evaluate({temperature: 0}) and its tokens must be the same.
//       The KV cache is F32 unless --kv-type F16 (llama.cpp's own default), to compare closely.
//   node tests/gguf/llama_cpp_ref.mjs --model M.gguf --bench-decode N --prompt-tokens K
//       [--threads T] [--runs R]
//       Decode tokens/s at batch 1 (N greedy tokens after a K-token prompt) and prefill tokens/s,
//       the median over R runs (default 3), with the llama.cpp build.
// --threads T (default 1) for every mode. Exits 1 with llama.cpp's own messages on stderr when
// the model does not load; 2 on a usage error.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const usage = 'usage: llama_cpp_ref.mjs --model M.gguf (--tokenize TEXTS.json | --greedy PROMPTS.json' +
  ' [--n N] [--top K] [--all-logits] [--kv-type F32|F16] | --bench-decode N --prompt-tokens K [--runs R])' +
  ' [--threads T]';

function parseArgs(argv) {
  const flags = new Set(['--all-logits']);
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) fail(2, `unexpected argument ${a}\n${usage}`);
    if (flags.has(a)) { options[a.slice(2)] = true; continue; }
    if (i + 1 >= argv.length) fail(2, `${a} needs a value\n${usage}`);
    options[a.slice(2)] = argv[++i];
  }
  return options;
}

function fail(code, message) {
  process.stderr.write(`llama_cpp_ref: ${message}\n`);
  process.exit(code);
}

function intOption(options, name, fallback) {
  if (options[name] === undefined) return fallback;
  const v = Number(options[name]);
  if (!Number.isInteger(v) || v < 0) fail(2, `--${name} must be a non-negative integer`);
  return v;
}

const options = parseArgs(process.argv.slice(2));
const modes = ['tokenize', 'greedy', 'bench-decode'].filter((m) => options[m] !== undefined);
if (!options.model || modes.length !== 1) fail(2, usage);
const threads = intOption(options, 'threads', 1) || 1;
const kvType = (options['kv-type'] || 'F32').toUpperCase();
if (!['F32', 'F16'].includes(kvType)) fail(2, '--kv-type must be F32 or F16');

let nodeLlamaCpp;
try {
  nodeLlamaCpp = await import('node-llama-cpp');
} catch (e) {
  fail(3, `node-llama-cpp is not installed (bash scripts/install-npm-deps.sh): ${e.message}`);
}
const { getLlama, LlamaLogLevel } = nodeLlamaCpp;

// llama.cpp's log: kept here, reported in the JSON (warnings) or on stderr (a failed load).
const log = [];
const llama = await getLlama({
  gpu: false, // CPU only
  build: 'never', // the prebuilt binary or an error; never compile
  skipDownload: true, // never fetch llama.cpp's source
  usePrebuiltBinaries: true,
  progressLogs: false,
  maxThreads: threads,
  logLevel: LlamaLogLevel.warn,
  logger: (level, message) => log.push(`${level}: ${message.trimEnd()}`),
});

// llama.cpp's log reaches the logger through the event loop, after the call that wrote it.
const settleLog = () => new Promise((resolve) => setTimeout(resolve, 200));

let model;
try {
  model = await llama.loadModel({ modelPath: path.resolve(options.model), gpuLayers: 0, useMmap: true });
} catch (e) {
  process.stderr.write(`llama_cpp_ref: llama.cpp failed to load ${options.model}: ${e.message}\n`);
  await settleLog();
  for (const line of log) process.stderr.write(`  ${line}\n`);
  process.exit(1);
}

function buildInfo() {
  // Package folders as Node finds them (package.json itself is not in node-llama-cpp's exports).
  const require = createRequire(import.meta.url);
  const folder = (name) => (require.resolve.paths(name) || [])
    .map((dir) => path.join(dir, name)).find((dir) => fs.existsSync(path.join(dir, 'package.json')));
  const version = (name) => {
    const dir = folder(name);
    return dir ? JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version : null;
  };
  const binaryPackage = `@node-llama-cpp/${process.platform}-${process.arch}`;
  let commit = null;
  let buildNumber = null;
  try {
    const lib = path.join(folder(binaryPackage), 'bins', `${process.platform}-${process.arch}`, 'libllama-common.so');
    ({ commit, buildNumber } = readLlamaBuild(fs.readFileSync(lib)));
  } catch { /* not an ELF build, or the layout changed: left null */ }
  return {
    node_llama_cpp: version('node-llama-cpp'),
    binary_package: `${binaryPackage}@${version(binaryPackage)}`,
    build_type: llama.buildType, // "prebuilt": the npm binary, not a local build
    llama_cpp_release: llama.llamaCppRelease, // node-llama-cpp's name for the llama.cpp it bundles
    llama_cpp_commit: commit, // LLAMA_COMMIT in libllama-common.so
    llama_cpp_build_number: buildNumber,
    gpu: llama.gpu,
    threads,
    system_info: llama.systemInfo.trim(),
  };
}

// LLAMA_COMMIT (a char* to the short hash) and LLAMA_BUILD_NUMBER (an int) from an ELF64
// little-endian shared library: the dynamic symbols, their addresses mapped to file offsets.
function readLlamaBuild(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) throw new Error('not ELF64 LE');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({
      type: buf.readUInt32LE(o + 4), addr: Number(buf.readBigUInt64LE(o + 0x10)),
      offset: Number(buf.readBigUInt64LE(o + 0x18)), size: Number(buf.readBigUInt64LE(o + 0x20)),
      link: buf.readUInt32LE(o + 0x28), entsize: Number(buf.readBigUInt64LE(o + 0x38)),
    });
  }
  const fileOffset = (addr) => {
    const s = sections.find((x) => x.type !== 8 && x.addr && addr >= x.addr && addr < x.addr + x.size);
    if (!s) throw new Error('address outside the file');
    return s.offset + (addr - s.addr);
  };
  const dynsym = sections.find((s) => s.type === 11); // SHT_DYNSYM
  const strtab = sections[dynsym.link];
  const symbols = {};
  for (let o = dynsym.offset; o < dynsym.offset + dynsym.size; o += dynsym.entsize) {
    const nameAt = strtab.offset + buf.readUInt32LE(o);
    const name = buf.toString('latin1', nameAt, buf.indexOf(0, nameAt));
    if (name === 'LLAMA_COMMIT' || name === 'LLAMA_BUILD_NUMBER') symbols[name] = Number(buf.readBigUInt64LE(o + 8));
  }
  const result = { commit: null, buildNumber: null };
  if (symbols.LLAMA_BUILD_NUMBER) result.buildNumber = buf.readInt32LE(fileOffset(symbols.LLAMA_BUILD_NUMBER));
  if (symbols.LLAMA_COMMIT) {
    const at = fileOffset(Number(buf.readBigUInt64LE(fileOffset(symbols.LLAMA_COMMIT))));
    result.commit = buf.toString('latin1', at, buf.indexOf(0, at));
  }
  return result;
}

function metadata() {
  const meta = model.fileInfo.metadata; // node-llama-cpp's own GGUF reader
  const tokens = model.tokens; // llama.cpp's vocabulary (llama_vocab_*)
  return {
    architecture: meta?.general?.architecture ?? null,
    type_description: model.typeDescription, // llama_model_desc
    vocabulary_type: model.vocabularyType, // llama_vocab_type: "bpe", "spm", ...
    vocab_size: meta?.tokenizer?.ggml?.tokens?.length ?? null,
    train_context_size: model.trainContextSize,
    embedding_size: model.embeddingVectorSize,
    bos: tokens.bos, eos: tokens.eos, eot: tokens.eot, nl: tokens.nl,
    bos_string: tokens.bosString, eos_string: tokens.eosString,
    should_prepend_bos: tokens.shouldPrependBosToken, // llama_vocab_get_add_bos (and a BOS exists)
    should_append_eos: tokens.shouldAppendEosToken,
    chat_template: meta?.tokenizer?.chat_template ?? null,
  };
}

function readJsonList(file, what) {
  let value;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(2, `cannot read ${file}: ${e.message}`);
  }
  if (!Array.isArray(value)) fail(2, `${file} must hold a JSON list of ${what}`);
  return value;
}

async function newSequence(contextSize, batchSize) {
  const context = await model.createContext({
    contextSize, batchSize, sequences: 1, flashAttention: false,
    threads: { ideal: threads, min: threads },
    experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType,
  });
  return { context, sequence: context.getSequence() };
}

const pairs = (map) => [...map.entries()].map(([t, v]) => [t, v]);

async function tokenizeMode() {
  const texts = readJsonList(options.tokenize, 'strings');
  const results = texts.map((text) => {
    if (typeof text !== 'string') fail(2, `${options.tokenize}: every item must be a string`);
    const special = model.tokenize(text, true);
    const plain = model.tokenize(text, false);
    return {
      text, special, plain,
      detokenized_special: model.detokenize(special, true),
      detokenized_plain: model.detokenize(plain, false),
    };
  });
  return { metadata: metadata(), results };
}

async function greedyMode() {
  const prompts = readJsonList(options.greedy, 'token-id lists');
  const n = intOption(options, 'n', 8);
  const top = intOption(options, 'top', 10);
  const allLogits = options['all-logits'] === true;
  const longest = Math.max(1, ...prompts.map((p) => p.length));
  const { context, sequence } = await newSequence(longest + n + 8, Math.max(longest, 8));
  // The greedy sampler alone: temperature 0 (no penalty unless one is passed, and none is).
  const generateNext = {
    token: true,
    logits: allLogits ? true : { filter: { tokens: [], includeTop: top } },
    options: { temperature: 0 },
  };
  const results = [];
  for (const prompt of prompts) {
    if (!Array.isArray(prompt) || prompt.length === 0 || !prompt.every(Number.isInteger)) {
      fail(2, `${options.greedy}: every prompt must be a non-empty list of token ids`);
    }
    await sequence.clearHistory();
    const tokens = [];
    const steps = [];
    let input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext }] : t));
    for (let step = 0; step < n; step++) {
      const out = await sequence.controlledEvaluate(input);
      const next = out[input.length - 1]?.next;
      if (next == null || next.token == null) fail(1, `no token at step ${step}`);
      const logits = pairs(next.logits).sort((a, b) => b[1] - a[1]);
      // The chosen token is the argmax of the raw logits (ties: llama.cpp picks the first id).
      const best = logits[0][1];
      const argmax = Math.min(...logits.filter(([, v]) => v === best).map(([t]) => t));
      if (next.token !== argmax) fail(1, `step ${step}: sampled ${next.token}, argmax ${argmax}`);
      tokens.push(next.token);
      steps.push({ token: next.token, top: logits.slice(0, top), ...(allLogits ? { logits: allLogitsArray(next.logits) } : {}) });
      input = [[next.token, { generateNext }]];
    }
    // The same prompt through sequence.evaluate with its defaults and temperature 0.
    await sequence.clearHistory();
    const evaluated = [];
    for await (const token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
      evaluated.push(token);
      if (evaluated.length === n) break;
    }
    if (evaluated.join() !== tokens.join()) {
      fail(1, `sequence.evaluate gave ${evaluated} where controlledEvaluate gave ${tokens}`);
    }
    results.push({ prompt, tokens, text: model.detokenize(tokens, true), steps });
  }
  await context.dispose();
  return { kv_type: kvType, n, results };
}

function allLogitsArray(map) {
  const out = new Array(map.size).fill(null);
  for (const [t, v] of map) out[t] = v;
  return out;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function benchMode() {
  const n = intOption(options, 'bench-decode', 64);
  const k = intOption(options, 'prompt-tokens', 128);
  const runs = intOption(options, 'runs', 3) || 1;
  if (n < 1 || k < 1) fail(2, '--bench-decode and --prompt-tokens must be at least 1');
  // A K-token prompt of ordinary text (its tokens repeated as needed).
  const text = 'The quick brown fox jumps over the lazy dog while the five boxing wizards jump quickly. ';
  let ids = model.tokenize(text, false);
  if (ids.length === 0) fail(1, 'the model tokenizes the benchmark text to nothing');
  while (ids.length < k) ids = ids.concat(ids);
  const prompt = ids.slice(0, k);
  const { context, sequence } = await newSequence(k + n + 8, Math.min(Math.max(k, 32), 2048));
  const prefill = [];
  const decode = [];
  for (let run = 0; run < runs + 1; run++) { // run 0 warms up and is not counted
    await sequence.clearHistory();
    let t0 = process.hrtime.bigint();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, k - 1));
    const prefillS = Number(process.hrtime.bigint() - t0) / 1e9;
    t0 = process.hrtime.bigint();
    let generated = 0;
    for await (const token of sequence.evaluate([prompt[k - 1]], { temperature: 0, yieldEogToken: true })) {
      void token;
      if (++generated === n) break;
    }
    const decodeS = Number(process.hrtime.bigint() - t0) / 1e9;
    if (run > 0) {
      if (k > 1) prefill.push((k - 1) / prefillS);
      decode.push(n / decodeS);
    }
  }
  await context.dispose();
  return {
    decode_tokens: n, prompt_tokens: k, runs, kv_type: kvType,
    decode_tokens_per_s: median(decode), decode_runs: decode,
    prefill_tokens_per_s: prefill.length ? median(prefill) : null, prefill_runs: prefill,
  };
}

let result;
if (modes[0] === 'tokenize') result = await tokenizeMode();
else if (modes[0] === 'greedy') result = await greedyMode();
else result = await benchMode();
await settleLog();
const warnings = log.filter((line) => !line.startsWith('info') && !line.startsWith('debug'));
process.stdout.write(`${JSON.stringify({ build: buildInfo(), ...result, llama_log: warnings })}\n`);
await model.dispose();
await llama.dispose();
