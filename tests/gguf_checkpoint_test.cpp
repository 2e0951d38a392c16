// GGUF files read as checkpoints (src/gguf/gguf_checkpoint.h): the engine on a converted model
// computes what it computes on the Hugging Face model it came from, bit for bit where the
// weights are the same numbers; Q8_0 files compute what their dequantized values do; GGUF pairs
// extrapolate on load to what `expo extrapolate` writes. llama.cpp itself runs the same files in
// tests/gguf/gguf_llama_cpp_test.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "gguf/gguf_checkpoint.h"
#include "gguf/gguf_export.h"
#include "gguf/gguf_pair.h"
#include "io/ggml_type.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "model/model_source.h"
#include "model/transformer.h"
#include "test_util.h"

namespace expo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::error_of;
using testing::TempDir;

const fs::path kEngineGoldens = fs::path(EXPO_GOLDEN_DIR) / "engine";

// As the command line's main does: Checkpoint::open reads .gguf files through the gguf layer.
// (Here, not in the test runner's main, which also links the SIMD tests alone under qemu.)
const bool kGgufRegistered = (register_gguf_checkpoints(), true);

// A byte-level BPE tokenizer of 96 single-character tokens (the goldens' vocabulary size): the
// 94 printable ASCII bytes, then the space and the newline as ByteLevel spells them.
fs::path tiny_tokenizer(const fs::path& dir) {
  json vocab = json::object();
  int id = 0;
  for (char c = '!'; c <= '~'; ++c) vocab[std::string(1, c)] = id++;
  vocab["\xc4\xa0"] = id++;  // U+0120, the space
  vocab["\xc4\x8a"] = id++;  // U+010A, the newline
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  const json tok = {{"version", "1.0"},
                    {"added_tokens", json::array()},
                    {"normalizer", nullptr},
                    {"pre_tokenizer", byte_level},
                    {"post_processor", nullptr},
                    {"decoder", byte_level},
                    {"model",
                     {{"type", "BPE"},
                      {"dropout", nullptr},
                      {"unk_token", nullptr},
                      {"continuing_subword_prefix", nullptr},
                      {"end_of_word_suffix", nullptr},
                      {"fuse_unk", false},
                      {"byte_fallback", false},
                      {"ignore_merges", false},
                      {"vocab", vocab},
                      {"merges", json::array()}}}};
  fs::create_directories(dir);
  write_text_file(dir / "tokenizer.json", tok.dump());
  write_text_file(dir / "tokenizer_config.json", "{}");
  return dir;
}

// A copy of a golden model folder with the tiny tokenizer and `patch` merged into config.json.
fs::path with_tokenizer(const fs::path& golden, const fs::path& dir, const json& patch = {}) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(golden))
    if (e.path().extension() == ".safetensors") fs::copy_file(e.path(), dir / e.path().filename());
  json config = json::parse(read_text_file(golden / "config.json"));
  if (!patch.is_null()) config.merge_patch(patch);
  write_text_file(dir / "config.json", config.dump(2));
  tiny_tokenizer(dir);
  return dir;
}

fs::path convert(const fs::path& folder, const fs::path& out, GgmlType type) {
  const Checkpoint ck = Checkpoint::open(folder.string());
  ThreadPool pool(2);
  GgufExportOptions o;
  o.output = out;
  o.type = type;
  write_gguf(copy_plan(ck), 0.0, read_model_config(ck), folder, o, pool);
  return out;
}

std::vector<float> logits_of(const ModelSource& source, const std::vector<int32_t>& prompt,
                             double alpha = 0) {
  ThreadPool pool(2);
  const auto loaded = source.is_pair() ? LoadedModel::load(source, alpha, false, pool)
                                       : LoadedModel::load(source, pool);
  Transformer model(*loaded);
  KvCache cache(model.config(), prompt.size());
  const ForwardItem item{&cache, prompt, true};
  return model.forward(std::span<const ForwardItem>(&item, 1), pool);
}

std::vector<int32_t> prompt_of(const fs::path& golden) {
  const json g = json::parse(read_text_file(golden / "golden.json"));
  return g["prompt"].get<std::vector<int32_t>>();
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::abs(static_cast<double>(x)));
  return m;
}

// The largest |a - b| relative to the largest |a|.
double relative_gap(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst / max_abs(a);
}

