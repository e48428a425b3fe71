// IDX file reader (the MNIST container format), raw or gzip-compressed.
// Every malformed input raises std::runtime_error; nothing is allocated on the
// word of a header alone (sizes are checked against the bytes actually present).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qmoe::data {

struct IdxArray {
  std::vector<std::uint32_t> dims;  // e.g. {60000, 28, 28} or {60000}
  std::vector<std::uint8_t> data;   // row-major, product(dims) bytes
  std::size_t count() const { return dims.empty() ? 0 : dims[0]; }
};

// Default limit on decompressed / payload size (1 GiB).
inline constexpr std::size_t kIdxMaxBytes = std::size_t(1) << 30;

// True if the bytes start with the gzip magic 1f 8b.
bool is_gzip(const std::uint8_t* p, std::size_t n);

// Inflates a gzip stream; refuses to produce more than max_out bytes.
// `name` is used in error messages.
std::vector<std::uint8_t> gunzip(const std::uint8_t* p, std::size_t n, const std::string& name,
                                 std::size_t max_out = kIdxMaxBytes);

// Parses IDX bytes (gzip is detected by its magic and inflated first).
// Only element type 0x08 (unsigned byte) with 1..4 dimensions is accepted.
IdxArray parse_idx(const std::uint8_t* p, std::size_t n, const std::string& name,
                   std::size_t max_bytes = kIdxMaxBytes);

// Whole file into memory (error names the file if it cannot be read).
std::vector<std::uint8_t> read_file_bytes(const std::string& path);

// read_file_bytes + parse_idx.
IdxArray read_idx_file(const std::string& path);

}  // namespace qmoe::data
