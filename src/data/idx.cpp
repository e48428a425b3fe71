#include "data/idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace qmoe::data {

bool is_gzip(const std::uint8_t* p, std::size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

std::vector<std::uint8_t> gunzip(const std::uint8_t* p, std::size_t n, const std::string& name,
                                 std::size_t max_out) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    throw std::runtime_error(name + ": zlib initialisation failed");
  std::vector<std::uint8_t> out;
  std::size_t in_left = n;
  const std::uint8_t* in = p;
  int rc = Z_OK;
  std::string err;
  while (true) {
    if (zs.avail_in == 0 && in_left > 0) {
      uInt chunk = static_cast<uInt>(std::min<std::size_t>(in_left, 1u << 30));
      zs.next_in = const_cast<Bytef*>(in);
      zs.avail_in = chunk;
      in += chunk;
      in_left -= chunk;
    }
    if (out.size() > max_out) {
      err = name + ": decompressed data exceeds " + std::to_string(max_out) + " bytes";
      break;
    }
    std::size_t old = out.size();
    std::size_t grow = std::min<std::size_t>(std::max<std::size_t>(old, 1u << 16), max_out + 1 - old);
    out.resize(old + grow);
    zs.next_out = out.data() + old;
    zs.avail_out = static_cast<uInt>(grow);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + (grow - zs.avail_out));
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) {
      err = name + ": gzip stream is truncated";
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      err = name + ": corrupt gzip data (" + (zs.msg ? zs.msg : "zlib error " + std::to_string(rc)) + ")";
      break;
    }
  }
  std::size_t trailing = zs.avail_in + in_left;
  inflateEnd(&zs);
  if (err.empty() && out.size() > max_out)
    err = name + ": decompressed data exceeds " + std::to_string(max_out) + " bytes";
  if (!err.empty()) throw std::runtime_error(err);
  if (trailing > 0)
    throw std::runtime_error(name + ": " + std::to_string(trailing) + " bytes of trailing data after the gzip stream");
  out.shrink_to_fit();
  return out;
}

IdxArray parse_idx(const std::uint8_t* p, std::size_t n, const std::string& name,
                   std::size_t max_bytes) {
  if (is_gzip(p, n)) {
    std::vector<std::uint8_t> raw = gunzip(p, n, name, max_bytes + 4 + 4 * 4);
    if (is_gzip(raw.data(), raw.size()))
      throw std::runtime_error(name + ": not an IDX file (doubly gzip-compressed)");
    return parse_idx(raw.data(), raw.size(), name, max_bytes);
  }
  if (n < 4) throw std::runtime_error(name + ": not an IDX file (only " + std::to_string(n) + " bytes)");
  if (p[0] != 0 || p[1] != 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02x %02x %02x %02x", p[0], p[1], p[2], p[3]);
    throw std::runtime_error(name + ": not an IDX file (bad magic " + buf + ")");
  }
  if (p[2] != 0x08) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", p[2]);
    throw std::runtime_error(name + ": unsupported IDX element type " + buf + " (only 0x08 unsigned byte)");
  }
  const int nd = p[3];
  if (nd < 1 || nd > 4)
    throw std::runtime_error(name + ": unsupported IDX dimension count " + std::to_string(nd) + " (expected 1..4)");
  const std::size_t header = 4 + 4 * std::size_t(nd);
  if (n < header)
    throw std::runtime_error(name + ": truncated IDX header (" + std::to_string(n) + " of " +
                             std::to_string(header) + " bytes)");
  IdxArray a;
  a.dims.resize(nd);
  std::uint64_t total = 1;
  bool too_big = false;
  for (int i = 0; i < nd; ++i) {
    const std::uint8_t* q = p + 4 + 4 * i;
    std::uint32_t d = (std::uint32_t(q[0]) << 24) | (std::uint32_t(q[1]) << 16) |
                      (std::uint32_t(q[2]) << 8) | std::uint32_t(q[3]);
    a.dims[i] = d;
    if (!too_big && (__builtin_mul_overflow(total, std::uint64_t(d), &total) || total > max_bytes))
      too_big = true;
  }
  for (auto d : a.dims) if (d == 0) { too_big = false; total = 0; }
  std::string shape;
  for (int i = 0; i < nd; ++i) shape += (i ? "x" : "") + std::to_string(a.dims[i]);
  if (too_big)
    throw std::runtime_error(name + ": IDX header claims shape " + shape + ", more than the limit of " +
                             std::to_string(max_bytes) + " bytes");
  const std::size_t have = n - header;
  if (have < total)
    throw std::runtime_error(name + ": truncated: header claims shape " + shape + " (" + std::to_string(total) +
                             " bytes) but the file has only " + std::to_string(have) + " bytes of data");
  if (have > total)
    throw std::runtime_error(name + ": " + std::to_string(have - total) + " unexpected bytes after the " + shape +
                             " IDX data");
  a.data.assign(p + header, p + header + total);
  return a;
}

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw std::runtime_error(path + ": is a directory, not a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  f.seekg(0, std::ios::end);
  std::streamoff size = f.tellg();
  if (size < 0) throw std::runtime_error(path + ": cannot determine file size");
  f.seekg(0, std::ios::beg);
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(size));
  if (size > 0 && !f.read(reinterpret_cast<char*>(buf.data()), size))
    throw std::runtime_error(path + ": read error");
  return buf;
}

IdxArray read_idx_file(const std::string& path) {
  std::vector<std::uint8_t> bytes = read_file_bytes(path);
  return parse_idx(bytes.data(), bytes.size(), path);
}

}  // namespace qmoe::data
