// safetensors files (src/checkpoint/safetensors.*) and the reference state dict on top of them
// (src/train_state/state_dict.*, docs/MODEL.md 2.1): round trips in F32 and BF16, the layout of the
// written file checked byte by byte, every kind of malformed file refused with a message naming the
// file and the problem, and import/export of whole models, tied weights and TP slices of a fixture.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"
#include "train_state/state_dict.h"
#include "common/training_setup.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "core/bf16.h"
#include "core/error.h"
#include "model/model_weights.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

// ---- helpers -----------------------------------------------------------------------------------

std::string read_whole_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// The header length and JSON text of a safetensors file, read by hand (not through the reader
// under test).
struct RawHeader {
  uint64_t length = 0;
  std::string text;
};
RawHeader raw_header(const fs::path& path) {
  const std::string bytes = read_whole_file(path);
  RawHeader header;
  for (int i = 7; i >= 0; --i) header.length = header.length << 8 | uint8_t(bytes.at(i));
  header.text = bytes.substr(8, header.length);
  return header;
}

// Writes a safetensors file by hand: the 8-byte little-endian length of `header`, `header`
// itself, then `data`. Used to build the malformed files the writer would never produce.
void write_raw_file(const fs::path& path, const std::string& header, const std::string& data,
                    uint64_t declared_length = ~uint64_t(0)) {
  const uint64_t length = declared_length == ~uint64_t(0) ? header.size() : declared_length;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  for (int i = 0; i < 8; ++i) file.put(char(uint8_t(length >> (8 * i))));
  file << header << data;
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

uint32_t bits_of(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

// Bitwise equality, so -0.0 vs 0.0 and NaN payloads count.
void expect_same_bits(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_EQ(bits_of(actual[i]), bits_of(expected[i])) << what << " element " << i << ": " << actual[i] << " vs " << expected[i];
}

std::vector<float> values_of(const Tensor& tensor) {
  const float* data = tensor.data<float>();
  return {data, data + tensor.numel()};
}

// Every parameter of a tp=1 model as the tensors of a reference state dict (both tied keys), for
// tests that then drop, rename or alter one of them before writing.
struct StateDictTensors {
  std::vector<std::vector<float>> storage;  // owns the data the tensors point to
  std::vector<SafetensorsTensor> tensors;
};
StateDictTensors state_dict_tensors(const ModelWeights& weights) {
  StateDictTensors result;
  for (const LocalParam& entry : weights.table().params()) {
    result.storage.push_back(values_of(weights.param(entry)));
    if (entry.spec.name == "transformer.wte.weight") result.storage.push_back(values_of(weights.param(entry)));
  }
  size_t next = 0;
  for (const LocalParam& entry : weights.table().params()) {
    const std::vector<int64_t> shape = entry.spec.global_shape.to_vector();
    result.tensors.push_back({entry.spec.name, DType::F32, shape, result.storage[next++].data()});
    if (entry.spec.name == "transformer.wte.weight")
      result.tensors.push_back({"lm_head.weight", DType::F32, shape, result.storage[next++].data()});
  }
  return result;
}

void remove_tensor(StateDictTensors& state, const std::string& name) {
  std::erase_if(state.tensors, [&](const SafetensorsTensor& tensor) { return tensor.name == name; });
}

SafetensorsTensor& tensor_named(StateDictTensors& state, const std::string& name) {
  for (SafetensorsTensor& tensor : state.tensors)
    if (tensor.name == name) return tensor;
  throw std::runtime_error("test bug: no tensor " + name);
}

}  // namespace

// ---- round trips -------------------------------------------------------------------------------

TEST(SafetensorsRoundTrip, F32ValuesShapesAndMetadataComeBackExactly) {
  const fs::path path = t6::testing::scratch_dir("safetensors") / "round_trip.safetensors";
  // Values whose bits matter: signed zero, a subnormal, infinities, the extremes of fp32.
  const std::vector<float> matrix = {1.5f, -0.0f, 0.0f, std::numeric_limits<float>::denorm_min(),
                                     std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
                                     3.14159265f, -2.7182818f, 1e-30f, 12345.678f};
  const std::vector<float> vector3 = {7.0f, 8.0f, 9.0f};
  const std::vector<float> cube = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::map<std::string, std::string> metadata = {{"model", "T6"}, {"note", "a \"quoted\" value, with ünïcode"}};
  write_safetensors(path.string(),
                    {{"zeta.matrix", DType::F32, {3, 4}, matrix.data()},
                     {"alpha.vector", DType::F32, {3}, vector3.data()},
                     {"mid.cube", DType::F32, {2, 2, 2}, cube.data()}},
                    metadata);

  const SafetensorsReader reader(path.string());
  EXPECT_EQ(reader.metadata(), metadata);
  ASSERT_EQ(reader.entries().size(), 3u);
  EXPECT_EQ(reader.entry("zeta.matrix").shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(reader.entry("zeta.matrix").dtype, DType::F32);
  EXPECT_EQ(reader.entry("mid.cube").shape, (std::vector<int64_t>{2, 2, 2}));
  expect_same_bits(reader.read_f32("zeta.matrix"), matrix, "zeta.matrix");
  expect_same_bits(reader.read_f32("alpha.vector"), vector3, "alpha.vector");
  const std::vector<int64_t> cube_shape = {2, 2, 2};
  expect_same_bits(reader.read_f32("mid.cube", &cube_shape), cube, "mid.cube");
}

TEST(SafetensorsRoundTrip, FileLayoutKeepsTheGivenOrderAndAlignsTheDataTo8Bytes) {
  const fs::path path = t6::testing::scratch_dir("safetensors") / "layout.safetensors";
  const std::vector<float> a = {1, 2, 3}, b = {4}, c = {5, 6, 7, 8, 9};
  // Names deliberately out of alphabetical order: the file must keep the order given.
  write_safetensors(path.string(), {{"zz", DType::F32, {3}, a.data()}, {"aa", DType::BF16, {1}, b.data()}, {"mm", DType::F32, {5}, c.data()}},
                    {{"k", "v"}});

  const RawHeader header = raw_header(path);
  EXPECT_EQ(header.length % 8, 0u) << "the data section must start on an 8-byte boundary";
  const auto json = nlohmann::ordered_json::parse(header.text);
  std::vector<std::string> keys;
  for (const auto& [key, value] : json.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"__metadata__", "zz", "aa", "mm"}));
  // Contiguous data in the given order: [0,12) F32×3, [12,14) BF16×1, [14,34) F32×5.
  EXPECT_EQ(json["zz"]["data_offsets"], nlohmann::json({0, 12}));
  EXPECT_EQ(json["aa"]["data_offsets"], nlohmann::json({12, 14}));
  EXPECT_EQ(json["mm"]["data_offsets"], nlohmann::json({14, 34}));
  EXPECT_EQ(json["aa"]["dtype"], "BF16");
  EXPECT_EQ(json["mm"]["shape"], nlohmann::json({5}));
  EXPECT_EQ(fs::file_size(path), 8 + header.length + 34) << "no bytes beyond the last tensor";
  // The raw data of "zz" sits right after the header, little-endian fp32.
  const std::string bytes = read_whole_file(path);
  EXPECT_EQ(bytes.substr(8 + header.length, 12), bytes_of(a));
}

