#include "train/tensorboard_log.h"

#include <chrono>
#include <cstring>
#include <fstream>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/durable_file.h"
#include "core/error.h"

namespace t6 {

namespace {

constexpr const char* kFilePrefix = "events.out.tfevents.";

// TFRecord's checksum: the CRC rotated and offset, so that a CRC of data holding CRCs stays strong.
uint32_t masked_crc(const std::string& bytes) {
  const uint32_t crc = crc32c(bytes.data(), bytes.size());
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

template <class Number>
std::string little_endian(Number value) {
  std::string bytes(sizeof value, '\0');
  std::memcpy(bytes.data(), &value, sizeof value);  // x86-64 and aarch64 are little-endian
  return bytes;
}

std::string varint(uint64_t value) {
  std::string bytes;
  do {
    const uint8_t low = value & 0x7f;
    value >>= 7;
    bytes += char(value ? low | 0x80 : low);
  } while (value);
  return bytes;
}

// Protocol buffer fields: key = field number << 3 | wire type.
std::string varint_field(int field, uint64_t value) { return varint(uint64_t(field) << 3 | 0) + varint(value); }
std::string double_field(int field, double value) { return varint(uint64_t(field) << 3 | 1) + little_endian(value); }
std::string bytes_field(int field, const std::string& bytes) {
  return varint(uint64_t(field) << 3 | 2) + varint(bytes.size()) + bytes;
}
std::string float_field(int field, float value) { return varint(uint64_t(field) << 3 | 5) + little_endian(value); }

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event.step of an encoded event (0 when it has none, as protobuf defaults it).
int64_t event_step(const std::string& event) {
  size_t at = 0;
  auto read_varint = [&]() -> uint64_t {
    uint64_t value = 0;
    for (int shift = 0; at < event.size() && shift < 64; shift += 7) {
      const uint8_t byte = uint8_t(event[at++]);
      value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) break;
    }
    return value;
  };
  while (at < event.size()) {
    const uint64_t key = read_varint();
    const int field = int(key >> 3), wire = int(key & 7);
    if (field == 2 && wire == 0) return int64_t(read_varint());
    if (wire == 0) read_varint();
    else if (wire == 1) at += 8;
    else if (wire == 5) at += 4;
    else if (wire == 2) at += read_varint();
    else break;
  }
  return 0;
}

// The records of an event file that are whole and pass their checksums; reading stops at the
// first that does not (a torn end, written when the process died).
std::vector<std::string> read_records(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::vector<std::string> records;
  while (true) {
    std::string header(12, '\0');
    if (!file.read(header.data(), 12)) break;
    uint64_t length;
    uint32_t length_crc;
    std::memcpy(&length, header.data(), 8);
    std::memcpy(&length_crc, header.data() + 8, 4);
    if (length_crc != masked_crc(header.substr(0, 8)) || length > (uint64_t(1) << 30)) break;
    std::string data(length, '\0'), data_crc(4, '\0');
    if (!file.read(data.data(), std::streamsize(length)) || !file.read(data_crc.data(), 4)) break;
    if (data_crc != little_endian(masked_crc(data))) break;
    records.push_back(std::move(data));
  }
  return records;
}

std::string framed(const std::string& data) {
  const std::string length = little_endian(uint64_t(data.size()));
  return length + little_endian(masked_crc(length)) + data + little_endian(masked_crc(data));
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name[0] ? name : "localhost";
}

}  // namespace

TensorBoardLog::TensorBoardLog(const std::filesystem::path& dir, int64_t keep_through_step) {
  std::filesystem::create_directories(dir);
  std::filesystem::path path;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().starts_with(kFilePrefix) && (path.empty() || entry.path() < path)) path = entry.path();
  if (!path.empty() && keep_through_step >= 0) {
    std::string kept;
    for (const std::string& record : read_records(path))
      if (event_step(record) <= keep_through_step) kept += framed(record);
    write_file_atomically(path, kept);  // a crash here cannot lose the kept events
  } else {
    if (!path.empty()) std::filesystem::remove(path);  // a fresh run: the old events are not its own
    path = dir / str(kFilePrefix, int64_t(unix_seconds()), ".", host_name());
    write_file_atomically(path, framed(double_field(1, unix_seconds()) + bytes_field(3, "brain.Event:2")));
  }
  file_ = std::make_unique<AppendFile>(path);
}

void TensorBoardLog::write_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) summary += bytes_field(1, bytes_field(1, tag) + float_field(2, float(value)));
  write_record(double_field(1, unix_seconds()) + varint_field(2, uint64_t(step)) + bytes_field(5, summary));
}

void TensorBoardLog::write_record(const std::string& event) { file_->append(framed(event)); }

}  // namespace t6
