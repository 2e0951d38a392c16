#include "gguf/gguf_pair.h"

#include <cmath>

#include "core/error.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "core/staging_dir.h"
#include "io/ggml_type.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace expo {

namespace {

// Metadata both files must agree on: the architecture, its hyperparameters and the tokenizer.
bool must_match(const std::string& key, const std::string& arch) {
  return key == "general.architecture" || key.starts_with(arch + ".") ||
         key.starts_with("tokenizer.ggml.");
}

// Metadata the output sets anew instead of copying from the aligned file.
bool set_anew(const std::string& key) {
  return key == "general.name" || key == "general.file_type" ||
         key == "general.quantization_version" || key == "general.alignment" ||
         key.starts_with("expo.");
}

}  // namespace

GgufExportResult extrapolate_gguf_pair(const std::filesystem::path& sft_path,
                                       const std::filesystem::path& aligned_path, double alpha,
                                       const GgufExportOptions& options) {
  check_gguf_output(options);
  const GgufFile sft(sft_path), aligned(aligned_path);
  const std::string s_name = sft_path.string(), a_name = aligned_path.string();
  const GgufMetadata& am = aligned.metadata();
  const GgufMetadata& sm = sft.metadata();
  const auto arch = am.find_string("general.architecture");
  if (!arch) fail(a_name, ": no general.architecture");
  if (sm.find_string("general.architecture") != arch)
    fail("the SFT GGUF ", s_name, " is ",
         sm.find_string("general.architecture").value_or("(no architecture)"), ", the aligned ",
         a_name, " is ", *arch);
  for (const auto& e : am.entries()) {
    if (!must_match(e.key, *arch)) continue;
    const GgufValue* other = sm.find(e.key);
    if (!other)
      fail("the SFT GGUF ", s_name, " has no ", e.key, ", which the aligned ", a_name, " has");
    if (!(*other == e.value)) {
      std::string detail = e.value.to_display(4, 60) + " vs " + other->to_display(4, 60);
      if (e.value.holds<std::vector<std::string>>() && other->holds<std::vector<std::string>>()) {
        const auto& x = e.value.as<std::vector<std::string>>();
        const auto& y = other->as<std::vector<std::string>>();
        size_t i = 0;
        while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
        detail = i < x.size() && i < y.size()
                     ? "entry " + std::to_string(i) + " is \"" + x[i] + "\" vs \"" + y[i] + "\""
                     : std::to_string(x.size()) + " vs " + std::to_string(y.size()) + " entries";
      }
      fail("the two GGUF files differ in ", e.key, " (aligned ", a_name, ", SFT ", s_name,
           "): ", detail, "; both sides must be the same model and tokenizer");
    }
  }
  for (const auto& e : sm.entries())
    if (must_match(e.key, *arch) && !am.contains(e.key))
      fail("the aligned GGUF ", a_name, " has no ", e.key, ", which the SFT ", s_name, " has");
  if (sft.tensors().size() != aligned.tensors().size())
    fail("the SFT GGUF ", s_name, " has ", sft.tensors().size(), " tensors, the aligned ", a_name,
         " ", aligned.tensors().size());

  GgufWriter writer;
  for (const auto& e : am.entries()) {
    if (set_anew(e.key)) continue;
    writer.add_metadata(e.key, e.value);
    if (e.key == "general.architecture") {
      const uint32_t ftype = options.type ? gguf_file_type(*options.type)
                                          : am.find_u32("general.file_type").value_or(1);
      bool q8 = options.type == GgmlType::Q8_0;
      for (const auto& t : aligned.tensors())
        q8 = q8 || (!options.type && t.type == GgmlType::Q8_0);
      add_gguf_provenance(writer, options, ftype, q8);
    }
  }
  GgufExportResult result;
  result.type = options.type.value_or(GgmlType::F16);
  std::vector<GgmlType> out_types;
  for (const auto& a : aligned.tensors()) {
    const GgufTensorInfo* s = sft.find(a.name);
    if (!s) fail("the SFT GGUF ", s_name, " has no tensor ", a.name);
    if (s->dims != a.dims)
      fail("tensor ", a.name, " is ", a.shape_string(), " in the aligned ", a_name, " but ",
           s->shape_string(), " in the SFT ", s_name);
    for (const auto* t : {&a, s})
      if (!ggml_type_is_codable(t->type))
        fail("tensor ", t->name, " of ", t == s ? s_name : a_name, " is ", ggml_type_name(t->type),
             ": expo extrapolates F32, F16, BF16 and Q8_0 tensors, whose values it reads "
             "exactly; a K-quant's values come from a per-block search expo does not "
             "reproduce, so re-quantizing them would not be the exact ExPO model (convert "
             "from the Hugging Face checkpoints instead)");
    GgmlType t = a.type;
    if (options.type) t = a.dims.size() == 1 ? GgmlType::F32 : *options.type;
    if (t == GgmlType::Q8_0 && a.dims[0] % 32 != 0) t = GgmlType::F16;
    out_types.push_back(t);
    writer.add_tensor(a.name, t, a.shape());
  }

  StagingDir staging(options.output);
  const auto temp = staging.path() / options.output.filename();
  OutputFile out(temp);
  writer.start(out);
  // Chunks of whole rows (and whole Q8_0 blocks): at least 2^20 values.
  std::vector<double> av, sv;
  std::vector<uint8_t> encoded;
  for (size_t i = 0; i < aligned.tensors().size(); ++i) {
    const GgufTensorInfo& a = aligned.tensors()[i];
    const GgufTensorInfo& s = *sft.find(a.name);
    const uint64_t row = a.dims[0], n = a.num_elements();
    const uint64_t rows_per_chunk = std::max<uint64_t>(1, (uint64_t{1} << 20) / row);
    const uint64_t a_row_bytes = *ggml_tensor_bytes(a.type, {row});
    const uint64_t s_row_bytes = *ggml_tensor_bytes(s.type, {row});
    writer.begin_tensor(a.name);
    for (uint64_t first = 0; first < n; first += rows_per_chunk * row) {
      check_interrupted();
      const uint64_t count = std::min(rows_per_chunk * row, n - first);
      const uint64_t r0 = first / row;
      av.resize(count);
      sv.resize(count);
      decode_to_double(a.type, aligned.data(a) + r0 * a_row_bytes, count, av.data());
      decode_to_double(s.type, sft.data(s) + r0 * s_row_bytes, count, sv.data());
      for (uint64_t k = 0; k < count; ++k) {
        if (!options.allow_nonfinite && !(std::isfinite(av[k]) && std::isfinite(sv[k])))
          fail("tensor ", a.name, " element ", first + k, " is ",
               std::isfinite(av[k]) ? sv[k] : av[k], " in the ",
               std::isfinite(av[k]) ? "SFT " + s_name : "aligned " + a_name,
               "; pass --allow-nonfinite to carry NaN/Inf through");
        const double d = av[k] - sv[k];
        const double m = alpha * d;
        av[k] = av[k] + m;
      }
      encoded.resize(*ggml_tensor_bytes(out_types[i], {count}));
      encode_from_double(out_types[i], av.data(), count, encoded.data(), a.name, first);
      writer.write(encoded.data(), encoded.size());
    }
    writer.end_tensor();
    result.bytes += writer.tensors()[i].num_bytes;
  }
  writer.finish();
  out.close();
  publish_gguf(temp, options);
  result.tensors = aligned.tensors().size();
  return result;
}

}  // namespace expo
