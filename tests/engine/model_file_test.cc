// Hostile model folders (model_file.h, untrusted_json.h): every reader of a model folder's files —
// config.json, tokenizer_config.json, vocab.txt, tokenizer.json, model.safetensors, the sharded
// index and its shards — refuses a FIFO (which used to block open() forever) and a symlink to
// /dev/zero (which used to read until bad_alloc) with an error naming the file, and JSON nested
// 100 000 deep (which used to overflow the stack when an error message dump()ed it) with an error.
// Calls that could hang or crash run in a child process with a deadline, so a regression fails
// the test instead of the test binary. No LibTorch (the engine's torch-free part only).
#include "model_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "attattr/engine/hf_tokenizer.h"
#include "attattr/engine/wordpiece_tokenizer.h"
#include "gtest/gtest.h"
#include "model_config.h"
#include "safetensors_reader.h"
#include "support/test_paths.h"
#include "untrusted_json.h"

namespace attattr::engine {
namespace {

namespace fs = std::filesystem;

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected \"" << (needle) << "\" in: " << (haystack)

// What a call run in a child process came to.
struct ChildOutcome {
  bool finished = false;  // exited on its own before the deadline
  int signal = 0;         // the signal that killed it (SIGSEGV for a stack overflow), 0 if none
  int code = -1;          // absl::StatusCode of the returned status
  size_t message_bytes = 0;
  std::string message;  // its first 4 KiB

  std::string Describe() const {
    if (!finished && signal == SIGKILL) return "still running at the deadline (hung)";
    if (signal != 0) return "killed by signal " + std::to_string(signal);
    return "code " + std::to_string(code) + ": " + message;
  }
};

// Runs `call` in a forked child that reports the status it returns; the child is killed after
// `deadline_s` seconds. Safe here: this binary starts no threads before forking.
ChildOutcome RunInChild(const std::function<absl::Status()>& call, int deadline_s = 30) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const absl::Status status = call();
    const std::string message(status.message());
    const std::string head = std::to_string(static_cast<int>(status.code())) + " " +
                             std::to_string(message.size()) + "\n" + message.substr(0, 4096);
    (void)!::write(fds[1], head.data(), head.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildOutcome out;
  int wstatus = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(deadline_s);
  while (::waitpid(pid, &wstatus, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &wstatus, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFSIGNALED(wstatus)) out.signal = WTERMSIG(wstatus);
  out.finished = WIFEXITED(wstatus);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) report.append(buf, n);
  ::close(fds[0]);
  const size_t eol = report.find('\n');
  if (out.finished && eol != std::string::npos) {
    out.code = std::stoi(report.substr(0, report.find(' ')));
    out.message_bytes = std::stoul(report.substr(report.find(' ') + 1, eol));
    out.message = report.substr(eol + 1);
  }
  return out;
}

// Expects `call` to return InvalidArgument promptly, with `needles` in the message and the
// message short (it quotes input, never all of it).
void ExpectRefused(const std::function<absl::Status()>& call,
                   const std::vector<std::string>& needles) {
  const ChildOutcome out = RunInChild(call);
  ASSERT_TRUE(out.finished) << out.Describe();
  EXPECT_EQ(out.code, static_cast<int>(absl::StatusCode::kInvalidArgument)) << out.Describe();
  for (const std::string& needle : needles) EXPECT_CONTAINS(out.message, needle);
  EXPECT_LT(out.message_bytes, 1024u) << out.message;
}

template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// A minimal config.json for a BERT model, with `extra` spliced in as further keys.
std::string BertConfig(const std::string& extra = "") {
  return R"({"model_type": "bert", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1,
    "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

// `depth` arrays (or `open`/`close` pairs) around `inner`.
std::string Nested(size_t depth, const std::string& open = "[", const std::string& close = "]",
                   const std::string& inner = "") {
  std::string out;
  out.reserve(depth * (open.size() + close.size()) + inner.size());
  for (size_t i = 0; i < depth; ++i) out += open;
  out += inner;
  for (size_t i = 0; i < depth; ++i) out += close;
  return out;
}

// A safetensors file: 8-byte little-endian header length, the header, `data` bytes of zeros.
std::string SafetensorsBytes(const std::string& header, size_t data = 0) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((uint64_t{header.size()} >> (8 * i)) & 0xff);
  return out + header + std::string(data, '\0');
}

class ModelFolderTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  void MakeFifo(const std::string& name) const {
    ASSERT_EQ(::mkfifo(Path(name).c_str(), 0600), 0) << Path(name);
  }
  void LinkToDevZero(const std::string& name) const {
    ASSERT_TRUE(fs::exists("/dev/zero"));
    fs::create_symlink("/dev/zero", Path(name));
  }
  ::attattr::testing::TempDir dir_{"attattr-model-file"};
};

TEST_F(ModelFolderTest, ModelFileReadsRegularFilesAndSymlinksToThem) {
  WriteFile(Path("config.json"), "{}");
  fs::create_symlink(Path("config.json"), Path("link.json"));  // the Hugging Face cache's layout
  for (const char* name : {"config.json", "link.json"}) {
    absl::StatusOr<std::string> text = ReadModelFile(Path(name), kMaxConfigJsonBytes);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, "{}");
  }
  WriteFile(Path("empty"), "");
  EXPECT_EQ(ReadModelFile(Path("empty"), 10).value(), "");
  const absl::StatusOr<std::string> missing = ReadModelFile(Path("absent.json"), 10);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_CONTAINS(missing.status().message(), "absent.json");
}