// Every golden causal model llama.cpp's graphs compute as transformers does, converted in its
// own dtype: the engine on the GGUF gives the Hugging Face model's logits bit for bit (Llama 3's
// rope comes back as llama.cpp's rope_freqs: divisors, not transformers' formula, and Phi-3's
// longrope factors and attention factor as float32, so those within float rounding). Gemma's
// goldens set query_pre_attn_scalar apart from head_dim, which GGUF cannot say; they run here with
// it equal to head_dim.
TEST(GgufCheckpoint, EngineOnConvertedGoldensMatchesTheHuggingFaceModel) {
  struct Case {
    std::string golden;
    GgmlType type;
    json patch;
    double tolerance = 0;  // relative; 0: bit for bit
  };
  const std::vector<Case> cases = {
      {"llama_f32_gqa", GgmlType::F32, {}},
      {"llama_biases_f32", GgmlType::F32, {}},
      {"llama_bf16_tied_mqa", GgmlType::BF16, {}},
      {"llama_f16_linear_headdim", GgmlType::F16, {}},
      {"llama3_rope_bf16", GgmlType::BF16, {}, 1e-5},
      {"mixtral_e4k2_f32", GgmlType::F32, {}},
      {"mixtral_e8k3_bf16", GgmlType::BF16, {}},
      {"internlm2_bf16", GgmlType::BF16, {}},
      {"olmo2_gqa_f32", GgmlType::F32, {}},
      {"phi3_longrope_partial_f32", GgmlType::F32, {}, 1e-5},  // factors stored as F32
      {"phi3_sliding_bf16", GgmlType::BF16, {}},
      {"qwen2_bias_tied_f32", GgmlType::F32, {}},
      {"qwen2_sliding_default_f32", GgmlType::F32, {}},
      {"gemma2_softcap_bf16", GgmlType::BF16, {{"query_pre_attn_scalar", 16}}},
      {"gemma3_pattern_linear_f32",
       GgmlType::F32,
       {{"query_pre_attn_scalar", 16},
        {"sliding_window_pattern", 6},
        {"layer_types", nullptr},
        {"rope_local_base_freq", 10000.0}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.golden);
    TempDir dir;
    const fs::path golden = kEngineGoldens / c.golden;
    json patch = c.patch;
    if (patch.contains("query_pre_attn_scalar")) {
      const json config = json::parse(read_text_file(golden / "config.json"));
      patch["query_pre_attn_scalar"] = config.value("head_dim", 0);
    }
    const fs::path hf = with_tokenizer(golden, dir / "hf", patch);
    const fs::path gguf = convert(hf, dir / "m.gguf", c.type);
    const auto prompt = prompt_of(golden);
    const ModelSource from_gguf = ModelSource::open(gguf.string());
    const ModelSource from_hf = ModelSource::open(hf.string());
    EXPECT_TRUE(from_gguf.checkpoint().gguf().has_value());
    EXPECT_EQ(from_gguf.config().num_layers, from_hf.config().num_layers);
    const auto want = logits_of(from_hf, prompt);
    const auto got = logits_of(from_gguf, prompt);
    if (c.tolerance == 0) {
      EXPECT_EQ(got, want);
    } else {
      EXPECT_LE(relative_gap(want, got), c.tolerance);
    }
  }
}

// One tensor of a rewritten GGUF file.
struct RewrittenTensor {
  std::string name;
  GgmlType type;
  std::vector<uint8_t> bytes;
};

// A copy of `gguf` through expo's writer: each metadata entry with the value `value` gives it
// (general.alignment left to the writer), each tensor as `tensor` makes it.
fs::path rewrite(
    const fs::path& gguf, const fs::path& out,
    const std::function<GgufValue(const GgufMetadata::Entry&)>& value,
    const std::function<RewrittenTensor(const GgufFile&, const GgufTensorInfo&)>& tensor) {
  const GgufFile in(gguf);
  GgufWriter w;
  for (const auto& e : in.metadata().entries())
    if (e.key != "general.alignment") w.add_metadata(e.key, value(e));
  std::vector<RewrittenTensor> tensors;
  for (const auto& t : in.tensors()) {
    tensors.push_back(tensor(in, t));
    w.add_tensor(tensors.back().name, tensors.back().type, t.shape());
  }
  OutputFile file(out);
  w.start(file);
  for (const auto& t : tensors) {
    w.begin_tensor(t.name);
    w.write(t.bytes.data(), t.bytes.size());
    w.end_tensor();
  }
  w.finish();
  file.close();
  return out;
}

// The same GGUF with every tensor decoded to F32: what the Q8_0 file's values are.
fs::path dequantized_copy(const fs::path& gguf, const fs::path& out) {
  return rewrite(
      gguf, out, [](const GgufMetadata::Entry& e) { return e.value; },
      [](const GgufFile& in, const GgufTensorInfo& t) {
        std::vector<double> v(t.num_elements());
        decode_to_double(t.type, in.data(t), v.size(), v.data());
        RewrittenTensor r{t.name, GgmlType::F32, std::vector<uint8_t>(v.size() * 4)};
        encode_from_double(GgmlType::F32, v.data(), v.size(), r.bytes.data(), t.name);
        return r;
      });
}

// Q8_0 files: the engine multiplies by the blocks (its Q8_0 kernel, which widens each q * d
// exactly and adds in the F32 kernel's order) and gets, bit for bit, what it gets from the same
// values in F32.
TEST(GgufCheckpoint, Q8_0FileComputesWhatItsValuesDo) {
  for (const std::string name :
       {"llama_f32_gqa", "mixtral_e4k2_f32", "phi3_longrope_partial_f32", "internlm2_bf16"}) {
    SCOPED_TRACE(name);
    TempDir dir;
    const fs::path hf = with_tokenizer(kEngineGoldens / name, dir / "hf");
    const fs::path q8 = convert(hf, dir / "q8.gguf", GgmlType::Q8_0);
    const fs::path f32 = dequantized_copy(q8, dir / "f32.gguf");
    const ModelSource source = ModelSource::open(q8.string());
    EXPECT_EQ(source.checkpoint().find("model.layers.0.mlp.down_proj.weight") != nullptr ||
                  source.checkpoint().find("model.layers.0.block_sparse_moe.experts.0.w2.weight") !=
                      nullptr,
              true);
    const auto prompt = prompt_of(kEngineGoldens / name);
    const auto got = logits_of(source, prompt);
    const auto want = logits_of(ModelSource::open(f32.string()), prompt);
    EXPECT_EQ(got, want);
    // and near the unquantized model (8 bits a weight)
    EXPECT_LE(relative_gap(logits_of(ModelSource::open(hf.string()), prompt), got), 0.1);
  }
}

// A GGUF pair extrapolated on load: the same logits as the Hugging Face pair (F32), and as the
// file `expo extrapolate` writes from the GGUF pair (Q8_0, whose blocks are requantized).
TEST(GgufCheckpoint, PairsExtrapolateOnLoad) {
  TempDir dir;
  const fs::path golden = kEngineGoldens / "expo_pair_f32";
  const fs::path sft = with_tokenizer(golden / "sft", dir / "sft");
  const fs::path aligned = with_tokenizer(golden / "aligned", dir / "aligned");
  const auto prompt = prompt_of(golden);
  const double alpha = 0.7;
  {
    const fs::path s = convert(sft, dir / "sft.gguf", GgmlType::F32);
    const fs::path a = convert(aligned, dir / "aligned.gguf", GgmlType::F32);
    const ModelSource pair = ModelSource::open_pair(s.string(), a.string());
    ASSERT_TRUE(pair.is_pair());
    EXPECT_EQ(logits_of(pair, prompt, alpha),
              logits_of(ModelSource::open_pair(sft.string(), aligned.string()), prompt, alpha));
  }
  const fs::path s = convert(sft, dir / "sft-q8.gguf", GgmlType::Q8_0);
  const fs::path a = convert(aligned, dir / "aligned-q8.gguf", GgmlType::Q8_0);
  GgufExportOptions o;
  o.output = dir / "expo-q8.gguf";
  extrapolate_gguf_pair(s, a, alpha, o);
  EXPECT_EQ(logits_of(ModelSource::open_pair(s.string(), a.string()), prompt, alpha),
            logits_of(ModelSource::open(o.output.string()), prompt));
}

// A copy of `gguf` with one tensor's type (its bytes zero) or name changed, or another
// architecture.
fs::path altered(const fs::path& gguf, const fs::path& out, const std::string& tensor,
                 std::optional<GgmlType> type, const std::string& rename = "",
                 const std::string& arch = "") {
  return rewrite(
      gguf, out,
      [&](const GgufMetadata::Entry& e) {
        return e.key == "general.architecture" && !arch.empty() ? GgufValue(arch) : e.value;
      },
      [&](const GgufFile& in, const GgufTensorInfo& t) {
        const bool changed = t.name == tensor;
        RewrittenTensor r{
            changed && !rename.empty() ? rename : t.name, changed && type ? *type : t.type, {}};
        r.bytes.resize(*ggml_tensor_bytes(r.type, t.dims));
        if (r.type == t.type) std::memcpy(r.bytes.data(), in.data(t), r.bytes.size());
        return r;
      });
}

TEST(GgufCheckpoint, RefusalsNameTheFileAndTheTensor) {
  TempDir dir;
  const fs::path hf = with_tokenizer(kEngineGoldens / "llama_f32_gqa", dir / "hf");
  const fs::path gguf = convert(hf, dir / "m.gguf", GgmlType::F32);
  const std::string q4 = altered(gguf, dir / "q4.gguf", "blk.0.ffn_up.weight", GgmlType::Q4_0);
  EXPECT_ERROR(ModelSource::open(q4), "blk.0.ffn_up.weight is Q4_0");
  EXPECT_ERROR(ModelSource::open(q4), "q4.gguf");
  const std::string renamed = altered(gguf, dir / "renamed.gguf", "blk.0.ffn_up.weight",
                                      std::nullopt, "blk.0.ffn_up2.weight");
  EXPECT_ERROR(ModelSource::open(renamed), "no tensor blk.0.ffn_up.weight");
  const std::string arch = altered(gguf, dir / "arch.gguf", "", std::nullopt, "", "falcon");
  EXPECT_ERROR(ModelSource::open(arch), "GGUF architecture 'falcon'");
  // A GGUF pair is written as GGUF, and convert reads Hugging Face folders only.
  EXPECT_ERROR(ModelSource::open((dir / "missing.gguf").string()), "missing.gguf");
}

}  // namespace
}  // namespace expo
