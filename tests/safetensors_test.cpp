// The safetensors parser trusts nothing: every malformed file is refused with a message that
// names the file and the tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::error_of;

std::string file_with_header(const std::string& json, size_t data_bytes) {
  std::string s(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s + json + std::string(data_bytes, '\x01');
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] {
    parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                             bytes.size(), "bad.safetensors");
  });
}

TEST(Safetensors, ParsesValidHeaderInDataOrder) {
  const std::string bytes =
      file_with_header(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                       R"("a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                       R"("z":{"dtype":"I64","shape":[0],"data_offsets":[12,12]},)"
                       R"("__metadata__":{"format":"pt"}})",
                       12);
  const auto header = parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               bytes.size(), bytes.size(), "ok.safetensors");
  ASSERT_EQ(header.tensors.size(), 3u);
  EXPECT_EQ(header.tensors[0].name, "a");
  EXPECT_EQ(header.tensors[1].name, "b");
  EXPECT_EQ(header.tensors[2].name, "z");
  EXPECT_EQ(header.tensors[1].dtype, DType::F32);
  EXPECT_EQ(header.metadata.at("format"), "pt");
}

TEST(Safetensors, WriterRoundTrips) {
  testing::TempDir dir;
  const auto a = testing::random_tensor("x.weight", DType::BF16, {3, 5}, 1);
  const auto b = testing::random_tensor("y.bias", DType::F32, {7}, 2);
  write_safetensors_file((dir / "m.safetensors").string(), {a, b}, {{"format", "pt"}});
  SafetensorsFile file(dir / "m.safetensors");
  ASSERT_EQ(file.tensors().size(), 2u);
  const TensorInfo* x = file.find("x.weight");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->shape, (std::vector<uint64_t>{3, 5}));
  EXPECT_EQ(std::memcmp(file.data(*x), a.bytes.data(), a.bytes.size()), 0);
  EXPECT_EQ((file.header().data_start) % 8, 0u);  // header padded to 8 bytes
}

TEST(Safetensors, RejectsTruncatedFile) {
  EXPECT_NE(parse_error("abc").find("truncated"), std::string::npos);
}

TEST(Safetensors, RejectsHeaderPastEnd) {
  std::string bytes = file_with_header("{}", 0);
  bytes[0] = 100;
  const auto msg = parse_error(bytes);
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos);
  EXPECT_NE(msg.find("past the end"), std::string::npos);
}

TEST(Safetensors, RejectsHugeHeader) {
  std::string bytes(16, '\0');
  const uint64_t n = 200'000'000;
  std::memcpy(bytes.data(), &n, 8);
  EXPECT_NE(parse_error(bytes).find("100 MB"), std::string::npos);
}

TEST(Safetensors, RejectsInvalidJson) {
  EXPECT_NE(parse_error(file_with_header("{\"a\":", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error(file_with_header("[1,2]", 0)).find("not a JSON object"), std::string::npos);
}

TEST(Safetensors, RejectsUnknownDtype) {
  const auto msg =
      parse_error(file_with_header(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1));
  EXPECT_NE(msg.find("tensor 'w'"), std::string::npos);
  EXPECT_NE(msg.find("unknown dtype 'Q4'"), std::string::npos);
}

TEST(Safetensors, RejectsOverlapGapAndOverrun) {
  const auto overlap =
      parse_error(file_with_header(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                                   6));
  EXPECT_NE(overlap.find("overlap"), std::string::npos);
  EXPECT_NE(overlap.find("tensor 'b'"), std::string::npos);

  const auto gap =
      parse_error(file_with_header(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                                   8));
  EXPECT_NE(gap.find("gap"), std::string::npos);

  const auto overrun =
      parse_error(file_with_header(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4));
  EXPECT_NE(overrun.find("past the end"), std::string::npos);

  const auto trailing =
      parse_error(file_with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 4));
  EXPECT_NE(trailing.find("not described"), std::string::npos);
}

TEST(Safetensors, RejectsShapeSizeMismatch) {
  const auto msg =
      parse_error(file_with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(msg.find("tensor 'w'"), std::string::npos);
  EXPECT_NE(msg.find("12 bytes"), std::string::npos);
}

TEST(Safetensors, RejectsOverflowingShapeAndBadFields) {
  EXPECT_NE(
      parse_error(
          file_with_header(
              R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0))
          .find("overflows"),
      std::string::npos);
  EXPECT_NE(
      parse_error(file_with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0))
          .find("non-negative"),
      std::string::npos);
  EXPECT_NE(
      parse_error(file_with_header(R"({"w":{"dtype":"F32","shape":[1]}})", 4)).find("data_offsets"),
      std::string::npos);
  EXPECT_NE(parse_error(file_with_header(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                         R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                         2))
                .find("appears twice"),
            std::string::npos);
  EXPECT_NE(parse_error(file_with_header(R"({"__metadata__":{"x":1}})", 0)).find("__metadata__"),
            std::string::npos);
}

TEST(Safetensors, UnreadableFileIsAnError) {
  const auto msg = error_of([] { SafetensorsFile file("/nonexistent/model.safetensors"); });
  EXPECT_NE(msg.find("/nonexistent/model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace expo