TEST_F(ModelFolderTest, ModelFileRefusesWhatIsNotARegularFile) {
  MakeFifo("fifo");
  LinkToDevZero("zero");
  fs::create_directory(Path("dir"));
  ExpectRefused([&] { return StatusOf(ModelFile::Open(Path("fifo"))); }, {"fifo", "a FIFO"});
  ExpectRefused([&] { return StatusOf(ReadModelFile(Path("zero"), 1 << 20)); },
                {"zero", "a character device"});
  ExpectRefused([&] { return StatusOf(ReadModelFile(Path("dir"), 1 << 20)); },
                {"dir", "a directory"});
}

TEST_F(ModelFolderTest, ModelFileCapsWholeFileReads) {
  WriteFile(Path("big"), std::string(101, 'x'));
  const absl::StatusOr<std::string> read = ReadModelFile(Path("big"), 100);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(read.status().message(), "big");
  EXPECT_CONTAINS(read.status().message(), "more than the 100");
  EXPECT_EQ(ReadModelFile(Path("big"), 101).value().size(), 101u);
  // A sparse file larger than the cap is refused without being read.
  const int fd = ::open(Path("sparse").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, (off_t{1} << 30)), 0);
  ::close(fd);
  EXPECT_EQ(ReadModelFile(Path("sparse"), kMaxConfigJsonBytes).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ModelFolderTest, ConfigFilesThatAreNotRegularFilesAreErrors) {
  MakeFifo("config.json");
  ExpectRefused([&] { return StatusOf(ReadModelConfig(Path("config.json"))); },
                {"config.json", "a FIFO"});
  // tokenizer_config.json is optional, but one that is there and unreadable is an error, not
  // the defaults.
  MakeFifo("tokenizer_config.json");
  ExpectRefused([&] { return StatusOf(ReadTokenizerConfig(Path("tokenizer_config.json"))); },
                {"tokenizer_config.json", "a FIFO"});
  LinkToDevZero("zero.json");
  ExpectRefused([&] { return StatusOf(ReadModelConfig(Path("zero.json"))); },
                {"zero.json", "a character device"});
  EXPECT_TRUE(ReadTokenizerConfig(Path("absent.json")).ok());
}

TEST_F(ModelFolderTest, VocabularyAndTokenizerJsonThatAreNotRegularFilesAreErrors) {
  MakeFifo("vocab.txt");
  ExpectRefused([&] { return StatusOf(WordPieceTokenizer::Load(Path("vocab.txt"), {})); },
                {"vocab.txt", "a FIFO"});
  LinkToDevZero("zero.txt");
  ExpectRefused([&] { return StatusOf(WordPieceTokenizer::Load(Path("zero.txt"), {})); },
                {"zero.txt", "a character device"});
  MakeFifo("tokenizer.json");
  ExpectRefused([&] { return StatusOf(HfTokenizer::Load(Path("tokenizer.json"))); },
                {"tokenizer.json", "a FIFO"});
}