TEST(SafetensorsRoundTrip, HeaderParsesWithPythonsJsonModule) {
  // An independent reader: python3's json, as safetensors' own Python users would see the file.
  if (std::system("python3 -c 'import json' > /dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not available";
  const fs::path path = t6::testing::scratch_dir("safetensors") / "python.safetensors";
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  write_safetensors(path.string(), {{"w", DType::F32, {2, 3}, a.data()}, {"b", DType::BF16, {6}, a.data()}}, {{"model", "T6"}});
  const std::string script =
      "import json,struct,sys\n"
      "f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; h=json.loads(f.read(n))\n"
      "print(n%8, list(h), h['w']['shape'], h['b']['data_offsets'], h['__metadata__']['model'])\n";
  const std::string command = "python3 -c \"$(cat <<'EOF'\n" + script + "EOF\n)\" '" + path.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[256];
  while (fgets(buffer, sizeof buffer, pipe)) output += buffer;
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_EQ(output, "0 ['__metadata__', 'w', 'b'] [2, 3] [24, 36] T6\n");
}

TEST(SafetensorsRoundTrip, Bf16RoundsToNearestEvenAndStoresTheUpperHalf) {
  const fs::path path = t6::testing::scratch_dir("safetensors") / "bf16.safetensors";
  // bf16 keeps 7 mantissa bits: near 1.0 its step is 2^-7. Ties go to the even mantissa.
  const float step = std::ldexp(1.0f, -7), half_step = std::ldexp(1.0f, -8), tiny = std::ldexp(1.0f, -20);
  const std::vector<float> values = {
      1.0f,                              // exact
      1.0f + half_step,                  // tie between 1 (even) and 1+step (odd)     → 1
      1.0f + 3 * half_step,              // tie between 1+step (odd) and 1+2step (even) → 1+2step
      1.0f + half_step + tiny,           // just above the tie                         → 1+step
      1.0f + half_step - tiny,           // just below the tie                         → 1
      -(1.0f + 3 * half_step),           // sign kept, same tie rule                   → -(1+2step)
      0.1f,                              // 0x3DCCCCCD → 0x3DCD (round up, below the tie)
      -0.0f,
      std::numeric_limits<float>::infinity(),
  };
  const std::vector<uint16_t> expected_bits = {0x3F80, 0x3F80, 0x3F82, 0x3F81, 0x3F80, 0xBF82, 0x3DCD, 0x8000, 0x7F80};
  write_safetensors(path.string(), {{"x", DType::BF16, {int64_t(values.size())}, values.data()}}, {});

  // The stored bytes, read by hand.
  const RawHeader header = raw_header(path);
  const std::string bytes = read_whole_file(path);
  ASSERT_EQ(bytes.size(), 8 + header.length + 2 * values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t stored;
    std::memcpy(&stored, bytes.data() + 8 + header.length + 2 * i, 2);
    EXPECT_EQ(stored, expected_bits[i]) << "element " << i << " = " << values[i];
  }
  // The reader widens them back exactly.
  const std::vector<float> read = SafetensorsReader(path.string()).read_f32("x");
  EXPECT_EQ(read[1], 1.0f);
  EXPECT_EQ(read[2], 1.0f + 2 * step);
  EXPECT_EQ(read[3], 1.0f + step);
  EXPECT_EQ(read[6], bf16_bits_to_float(0x3DCD));

  // A NaN stays a NaN (truncation of a low-payload NaN would give infinity).
  const std::vector<float> nan = {std::numeric_limits<float>::quiet_NaN()};
  write_safetensors(path.string(), {{"nan", DType::BF16, {1}, nan.data()}}, {});
  EXPECT_TRUE(std::isnan(SafetensorsReader(path.string()).read_f32("nan")[0]));
}

TEST(SafetensorsRoundTrip, ReadsIntegerAndF64TensorsOfOtherWriters) {
  // Fixtures carry I32 token ids; torch may save I64 or F64. The writer never makes these, so the
  // file is built by hand, the tensors back to back as the format requires (no padding between).
  const fs::path path = t6::testing::scratch_dir("safetensors") / "ints.safetensors";
  const std::vector<int32_t> i32 = {-5, 0, 2147483647};
  const std::vector<int64_t> i64 = {7, -8};
  const std::vector<double> f64 = {0.5, -1.0 / 3.0};
  const std::string header =
      R"({"a":{"dtype":"I32","shape":[3],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"I64","shape":[2],"data_offsets":[12,28]},)"
      R"("c":{"dtype":"F64","shape":[2],"data_offsets":[28,44]}})";
  write_raw_file(path, header, bytes_of(i32) + bytes_of(i64) + bytes_of(f64));
  const SafetensorsReader reader(path.string());
  EXPECT_EQ(reader.read_i32("a"), i32);
  EXPECT_EQ(reader.read_i32("b"), (std::vector<int32_t>{7, -8}));
  EXPECT_EQ(reader.read_f32("c"), (std::vector<float>{0.5f, float(-1.0 / 3.0)}));
  EXPECT_TRUE(reader.metadata().empty());
}

// ---- malformed files ---------------------------------------------------------------------------

class MalformedSafetensors : public ::testing::Test {
 protected:
  fs::path path = t6::testing::scratch_dir("malformed") / "bad.safetensors";
  // The message of opening `path`.
  std::string open_error() {
    return error_of([&] { SafetensorsReader reader(path.string()); });
  }
};

TEST_F(MalformedSafetensors, HeaderLengthLargerThanTheFile) {
  write_raw_file(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd", 100000);
  expect_mentions(open_error(), {path.string(), "header length", "100000"});
}

TEST_F(MalformedSafetensors, FileShorterThanTheLengthField) {
  std::ofstream(path, std::ios::binary) << "abc";
  expect_mentions(open_error(), {path.string(), "not a safetensors file"});
}

TEST_F(MalformedSafetensors, HeaderThatIsNotJson) {
  write_raw_file(path, R"({"a": {"dtype": "F32", )", "");
  expect_mentions(open_error(), {path.string(), "not valid JSON"});
}

TEST_F(MalformedSafetensors, HeaderEntryMissingDtypeShapeOrOffsets) {
  const std::map<std::string, std::string> entries = {
      {"dtype", R"({"w":{"shape":[1],"data_offsets":[0,4]}})"},
      {"shape", R"({"w":{"dtype":"F32","data_offsets":[0,4]}})"},
      {"data_offsets", R"({"w":{"dtype":"F32","shape":[1]}})"},
  };
  for (const auto& [missing, header] : entries) {
    SCOPED_TRACE("entry without " + missing);
    write_raw_file(path, header, "abcd");
    expect_mentions(open_error(), {path.string(), "'w'", "malformed header entry", missing});
  }
}

TEST_F(MalformedSafetensors, TruncatedFileLeavesOffsetsOutsideTheData) {
  const std::vector<float> a(16, 1.0f), b(16, 2.0f);
  write_safetensors(path.string(), {{"first", DType::F32, {16}, a.data()}, {"second", DType::F32, {4, 4}, b.data()}}, {});
  ASSERT_NO_THROW(SafetensorsReader reader(path.string()));
  fs::resize_file(path, fs::file_size(path) - 10);  // cut into "second"
  expect_mentions(open_error(), {path.string(), "'second'", "outside", "truncated"});
}

TEST_F(MalformedSafetensors, SizeThatDoesNotMatchDtypeTimesShape) {
  // 2×2 F32 needs 16 bytes; the offsets give 12.
  write_raw_file(path, R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", std::string(16, '\0'));
  expect_mentions(open_error(), {path.string(), "'w'", "12 bytes", "16"});
}

TEST_F(MalformedSafetensors, OverlappingTensors) {
  write_raw_file(path,
                 R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                 R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                 std::string(24, '\0'));
  expect_mentions(open_error(), {path.string(), "overlap"});
}

TEST_F(MalformedSafetensors, UnknownDtype) {
  write_raw_file(path, R"({"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", "abcd");
  expect_mentions(open_error(), {path.string(), "'w'", "F17"});
}

TEST_F(MalformedSafetensors, ReadOfAnAbsentTensorNamesIt) {
  const std::vector<float> a = {1, 2};
  write_safetensors(path.string(), {{"present", DType::F32, {2}, a.data()}}, {});
  const SafetensorsReader reader(path.string());
  EXPECT_FALSE(reader.has("absent"));
  expect_mentions(error_of([&] { reader.read_f32("absent"); }), {path.string(), "'absent'"});
  expect_mentions(error_of([&] { reader.entry("absent"); }), {path.string(), "'absent'"});
}

TEST_F(MalformedSafetensors, ReadWithTheWrongShapeNamesBothShapes) {
  const std::vector<float> a(6, 1.0f);
  write_safetensors(path.string(), {{"w", DType::F32, {2, 3}, a.data()}}, {});
  const SafetensorsReader reader(path.string());
  const std::vector<int64_t> transposed = {3, 2};  // same element count, still wrong
  expect_mentions(error_of([&] { reader.read_f32("w", &transposed); }), {path.string(), "'w'", "(2, 3)", "(3, 2)"});
}

TEST_F(MalformedSafetensors, ReadWithTheWrongDtype) {
  const std::vector<float> a(4, 1.0f);
  write_safetensors(path.string(), {{"w", DType::F32, {4}, a.data()}}, {});
  const SafetensorsReader reader(path.string());
  expect_mentions(error_of([&] { reader.read_i32("w"); }), {path.string(), "'w'", "F32", "I32"});

  const std::vector<int32_t> ids = {1, 2};
  write_raw_file(path, R"({"ids":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", bytes_of(ids));
  const SafetensorsReader int_reader(path.string());
  expect_mentions(error_of([&] { int_reader.read_f32("ids"); }), {path.string(), "'ids'", "I32", "float"});
}

// ---- failed writes -----------------------------------------------------------------------------

TEST(SafetensorsWrite, FailedWriteIntoAMissingDirectoryLeavesNoFile) {
  const fs::path path = t6::testing::scratch_dir("safetensors") / "no_such_dir" / "model.safetensors";
  const std::vector<float> a = {1};
  expect_mentions(error_of([&] { write_safetensors(path.string(), {{"a", DType::F32, {1}, a.data()}}, {}); }), {"no_such_dir"});
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path.parent_path()));
}

TEST(SafetensorsWrite, WriteThatFailsMidwayKeepsThePreviousFile) {
  // A disk that fills up during the write, simulated with a file-size limit (writes past it fail
  // with EFBIG once SIGXFSZ is ignored): the old file must survive under the final name.
  const fs::path path = t6::testing::scratch_dir("safetensors") / "model.safetensors";
  const std::vector<float> old_values = {1, 2, 3};
  write_safetensors(path.string(), {{"a", DType::F32, {3}, old_values.data()}}, {});
  const std::string before = read_whole_file(path);

  const std::vector<float> big(1 << 20, 0.5f);  // 4 MiB, over the 1 MiB limit below
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = 1 << 20;
  const auto saved_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  const std::string message = error_of([&] { write_safetensors(path.string(), {{"a", DType::F32, {1 << 20}, big.data()}}, {}); });
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, saved_handler);

  expect_mentions(message, {path.string(), "write failed"});
  EXPECT_EQ(read_whole_file(path), before);
}

TEST(SafetensorsWrite, RefusedWriteKeepsThePreviousFileIntact) {
  const fs::path path = t6::testing::scratch_dir("safetensors") / "model.safetensors";
  const std::vector<float> good = {1, 2, 3}, other = {9, 9, 9};
  write_safetensors(path.string(), {{"a", DType::F32, {3}, good.data()}}, {});
  const std::string before = read_whole_file(path);

  // A name given twice and a dtype the writer cannot make are both refused, naming the file.
  expect_mentions(error_of([&] {
                    write_safetensors(path.string(), {{"a", DType::F32, {3}, other.data()}, {"a", DType::F32, {3}, other.data()}}, {});
                  }),
                  {path.string(), "'a'", "twice"});
  expect_mentions(error_of([&] { write_safetensors(path.string(), {{"a", DType::I32, {3}, other.data()}}, {}); }),
                  {path.string(), "F32 or BF16"});
  EXPECT_EQ(read_whole_file(path), before);
  EXPECT_EQ(SafetensorsReader(path.string()).read_f32("a"), good);
}

// ---- state dict --------------------------------------------------------------------------------

class StateDict : public ::testing::Test {
 protected:
  ModelConfig config = fixture_model_config(ModelKind::T6);
  fs::path dir = t6::testing::scratch_dir("state_dict");
  ModelWeights weights{config, 0, 1};
  void SetUp() override { weights.initialise(1234); }

  // Writes `state` with this config as metadata, then returns the error of loading it.
  std::string load_error(const StateDictTensors& state, const std::string& name) {
    const fs::path path = dir / name;
    write_safetensors(path.string(), state.tensors, config.to_metadata());
    ModelWeights fresh(config, 0, 1);
    return error_of([&] { load_state_dict(SafetensorsReader(path.string()), fresh); });
  }
};

TEST_F(StateDict, SaveThenLoadGivesIdenticalWeights) {
  const fs::path path = dir / "model.safetensors";
  save_state_dict(path.string(), weights, DType::F32);
  ModelWeights loaded(config, 0, 1);
  loaded.initialise(999);  // different values, so a tensor that is not loaded shows
  load_state_dict(SafetensorsReader(path.string()), loaded);
  expect_same_bits(values_of(loaded.params()), values_of(weights.params()), "all parameters");
}

TEST_F(StateDict, Bf16ExportLoadsAsTheRoundedWeights) {
  const fs::path path = dir / "model_bf16.safetensors";
  save_state_dict(path.string(), weights, DType::BF16);
  const SafetensorsReader reader(path.string());
  EXPECT_EQ(reader.entry("transformer.h.0.attn.c_qkv.W_A_q.weight").dtype, DType::BF16);
  ModelWeights loaded(config, 0, 1);
  load_state_dict(reader, loaded);
  std::vector<float> expected = values_of(weights.params());
  for (float& value : expected) value = round_to_bf16(value);
  expect_same_bits(values_of(loaded.params()), expected, "bf16 parameters");
}

TEST_F(StateDict, ExportHoldsBothTiedKeysAndTheConfigMetadata) {
  const fs::path path = dir / "model.safetensors";
  save_state_dict(path.string(), weights, DType::F32);
  const SafetensorsReader reader(path.string());
  ASSERT_TRUE(reader.has("transformer.wte.weight"));
  ASSERT_TRUE(reader.has("lm_head.weight"));
  EXPECT_EQ(reader.entry("lm_head.weight").shape, (std::vector<int64_t>{128, 64}));
  const std::vector<float> embedding = reader.read_f32("transformer.wte.weight");
  expect_same_bits(reader.read_f32("lm_head.weight"), embedding, "lm_head.weight vs transformer.wte.weight");
  expect_same_bits(embedding, values_of(weights.param("transformer.wte.weight")), "transformer.wte.weight");

  // Every parameter of docs/MODEL.md 2.1 under its reference name and global shape, plus lm_head.
  EXPECT_EQ(reader.entries().size(), weights.table().params().size() + 1);
  EXPECT_EQ(reader.entry("transformer.h.1.attn.c_qkv.W_A_q.weight").shape, (std::vector<int64_t>{6 * 6, 64}));
  EXPECT_EQ(reader.entry("transformer.h.1.attn.c_qkv.W_B_k.weight").shape, (std::vector<int64_t>{2 * 16, 64}));
  EXPECT_EQ(reader.entry("transformer.h.1.attn.c_proj.weight").shape, (std::vector<int64_t>{64, 6 * 16}));
  EXPECT_EQ(reader.entry("transformer.h.1.mlp.c_proj.weight").shape, (std::vector<int64_t>{64, 170}));

  const std::map<std::string, std::string> expected = {
      {"model", "T6"}, {"n_layer", "2"}, {"n_embd", "64"},      {"n_head", "6"},       {"head_dim", "16"},
      {"q_rank", "6"}, {"rank", "2"},    {"group_size", "1"}, {"vocab_size", "128"}};
  for (const auto& [key, value] : expected) {
    ASSERT_TRUE(reader.metadata().count(key)) << "metadata lacks " << key;
    EXPECT_EQ(reader.metadata().at(key), value) << key;
  }
}

TEST_F(StateDict, ImportAcceptsTheHeadKeyAlone) {
  StateDictTensors state = state_dict_tensors(weights);
  remove_tensor(state, "transformer.wte.weight");
  const fs::path path = dir / "head_only.safetensors";
  write_safetensors(path.string(), state.tensors, config.to_metadata());
  ModelWeights loaded(config, 0, 1);
  load_state_dict(SafetensorsReader(path.string()), loaded);
  expect_same_bits(values_of(loaded.params()), values_of(weights.params()), "all parameters");
}

TEST_F(StateDict, ImportRefusesTiedKeysThatDiffer) {
  StateDictTensors state = state_dict_tensors(weights);
  state.storage[1][77] += 1.0f;  // storage[1] is lm_head.weight's copy
  ASSERT_EQ(tensor_named(state, "lm_head.weight").data, state.storage[1].data());
  expect_mentions(load_error(state, "tied_differ.safetensors"), {"tied_differ.safetensors", "transformer.wte.weight", "lm_head.weight", "differ"});
}

TEST_F(StateDict, ImportRefusesAMissingTensorNamingIt) {
  StateDictTensors state = state_dict_tensors(weights);
  remove_tensor(state, "transformer.h.1.mlp.c_fc2.weight");
  expect_mentions(load_error(state, "missing.safetensors"), {"missing.safetensors", "missing", "transformer.h.1.mlp.c_fc2.weight"});

  StateDictTensors untied = state_dict_tensors(weights);
  remove_tensor(untied, "transformer.wte.weight");
  remove_tensor(untied, "lm_head.weight");
  expect_mentions(load_error(untied, "no_embedding.safetensors"), {"no_embedding.safetensors", "transformer.wte.weight", "lm_head.weight"});
}

TEST_F(StateDict, ImportRefusesAWrongShapeNamingTheTensor) {
  StateDictTensors state = state_dict_tensors(weights);
  // (36, 64) stored as (64, 36): same bytes, wrong layout.
  tensor_named(state, "transformer.h.0.attn.c_qkv.W_A_q.weight").shape = {64, 36};
  expect_mentions(load_error(state, "shape.safetensors"),
                  {"shape.safetensors", "transformer.h.0.attn.c_qkv.W_A_q.weight", "(64, 36)", "(36, 64)"});
}

TEST_F(StateDict, ConfigComesFromTheMetadataAndMustAgreeWithAGivenOne) {
  const fs::path path = dir / "model.safetensors";
  save_state_dict(path.string(), weights, DType::F32);
  const SafetensorsReader reader(path.string());
  EXPECT_EQ(config_of_state_dict(reader, nullptr).to_metadata(), config.to_metadata());
  EXPECT_EQ(config_of_state_dict(reader, &config).to_metadata(), config.to_metadata());

  ModelConfig other = config;
  other.rank = 3;
  expect_mentions(error_of([&] { config_of_state_dict(reader, &other); }), {path.string(), "differs"});
}

TEST_F(StateDict, ConfigOfAFileWithoutMetadataNeedsAGivenOne) {
  StateDictTensors state = state_dict_tensors(weights);
  const fs::path path = dir / "bare.safetensors";
  write_safetensors(path.string(), state.tensors, {});
  const SafetensorsReader reader(path.string());
  expect_mentions(error_of([&] { config_of_state_dict(reader, nullptr); }), {path.string(), "--config"});
  EXPECT_EQ(config_of_state_dict(reader, &config).to_metadata(), config.to_metadata());
}

TEST(StateDictFixture, TensorParallelRanksLoadTheirSlicesOfAFixture) {
  const fs::path path = t6::testing::fixture_dir() / "t6_tiny.safetensors";
  ASSERT_TRUE(fs::exists(path)) << path;
  const SafetensorsReader reader(path.string());
  const ModelConfig config = config_of_state_dict(reader, nullptr);
  ASSERT_EQ(config.kind, ModelKind::T6);
  ASSERT_EQ(config.n_head, 6);
  const int64_t d = config.n_embd, q_rank = config.q_rank;

  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE("tp rank " + std::to_string(rank) + " of 2");
    ModelWeights weights(config, rank, 2);
    load_state_dict(reader, weights, "param.");
    for (const LocalParam& entry : weights.table().params()) {
      const std::vector<float> full = reader.read_f32("param." + entry.spec.name);
      std::vector<float> expected(size_t(entry.numel()));
      copy_local_slice(entry, full.data(), expected.data());
      expect_same_bits(values_of(weights.param(entry)), expected, entry.spec.name);
    }

    // By hand: 6 heads on 2 ranks are 3 + 3, each head q_rank rows of W_A_q, so rank r holds rows
    // [3·q_rank·r, 3·q_rank·(r+1)) of the full (6·q_rank, d) matrix.
    const std::string name = "transformer.h.1.attn.c_qkv.W_A_q.weight";
    const std::vector<float> full = reader.read_f32("param." + name);
    const Tensor local = weights.param(name);
    ASSERT_EQ(local.shape(), (Shape{3 * q_rank, d}));
    const float* data = local.data<float>();
    for (int64_t row = 0; row < 3 * q_rank; ++row)
      for (int64_t col = 0; col < d; ++col)
        ASSERT_EQ(data[row * d + col], full[(3 * q_rank * rank + row) * d + col]) << "row " << row << " col " << col;
    // A replicated factor is whole on both ranks.
    expect_same_bits(values_of(weights.param("transformer.h.0.attn.c_qkv.W_B_q.weight")),
                     reader.read_f32("param.transformer.h.0.attn.c_qkv.W_B_q.weight"), "W_B_q");
  }
}

// ---- strict import (load_state_dict(strict=True) of the reference) -----------------------------

TEST_F(StateDict, ImportRefusesAnExtraTensorNamingIt) {
  StateDictTensors state = state_dict_tensors(weights);
  std::vector<float> extra(64, 0.5f);
  state.tensors.push_back({"transformer.h.0.attn.extra.weight", DType::F32, {64}, extra.data()});
  expect_mentions(load_error(state, "extra.safetensors"),
                  {"extra.safetensors", "'transformer.h.0.attn.extra.weight'", "not a parameter of the model"});
}

TEST_F(StateDict, ImportRefusesTensorsOfMoreLayersThanTheMetadataSays) {
  // A 2-layer state dict whose metadata says 1 layer: the second layer must not be dropped silently.
  StateDictTensors state = state_dict_tensors(weights);
  ModelConfig one_layer = config;
  one_layer.n_layer = 1;
  const fs::path path = dir / "layers.safetensors";
  write_safetensors(path.string(), state.tensors, one_layer.to_metadata());
  const SafetensorsReader reader(path.string());
  ModelWeights loaded(config_of_state_dict(reader, nullptr), 0, 1);
  expect_mentions(error_of([&] { load_state_dict(reader, loaded); }),
                  {path.string(), "'transformer.h.1.", "not a parameter of the model", "n_layer 1"});
}

TEST_F(StateDict, ImportRefusesANonFiniteWeightNamingTheTensor) {
  StateDictTensors state = state_dict_tensors(weights);
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    StateDictTensors poisoned = state_dict_tensors(weights);
    // storage[2] is the first tensor after the tied pair; element 5 of it.
    poisoned.storage[2][5] = bad;
    const std::string name = poisoned.tensors[2].name;
    expect_mentions(load_error(poisoned, "nan.safetensors"), {"nan.safetensors", "'" + name + "'", "element 5", "non-finite"});
  }
}

TEST(SafetensorsRead, TrailingBytesAfterTheDataAreAnError) {
  const fs::path path = t6::testing::scratch_dir("safetensors_trailing") / "trailing.safetensors";
  const std::vector<float> values = {1, 2};
  write_raw_file(path, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", bytes_of(values) + "junk");
  expect_mentions(error_of([&] { SafetensorsReader reader(path.string()); }),
                  {path.string(), "4 trailing bytes after the last tensor's data"});
  // A hole between tensors is the same defect.
  write_raw_file(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", bytes_of(values));
  expect_mentions(error_of([&] { SafetensorsReader reader(path.string()); }),
                  {path.string(), "data bytes [0, 4) belong to no tensor"});
}
