// libFuzzer target for the wire format of `expo serve` and the client (src/http/
// openai_protocol): request bodies as the server reads them, and answers as the client reads
// them.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fuzz_util.h"
#include "http/openai_protocol.h"
#include "http/serve_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  expo::error_message_from_body(expo::fuzz::as_text(data, size));
  const nlohmann::json body =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  try {
    const expo::ChatRequest request = expo::chat_request_from_json(body);
    expo::chat_request_to_json(request);
  } catch (const expo::Error&) {
  }
  for (const auto endpoint : {expo::ServeEndpoint::kChat, expo::ServeEndpoint::kCompletions}) {
    try {
      const expo::ServeRequest request = expo::serve_request_from_json(body, endpoint);
      expo::serve_response_to_json(request, "text", {{"t", -1.0, {{"u", -2.0}}}}, "stop", 1, 2, "m",
                                   "id", 0);
      expo::serve_chunk_to_json(request, "t", {}, true, "", "m", "id", 0);
    } catch (const expo::Error&) {
    }
  }
  try {
    expo::parse_request_body(expo::fuzz::as_text(data, size), 64 * size + 4096);
  } catch (const expo::Error&) {
  }
  try {
    expo::chat_response_from_json(body);
  } catch (const expo::Error&) {
  }
  for (const auto api : {expo::ScoreApi::kPooling, expo::ScoreApi::kClassify}) {
    try {
      expo::score_response_from_json(api, body);
    } catch (const expo::Error&) {
    }
  }
  return 0;
}