TEST_F(ModelFolderTest, CheckpointFilesThatAreNotRegularFilesAreErrors) {
  // A shard the index names that is a FIFO.
  WriteFile(Path("model-00001-of-00002.safetensors"),
            SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  MakeFifo("model-00002-of-00002.safetensors");
  WriteFile(Path("model.safetensors.index.json"),
            R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                               "b": "model-00002-of-00002.safetensors"}})");
  ExpectRefused([&] { return StatusOf(SafetensorsCheckpoint::Open(dir_.path())); },
                {"model-00002-of-00002.safetensors", "a FIFO"});
  // The index itself.
  fs::remove(Path("model.safetensors.index.json"));
  LinkToDevZero("model.safetensors.index.json");
  ExpectRefused([&] { return StatusOf(SafetensorsCheckpoint::Open(dir_.path())); },
                {"model.safetensors.index.json", "a character device"});
  // A single file.
  fs::remove(Path("model.safetensors.index.json"));
  MakeFifo("model.safetensors");
  ExpectRefused([&] { return StatusOf(SafetensorsCheckpoint::Open(dir_.path())); },
                {"model.safetensors", "a FIFO"});
}

TEST(UntrustedJsonTest, DeeplyNestedConfigValuesAreErrorsNotStackOverflows) {
  // The review's reproduction: a wrong-typed value nested 300 000 deep, which the error message
  // used to dump() recursively.
  ExpectRefused(
      [] {
        return StatusOf(ParseModelConfig(BertConfig(R"("num_hidden_layers": )" + Nested(300'000)),
                                         "config.json"));
      },
      {"config.json", "nested more than 64"});
  // Under a key nobody reads, and in objects.
  ExpectRefused(
      [] {
        return StatusOf(ParseModelConfig(
            BertConfig(R"("x": )" + Nested(100'000, "{\"a\":", "}", "1")), "config.json"));
      },
      {"config.json", "nested more than 64"});
  // tokenizer_config.json, through the file.
  ::attattr::testing::TempDir dir("attattr-model-file");
  WriteFile(dir.path() + "/tokenizer_config.json", R"({"do_lower_case": )" + Nested(200'000) + "}");
  ExpectRefused(
      [&] { return StatusOf(ReadTokenizerConfig(dir.path() + "/tokenizer_config.json")); },
      {"tokenizer_config.json", "nested more than 64"});
  // A real config's nesting is fine.
  EXPECT_TRUE(ParseModelConfig(BertConfig(R"("x": )" + Nested(60)), "config.json").ok());
}

TEST(UntrustedJsonTest, MessagesDescribeValuesWithoutQuotingThemWhole) {
  const std::string huge(1 << 20, 'g');
  absl::StatusOr<ModelConfig> c =
      ParseModelConfig(BertConfig(R"("hidden_act": ")" + huge + "\""), "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_CONTAINS(c.status().message(), "'hidden_act' is \"ggg");
  EXPECT_LT(c.status().message().size(), 400u) << c.status().message().substr(0, 400);
  c = ParseModelConfig(BertConfig(R"("num_hidden_layers": [1, [2], {"a": 3}])"), "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_CONTAINS(c.status().message(),
                  "'num_hidden_layers' must be a positive integer, got an "
                  "array of 3 elements");
  // A syntax error in a long string: the parser's message quotes its last token, cut here.
  c = ParseModelConfig("{\"a\": \"" + huge, "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_CONTAINS(c.status().message(), "config.json: not valid JSON");
  EXPECT_LT(c.status().message().size(), 400u);
  EXPECT_EQ(DescribeJson(nlohmann::json::parse(R"({"a": 1})")), "an object of 1 key");
  EXPECT_EQ(DescribeJson(nlohmann::json(0.5)), "0.5");
  EXPECT_EQ(DescribeJson(nlohmann::json("silu")), "\"silu\"");
}

TEST(UntrustedJsonTest, DeeplyNestedSafetensorsHeadersAndIndexesAreErrors) {
  // The review's reproduction: a 200 KB header of nested brackets.
  ExpectRefused(
      [] {
        const std::string file = SafetensorsBytes(Nested(100'000));
        return StatusOf(ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(file.data()),
                                               file.size(), "model.safetensors"));
      },
      {"model.safetensors", "not a JSON object"});
  // Nested inside an entry's unknown key and inside __metadata__.
  for (const std::string& header :
       {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)" + Nested(100'000) + "}}",
        R"({"__metadata__":{"a":)" + Nested(100'000) + "}}"}) {
    ExpectRefused(
        [&] {
          const std::string file = SafetensorsBytes(header, 4);
          return StatusOf(ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(file.data()),
                                                 file.size(), "model.safetensors"));
        },
        {"model.safetensors"});
  }
  // The sharded index: metadata is skipped, but not to any depth.
  ::attattr::testing::TempDir dir("attattr-model-file");
  WriteFile(dir.path() + "/model.safetensors.index.json",
            R"({"metadata": )" + Nested(100'000) + R"(, "weight_map": {}})");
  ExpectRefused([&] { return StatusOf(SafetensorsCheckpoint::Open(dir.path())); },
                {"model.safetensors.index.json", "nests arrays or objects more than 64"});
}

// Regression (model-config review): options transformers honours that the engine read past or
// read otherwise, each a model computed differently from Hugging Face's, are refused naming the
// key, or read as transformers reads them.
TEST(ModelConfigTest, OptionsTransformersReadOtherwiseAreRefusedOrFollowed) {
  const auto refused = [](const std::string& config, const std::string& expected) {
    auto parsed = ParseModelConfig(config, "config.json");
    ASSERT_FALSE(parsed.ok()) << config;
    EXPECT_NE(parsed.status().message().find(expected), std::string::npos) << parsed.status();
  };
  // Heads with a sequence classifier's tensors that score every token or every choice.
  refused(BertConfig(R"("architectures": ["ModernBertForTokenClassification"])"),
          "'architectures' names ModernBertForTokenClassification");
  refused(BertConfig(R"("architectures": ["BertForMultipleChoice"])"), "BertForMultipleChoice");
  // A causal BERT (BertLMHeadModel, RobertaForCausalLM).
  refused(BertConfig(R"("is_decoder": true)"), "'is_decoder' is true");
  EXPECT_TRUE(ParseModelConfig(BertConfig(R"("is_decoder": false)"), "config.json").ok());
  // Booleans that are not: transformers tests them for truth.
  refused(BertConfig(R"("is_decoder": 1)"), "'is_decoder' is 1; must be true or false");
  const std::string llama = R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 8,
    "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
    "max_position_embeddings": 16)";
  refused(llama + R"(, "tie_word_embeddings": null})", "'tie_word_embeddings' is null");
  refused(llama + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 2.0, "truncate": "no"}})",
          "'truncate' is \"no\"");
  // No position embeddings in transformers (a null type is not "absolute").
  refused(BertConfig(R"("position_embedding_type": null)"), "'position_embedding_type' is null");
  EXPECT_TRUE(
      ParseModelConfig(BertConfig(R"("position_embedding_type": "absolute")"), "config.json").ok());
  // llama3 scaling needs its original length (transformers refuses the config without it).
  refused(llama + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
    "low_freq_factor": 1.0, "high_freq_factor": 4.0}})",
          "'original_max_position_embeddings' is required for rope_type 'llama3'");
  // Partial rotary positions named at the top level as well as among the parameters.
  refused(llama + R"(, "partial_rotary_factor": 0.5})", "'partial_rotary_factor' is 0.5");
  // DeBERTa-v2's layer_norm_eps default is 1e-7, not BERT's 1e-12.
  auto deberta = ParseModelConfig(R"({"model_type": "deberta-v2", "vocab_size": 8,
    "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
    "max_position_embeddings": 16})",
                                  "config.json");
  ASSERT_TRUE(deberta.ok()) << deberta.status();
  EXPECT_EQ(deberta->layer_norm_eps, 1e-7);
  // ModernBERT's null local_rope_theta means the global one.
  const std::string modernbert = R"({"model_type": "modernbert", "vocab_size": 8,
    "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
    "max_position_embeddings": 16, "global_rope_theta": 160000.0)";
  auto theta = ParseModelConfig(modernbert + R"(, "local_rope_theta": null})", "config.json");
  ASSERT_TRUE(theta.ok()) << theta.status();
  EXPECT_EQ(theta->rotary.local_rope_theta, 160000.0);
  theta = ParseModelConfig(modernbert + "}", "config.json");
  ASSERT_TRUE(theta.ok()) << theta.status();
  EXPECT_EQ(theta->rotary.local_rope_theta, 10000.0);  // ModernBertConfig's default
}

}  // namespace
}  // namespace attattr::engine
