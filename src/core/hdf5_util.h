// Small RAII and error helpers over the HDF5 C API, shared by the token shards and the checkpoint
// shards: handles that close themselves, HDF5's own error text folded into t6::Error messages that
// name the file, and typed attribute access.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace t6 {

// An HDF5 identifier closed with the matching H5*close when the handle goes away.
class Hdf5Handle {
 public:
  Hdf5Handle() = default;
  explicit Hdf5Handle(hid_t id) : id_(id) {}
  ~Hdf5Handle() { reset(); }
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept;
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Silences HDF5's automatic error printing while alive (our messages say it better, once), and
// restores the previous handler afterwards.
class Hdf5QuietErrors {
 public:
  Hdf5QuietErrors();
  ~Hdf5QuietErrors();
  Hdf5QuietErrors(const Hdf5QuietErrors&) = delete;
  Hdf5QuietErrors& operator=(const Hdf5QuietErrors&) = delete;

 private:
  H5E_auto2_t previous_function_ = nullptr;
  void* previous_data_ = nullptr;
};

// The innermost messages of HDF5's current error stack, e.g. "Fletcher32 checksum failed".
std::string hdf5_error_text();

// Checks an HDF5 return value (negative = failure); the message names `path` and what was being done.
hid_t hdf5_check(hid_t result, const std::string& path, const std::string& action);

void write_string_attribute(hid_t object, const std::string& name, const std::string& value, const std::string& path);
void write_int64_attribute(hid_t object, const std::string& name, int64_t value, const std::string& path);
void write_string_list_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values,
                                 const std::string& path);
void write_int64_list_attribute(hid_t object, const std::string& name, const std::vector<int64_t>& values,
                                const std::string& path);
std::string read_string_attribute(hid_t object, const std::string& name, const std::string& path);
int64_t read_int64_attribute(hid_t object, const std::string& name, const std::string& path);
std::vector<int64_t> read_int64_list_attribute(hid_t object, const std::string& name, const std::string& path);
std::vector<std::string> read_string_list_attribute(hid_t object, const std::string& name, const std::string& path);

}  // namespace t6
