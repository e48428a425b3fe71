// Minimal PNG writer (zlib) and the per-class sample grid of `qmoe data --png`.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/data.hpp"

namespace qmoe::data {

namespace {
void put_u32(std::vector<std::uint8_t>& v, std::uint32_t x) {
  v.push_back(std::uint8_t(x >> 24));
  v.push_back(std::uint8_t(x >> 16));
  v.push_back(std::uint8_t(x >> 8));
  v.push_back(std::uint8_t(x));
}

void chunk(std::vector<std::uint8_t>& out, const char* type, const std::vector<std::uint8_t>& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, out.data() + start, static_cast<uInt>(out.size() - start));
  put_u32(out, static_cast<std::uint32_t>(crc));
}
}  // namespace

void write_png(const std::string& path, int width, int height, int channels,
               const std::vector<std::uint8_t>& pixels) {
  if (width <= 0 || height <= 0 || (channels != 1 && channels != 3))
    throw std::runtime_error("write_png: bad image shape");
  const std::size_t stride = static_cast<std::size_t>(width) * channels;
  if (pixels.size() != stride * height) throw std::runtime_error("write_png: pixel buffer has the wrong size");
  std::vector<std::uint8_t> raw;
  raw.reserve((stride + 1) * height);
  for (int r = 0; r < height; ++r) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), pixels.begin() + r * stride, pixels.begin() + (r + 1) * stride);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> z(zlen);
  if (compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 9) != Z_OK)
    throw std::runtime_error("write_png: compression failed");
  z.resize(zlen);

  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<std::uint8_t> ihdr;
  put_u32(ihdr, static_cast<std::uint32_t>(width));
  put_u32(ihdr, static_cast<std::uint32_t>(height));
  ihdr.push_back(8);                           // bit depth
  ihdr.push_back(channels == 1 ? 0 : 2);       // colour type: grey / RGB
  ihdr.push_back(0);                           // compression
  ihdr.push_back(0);                           // filter
  ihdr.push_back(0);                           // interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", {});

  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::runtime_error("cannot write " + path + ": it is a directory (give a file name, e.g. " +
                             (std::filesystem::path(path) / "samples.png").string() + ")");
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path + " (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(png.data(), 1, png.size(), f) == png.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot write " + path + " (write error)");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();  // before remove() overwrites ec
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot write " + path + " (" + why + ")");
  }
}

namespace {
// 3x5 bitmap digits for the class labels at the left of each row.
constexpr const char* kDigits[10][5] = {
    {"###", "#.#", "#.#", "#.#", "###"}, {".#.", "##.", ".#.", ".#.", "###"}, {"###", "..#", "###", "#..", "###"},
    {"###", "..#", "###", "..#", "###"}, {"#.#", "#.#", "###", "..#", "..#"}, {"###", "#..", "###", "..#", "###"},
    {"###", "#..", "###", "#.#", "###"}, {"###", "..#", "..#", "..#", "..#"}, {"###", "#.#", "###", "#.#", "###"},
    {"###", "#.#", "###", "..#", "###"}};
}  // namespace

Image render_sample_grid(const Dataset& d, int per_class) {
  constexpr int kOrigScale = 2, kSmallScale = 7, kGap = 4, kCellGap = 14, kMargin = 10, kFont = 4;
  const bool has_raw = d.raw_rows == 28 && d.raw_cols == 28 && d.raw.size() == d.size() * 784;
  const int orig_w = has_raw ? 28 * kOrigScale + kGap : 0;
  const int small_w = 8 * kSmallScale;  // 56
  const int cell_w = orig_w + small_w;
  const int cell_h = std::max(has_raw ? 28 * kOrigScale : 0, 8 * kSmallScale);
  int label_digits = 1;
  for (int c = d.n_classes - 1; c >= 10; c /= 10) ++label_digits;
  const int label_w = label_digits * 4 * kFont;
  per_class = std::max(per_class, 1);
  Image im;
  im.width = kMargin + label_w + kMargin + per_class * cell_w + (per_class - 1) * kCellGap + kMargin;
  im.height = kMargin + std::max(d.n_classes, 1) * (cell_h + kCellGap) - kCellGap + kMargin;
  im.pixels.assign(static_cast<std::size_t>(im.width) * im.height, 255);
  auto px = [&](int x, int y) -> std::uint8_t& { return im.pixels[static_cast<std::size_t>(y) * im.width + x]; };

  auto [lo, hi] = d.value_range();
  for (int c = 0; c < d.n_classes; ++c) {
    const int y0 = kMargin + c * (cell_h + kCellGap);
    // label
    std::string s = std::to_string(c);
    for (std::size_t k = 0; k < s.size(); ++k)
      for (int r = 0; r < 5; ++r)
        for (int q = 0; q < 3; ++q)
          if (kDigits[s[k] - '0'][r][q] == '#')
            for (int a = 0; a < kFont; ++a)
              for (int b = 0; b < kFont; ++b)
                px(kMargin + static_cast<int>(k) * 4 * kFont + q * kFont + b, y0 + (cell_h - 5 * kFont) / 2 + r * kFont + a) = 0;
    int shown = 0;
    for (std::size_t i = 0; i < d.size() && shown < per_class; ++i) {
      if (d.y[i] != c) continue;
      const int x0 = kMargin + label_w + kMargin + shown * (cell_w + kCellGap);
      double small[64];
      if (has_raw) {
        const std::uint8_t* img = d.raw.data() + i * 784;
        for (int r = 0; r < 28 * kOrigScale; ++r)
          for (int q = 0; q < 28 * kOrigScale; ++q) px(x0 + q, y0 + r) = img[(r / kOrigScale) * 28 + q / kOrigScale];
        downsample_28_to_8(img, small);
      } else {
        const double* row = d.row(i);
        for (int k = 0; k < 64 && k < d.n_features; ++k)
          small[k] = hi > lo ? (row[k] - lo) / (hi - lo) * 255.0 : 0.0;
      }
      for (int r = 0; r < 8 * kSmallScale; ++r)
        for (int q = 0; q < 8 * kSmallScale; ++q)
          px(x0 + orig_w + q, y0 + r) =
              static_cast<std::uint8_t>(std::lround(std::clamp(small[(r / kSmallScale) * 8 + q / kSmallScale], 0.0, 255.0)));
      ++shown;
    }
  }
  return im;
}

}  // namespace qmoe::data
