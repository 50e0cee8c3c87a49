#include "core/hdf5_util.h"

#include <algorithm>

#include "core/error.h"

namespace t6 {

Hdf5Handle& Hdf5Handle::operator=(Hdf5Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Hdf5Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = H5I_INVALID_HID;
}

Hdf5QuietErrors::Hdf5QuietErrors() {
  H5Eget_auto2(H5E_DEFAULT, &previous_function_, &previous_data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Hdf5QuietErrors::~Hdf5QuietErrors() { H5Eset_auto2(H5E_DEFAULT, previous_function_, previous_data_); }

std::string hdf5_error_text() {
  std::string text;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned depth, const H5E_error2_t* error, void* data) -> herr_t {
        auto& out = *static_cast<std::string*>(data);
        if (depth < 2 && error->desc && *error->desc) out += (out.empty() ? "" : "; ") + std::string(error->desc);
        return 0;
      },
      &text);
  return text.empty() ? "unknown HDF5 error" : text;
}

hid_t hdf5_check(hid_t result, const std::string& path, const std::string& action) {
  T6_CHECK(result >= 0, path, ": cannot ", action, " (", hdf5_error_text(), ")");
  return result;
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value, const std::string& path) {
  Hdf5Handle type(hdf5_check(H5Tcopy(H5T_C_S1), path, "create a string type"));
  H5Tset_size(type.get(), value.empty() ? 1 : value.size());
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Hdf5Handle space(hdf5_check(H5Screate(H5S_SCALAR), path, "create a dataspace"));
  Hdf5Handle attribute(
      hdf5_check(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                 "create attribute " + name));
  hdf5_check(H5Awrite(attribute.get(), type.get(), value.c_str()), path, "write attribute " + name);
}

void write_int64_attribute(hid_t object, const std::string& name, int64_t value, const std::string& path) {
  Hdf5Handle space(hdf5_check(H5Screate(H5S_SCALAR), path, "create a dataspace"));
  Hdf5Handle attribute(hdf5_check(
      H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
      "create attribute " + name));
  hdf5_check(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), path, "write attribute " + name);
}

void write_int64_list_attribute(hid_t object, const std::string& name, const std::vector<int64_t>& values,
                                const std::string& path) {
  const hsize_t count = values.size();
  Hdf5Handle space(hdf5_check(H5Screate_simple(1, &count, nullptr), path, "create a dataspace"));
  Hdf5Handle attribute(hdf5_check(
      H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
      "create attribute " + name));
  hdf5_check(H5Awrite(attribute.get(), H5T_NATIVE_INT64, values.data()), path, "write attribute " + name);
}

void write_string_list_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values,
                                 const std::string& path) {
  Hdf5Handle type(hdf5_check(H5Tcopy(H5T_C_S1), path, "create a string type"));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const hsize_t count = values.size();
  Hdf5Handle space(hdf5_check(H5Screate_simple(1, &count, nullptr), path, "create a dataspace"));
  Hdf5Handle attribute(
      hdf5_check(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                 "create attribute " + name));
  std::vector<const char*> pointers;
  for (const auto& value : values) pointers.push_back(value.c_str());
  hdf5_check(H5Awrite(attribute.get(), type.get(), pointers.data()), path, "write attribute " + name);
}

namespace {
Hdf5Handle open_attribute(hid_t object, const std::string& name, const std::string& path) {
  T6_CHECK(H5Aexists(object, name.c_str()) > 0, path, ": attribute ", name, " is missing");
  return Hdf5Handle(hdf5_check(H5Aopen(object, name.c_str(), H5P_DEFAULT), path, "open attribute " + name));
}
}  // namespace

std::string read_string_attribute(hid_t object, const std::string& name, const std::string& path) {
  Hdf5Handle attribute = open_attribute(object, name, path);
  Hdf5Handle type(hdf5_check(H5Aget_type(attribute.get()), path, "read the type of attribute " + name));
  T6_CHECK(H5Tget_class(type.get()) == H5T_STRING && H5Tis_variable_str(type.get()) == 0, path, ": attribute ",
           name, " is not a fixed-length string");
  std::string value(H5Tget_size(type.get()), '\0');
  hdf5_check(H5Aread(attribute.get(), type.get(), value.data()), path, "read attribute " + name);
  while (!value.empty() && value.back() == '\0') value.pop_back();
  return value;
}

int64_t read_int64_attribute(hid_t object, const std::string& name, const std::string& path) {
  Hdf5Handle attribute = open_attribute(object, name, path);
  int64_t value = 0;
  hdf5_check(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), path, "read attribute " + name);
  return value;
}

std::vector<int64_t> read_int64_list_attribute(hid_t object, const std::string& name, const std::string& path) {
  Hdf5Handle attribute = open_attribute(object, name, path);
  Hdf5Handle space(hdf5_check(H5Aget_space(attribute.get()), path, "read the shape of attribute " + name));
  std::vector<int64_t> values(size_t(std::max<hssize_t>(0, H5Sget_simple_extent_npoints(space.get()))));
  hdf5_check(H5Aread(attribute.get(), H5T_NATIVE_INT64, values.data()), path, "read attribute " + name);
  return values;
}

std::vector<std::string> read_string_list_attribute(hid_t object, const std::string& name, const std::string& path) {
  Hdf5Handle attribute = open_attribute(object, name, path);
  Hdf5Handle space(hdf5_check(H5Aget_space(attribute.get()), path, "read the shape of attribute " + name));
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  Hdf5Handle type(hdf5_check(H5Tcopy(H5T_C_S1), path, "create a string type"));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  std::vector<char*> pointers(size_t(count > 0 ? count : 0), nullptr);
  hdf5_check(H5Aread(attribute.get(), type.get(), pointers.data()), path, "read attribute " + name);
  std::vector<std::string> values(pointers.begin(), pointers.end());
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
  return values;
}

}  // namespace t6
