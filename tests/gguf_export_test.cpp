// GGUF output (src/gguf/): the architecture recipes, and written files read back with the GGUF
// reader and compared with the safetensors they come from, element by element. llama.cpp itself
// loads expo's files in tests/gguf/gguf_llama_cpp_test.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/dtype.h"
#include "core/fs.h"
#include "gguf/gguf_arch.h"
#include "gguf/gguf_export.h"
#include "gguf/gguf_pair.h"
#include "io/checkpoint.h"
#include "io/ggml_type.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "model/model_source.h"
#include "test_util.h"

namespace expo {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;

const fs::path kEngineGoldens = fs::path(EXPO_GOLDEN_DIR) / "engine";
const fs::path kDemoModels = fs::path(EXPO_GOLDEN_DIR) / ".." / ".." / "demo" / "models";

std::vector<double> checkpoint_values(const CheckpointTensor& t) {
  std::vector<double> out(t.info->num_elements());
  for (uint64_t i = 0; i < out.size(); ++i) out[i] = load_as_double(t.data(), t.info->dtype, i);
  return out;
}

std::vector<double> gguf_values(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo* t = file.find(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  std::vector<double> out(t->num_elements());
  decode_to_double(t->type, file.data(*t), out.size(), out.data());
  return out;
}

TEST(GgufArch, RopeRowsInterleaveEachHeadsHalves) {
  EXPECT_EQ(rope_interleave_rows(2, 4), (std::vector<uint64_t>{0, 2, 1, 3, 4, 6, 5, 7}));
  EXPECT_EQ(rope_interleave_rows(1, 6), (std::vector<uint64_t>{0, 3, 1, 4, 2, 5}));
}

// Every causal golden model has a recipe that reads each of its tensors once, or is refused
// for a reason llama.cpp would compute differently.
TEST(GgufArch, RecipesOfEveryGoldenArchitecture) {
  size_t recipes = 0;
  for (const auto& e : fs::directory_iterator(kEngineGoldens)) {
    if (!fs::exists(e.path() / "config.json")) continue;
    const Checkpoint ck = Checkpoint::open(e.path().string());
    const ModelConfig c = read_model_config(ck);
    std::vector<std::string> names;
    for (const auto& t : ck.tensors()) names.push_back(t.name());
    const std::string name = e.path().filename().string();
    if (c.is_reward_model) {
      EXPECT_ERROR(gguf_recipe(c, names), "a reward model");
      continue;
    }
    if (c.family == Family::kGemma2 || c.family == Family::kGemma3) {
      // The goldens set query_pre_attn_scalar apart from head_dim, or slide on layers
      // llama.cpp's fixed patterns do not: both have no GGUF form llama.cpp reads the same way.
      const std::string e = error_of([&] { gguf_recipe(c, names); });
      EXPECT_TRUE(e.find("query_pre_attn_scalar") != std::string::npos ||
                  e.find("slides on") != std::string::npos)
          << name << ": " << e;
      continue;
    }
    if (c.family == Family::kQwen3 && c.qkv_bias) {
      EXPECT_ERROR(gguf_recipe(c, names), "attention biases");
      continue;
    }
    const GgufModelRecipe r = gguf_recipe(c, names);
    ++recipes;
    std::multiset<std::string> read;
    for (const auto& t : r.tensors) read.insert(t.sources.begin(), t.sources.end());
    for (const auto& n : names) {
      const bool tied_head = c.tie_word_embeddings && n == "lm_head.weight";
      const bool wqkv = n.ends_with("attention.wqkv.weight");  // read three times: q, k, v
      EXPECT_EQ(read.count(n), tied_head ? 0u : wqkv ? 3u : 1u) << name << ": " << n;
    }
    EXPECT_EQ(r.metadata.get_string("general.architecture"), r.arch) << name;
    EXPECT_EQ(r.metadata.get_u32(r.arch + ".block_count"), c.num_layers) << name;
  }
  EXPECT_GE(recipes, 15u);
}

TEST(GgufExport, ConvertedTensorsAreTheSourceRearrangedAsLlamaCppReadsThem) {
  TempDir dir;
  const auto sft = kDemoModels / "sft";
  const Checkpoint ck = Checkpoint::open(sft.string());
  const ModelConfig config = read_model_config(ck);
  ThreadPool pool(2);
  GgufExportOptions o;
  o.output = dir / "sft.gguf";
  o.type = GgmlType::F32;
  o.sources.push_back({"model", sft.string()});
  const auto result = write_gguf(copy_plan(ck), 0.0, config, sft, o, pool);
  EXPECT_EQ(result.type, GgmlType::F32);
  const GgufFile file(o.output);
  EXPECT_EQ(file.metadata().get_string("general.architecture"), "llama");
  EXPECT_EQ(file.metadata().get_string("general.name"), "sft");
  EXPECT_EQ(file.metadata().get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(file.metadata().get_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(file.metadata().get_string_array("tokenizer.ggml.tokens").size(), config.vocab_size);
  EXPECT_EQ(file.metadata().get_u32("tokenizer.ggml.bos_token_id"), 508u);
  EXPECT_EQ(file.metadata().get_string("expo.source.model"), sft.string());
  EXPECT_TRUE(file.metadata().contains("tokenizer.chat_template"));
  // Embeddings as they are (BF16 values are exact in F32).
  EXPECT_EQ(gguf_values(file, "token_embd.weight"),
            checkpoint_values(*ck.find("model.embed_tokens.weight")));
  // q: in each head, row 2i + j is the source's row j * D/2 + i.
  const auto q = checkpoint_values(*ck.find("model.layers.1.self_attn.q_proj.weight"));
  const auto gq = gguf_values(file, "blk.1.attn_q.weight");
  const uint64_t H = config.hidden_size, D = config.head_dim;
  ASSERT_EQ(q.size(), gq.size());
  for (uint64_t h = 0; h < config.num_heads; ++h)
    for (uint64_t i = 0; i < D / 2; ++i)
      for (uint64_t j = 0; j < 2; ++j)
        for (uint64_t col = 0; col < H; col += 17)
          ASSERT_EQ(gq[(h * D + 2 * i + j) * H + col], q[(h * D + j * D / 2 + i) * H + col]);
  EXPECT_EQ(gguf_values(file, "blk.0.ffn_down.weight"),
            checkpoint_values(*ck.find("model.layers.0.mlp.down_proj.weight")));
  // An existing output is refused without --force, and nothing is left behind.
  EXPECT_ERROR(write_gguf(copy_plan(ck), 0.0, config, sft, o, pool), "sft.gguf");
  o.force = true;
  o.type = GgmlType::Q8_0;
  write_gguf(copy_plan(ck), 0.0, config, sft, o, pool);
  const GgufFile q8(o.output);
  EXPECT_EQ(q8.find("blk.0.ffn_up.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(q8.find("blk.0.ffn_norm.weight")->type, GgmlType::F32);  // 1-D stays F32
  EXPECT_EQ(q8.metadata().get_u32("general.file_type"), 7u);
  // Q8_0 values: each within half a scale step of the source.
  const auto up = checkpoint_values(*ck.find("model.layers.0.mlp.up_proj.weight"));
  const auto gup = gguf_values(q8, "blk.0.ffn_up.weight");
  for (uint64_t b = 0; b < up.size() / 32; ++b) {
    double amax = 0;
    for (int k = 0; k < 32; ++k) amax = std::max(amax, std::abs(up[b * 32 + k]));
    for (int k = 0; k < 32; ++k)
      ASSERT_LE(std::abs(gup[b * 32 + k] - up[b * 32 + k]), amax / 127 / 2 * 1.001 + 1e-12);
  }
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u) << "only the output file, no staging folder";
}

TEST(GgufExport, ExtrapolatedTensorsAreRoundedOnceFromFloat64) {
  TempDir dir;
  const Checkpoint sft = Checkpoint::open((kDemoModels / "sft").string());
  const Checkpoint dpo = Checkpoint::open((kDemoModels / "dpo-10").string());
  const ModelConfig config = read_model_config(dpo);
  ThreadPool pool(2);
  GgufExportOptions o;
  o.output = dir / "expo.gguf";
  o.type = GgmlType::BF16;
  o.alpha_text = "2.5";
  const Plan plan = make_plan(sft, dpo, PlanOptions{});
  write_gguf(plan, 2.5, config, kDemoModels / "dpo-10", o, pool);
  const GgufFile file(o.output);
  EXPECT_EQ(file.metadata().get_string("expo.alpha"), "2.5");
  for (const char* hf : {"model.layers.2.mlp.gate_proj.weight", "model.embed_tokens.weight"}) {
    const auto s = checkpoint_values(*sft.find(hf));
    const auto a = checkpoint_values(*dpo.find(hf));
    const auto g =
        gguf_values(file, std::string(hf) == "model.embed_tokens.weight" ? "token_embd.weight"
                                                                         : "blk.2.ffn_gate.weight");
    ASSERT_EQ(g.size(), a.size());
    size_t changed = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = a[i] - s[i], m = 2.5 * d, r = a[i] + m;
      ASSERT_EQ(g[i], bf16_to_double(static_cast<uint16_t>(round_to_bf16(r).bits)))
          << hf << " element " << i;
      changed += g[i] != a[i];
    }
    EXPECT_GT(changed, a.size() / 4) << hf;
  }
}

// A GGUF pair converted from the same BF16 models gives the GGUF the Hugging Face pair gives:
// dequantized exactly, the same float64 arithmetic, the same rounding. From Q8_0 files: each
// value is the extrapolation of the dequantized values, re-quantized.
TEST(GgufPair, ExtrapolatesLikeTheHuggingFacePath) {
  TempDir dir;
  ThreadPool pool(2);
  const Checkpoint sft = Checkpoint::open((kDemoModels / "sft").string());
  const Checkpoint dpo = Checkpoint::open((kDemoModels / "dpo-10").string());
  const ModelConfig config = read_model_config(dpo);
  auto convert = [&](const Checkpoint& ck, const fs::path& folder, const std::string& name,
                     GgmlType type) {
    GgufExportOptions o;
    o.output = dir / name;
    o.type = type;
    write_gguf(copy_plan(ck), 0.0, config, folder, o, pool);
    return o.output;
  };
  const auto s16 = convert(sft, kDemoModels / "sft", "s16.gguf", GgmlType::BF16);
  const auto a16 = convert(dpo, kDemoModels / "dpo-10", "a16.gguf", GgmlType::BF16);
  GgufExportOptions o;
  o.output = dir / "pair.gguf";
  o.alpha_text = "3";
  extrapolate_gguf_pair(s16, a16, 3.0, o);
  GgufExportOptions h;
  h.output = dir / "hf.gguf";
  h.type = GgmlType::BF16;
  write_gguf(make_plan(sft, dpo, PlanOptions{}), 3.0, config, kDemoModels / "dpo-10", h, pool);
  const GgufFile pair(o.output), hf(h.output);
  ASSERT_EQ(pair.tensors().size(), hf.tensors().size());
  for (const auto& t : hf.tensors()) {
    const GgufTensorInfo* p = pair.find(t.name);
    ASSERT_NE(p, nullptr) << t.name;
    ASSERT_EQ(p->type, t.type) << t.name;
    ASSERT_EQ(0, std::memcmp(pair.data(*p), hf.data(t), t.num_bytes)) << t.name;
  }
  EXPECT_EQ(pair.metadata().get("tokenizer.ggml.tokens"),
            hf.metadata().get("tokenizer.ggml.tokens"));
  EXPECT_EQ(pair.metadata().get_string("expo.alpha"), "3");

  // Q8_0 sides, F32 output: the float64 extrapolation of the dequantized values.
  const auto s8 = convert(sft, kDemoModels / "sft", "s8.gguf", GgmlType::Q8_0);
  const auto a8 = convert(dpo, kDemoModels / "dpo-10", "a8.gguf", GgmlType::Q8_0);
  o.output = dir / "pair8.gguf";
  o.type = GgmlType::F32;
  extrapolate_gguf_pair(s8, a8, 3.0, o);
  const GgufFile s8f(s8), a8f(a8), out(o.output);
  for (const char* name : {"blk.1.ffn_gate.weight", "token_embd.weight"}) {
    const auto s = gguf_values(s8f, name), a = gguf_values(a8f, name), r = gguf_values(out, name);
    ASSERT_EQ(r.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = a[i] - s[i], m = 3.0 * d;
      ASSERT_EQ(r[i], static_cast<double>(static_cast<float>(a[i] + m))) << name << " " << i;
    }
  }
}

TEST(GgufPair, MismatchesAndKQuantsAreRefusedByName) {
  TempDir dir;
  ThreadPool pool(2);
  const Checkpoint sft = Checkpoint::open((kDemoModels / "sft").string());
  const Checkpoint reward = Checkpoint::open((kDemoModels / "dpo-10").string());
  const ModelConfig config = read_model_config(sft);
  GgufExportOptions c;
  c.output = dir / "s.gguf";
  write_gguf(copy_plan(sft), 0.0, config, kDemoModels / "sft", c, pool);
  // The same model with another name for one token.
  std::string bytes = read_text_file(c.output);
  const std::string from = "<|im_start|>", to = "<|im_begin|";
  const size_t at = bytes.find(from);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, to.size(), to);
  write_text_file(dir / "t.gguf", bytes);
  GgufExportOptions o;
  o.output = dir / "out.gguf";
  EXPECT_ERROR(extrapolate_gguf_pair(c.output, dir / "t.gguf", 1.0, o),
               "differ in tokenizer.ggml.tokens", "<|im_start|>");
  EXPECT_FALSE(fs::exists(o.output));
  // A K-quant tensor is refused with the reason.
  GgufWriter w;
  w.add_metadata("general.architecture", GgufValue("llama"));
  w.add_tensor("blk.0.ffn_down.weight", GgmlType::Q4_K, {1, 256});
  {
    OutputFile f(dir / "k.gguf");
    w.start(f);
    std::string block(144, '\0');
    w.write_tensor("blk.0.ffn_down.weight", block.data(), block.size());
    w.finish();
    f.close();
  }
  EXPECT_ERROR(extrapolate_gguf_pair(dir / "k.gguf", dir / "k.gguf", 1.0, o),
               "blk.0.ffn_down.weight", "is Q4_K", "K-quant");
}

TEST(GgufExport, BadOutputsAreRefusedBeforeAnyWork) {
  TempDir dir;
  GgufExportOptions o;
  o.output = dir / "model.safetensors";
  EXPECT_ERROR(check_gguf_output(o), "a GGUF output is one file named *.gguf");
  fs::create_directories(dir / "x.gguf");
  o.output = dir / "x.gguf";
  EXPECT_ERROR(check_gguf_output(o), "is a folder");
  EXPECT_ERROR(parse_gguf_out_type("q4_k"),
               "--gguf-type: 'q4_k' is not one of f32, f16, bf16, q8_0");
  EXPECT_EQ(parse_gguf_out_type("Q8_0"), GgmlType::Q8_0);
}

}  // namespace
}  // namespace expo
