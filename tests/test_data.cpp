// Tests for the data layer (src/data): SHA-256, IDX reader, preprocessing,
// tasks, verification, CSV, validation split, PNG, and the real data sets.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "data/data.hpp"
#include "data/idx.hpp"
#include "data/sha256.hpp"

namespace fs = std::filesystem;
using namespace qmoe::data;
using Bytes = std::vector<std::uint8_t>;

namespace {

// ---------------------------------------------------------------- helpers

Bytes idx_bytes(const std::vector<std::uint32_t>& dims, const Bytes& data, std::uint8_t type = 0x08) {
  Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Bytes gzip_bytes(const Bytes& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&zs, in.size()) + 64);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

Bytes iota_bytes(std::size_t n, int start = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((start + i) & 0xff);
  return b;
}

void write_file(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void write_text(const fs::path& p, const std::string& s) { write_file(p, Bytes(s.begin(), s.end())); }

// Expects `f` to throw std::runtime_error whose message contains every part.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing '" << *parts.begin() << "'";
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "multi-line message: " << m;
    for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
  }
}

IdxArray parse(const Bytes& b, std::size_t max = kIdxMaxBytes) { return parse_idx(b.data(), b.size(), "t.idx", max); }

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("qmoe_test_data_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// A 28x28 image with pixel (r,c) = f(r,c).
template <class F>
Bytes image(F f) {
  Bytes b(784);
  for (int r = 0; r < 28; ++r)
    for (int c = 0; c < 28; ++c) b[r * 28 + c] = static_cast<std::uint8_t>(f(r, c));
  return b;
}

}  // namespace

// ---------------------------------------------------------------- SHA-256

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // Lengths around the 55/56/64-byte padding edges (reference: Python hashlib).
  const std::pair<int, const char*> v[] = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"}};
  for (auto [n, h] : v) EXPECT_EQ(sha256_hex(std::string(n, 'a')), h) << n;
}

TEST(Sha256, StreamingEqualsOneShot) {
  const std::string s(1000, 'x');
  const std::string want = sha256_hex(s);
  for (std::size_t chunk : {1u, 3u, 63u, 64u, 65u, 200u}) {
    Sha256 h;
    for (std::size_t i = 0; i < s.size(); i += chunk) h.update(s.data() + i, std::min(chunk, s.size() - i));
    EXPECT_EQ(h.hex_digest(), want) << chunk;
  }
  Sha256 h;
  h.hex_digest();
  EXPECT_THROW(h.update("a", 1), std::logic_error);
}

// ---------------------------------------------------------------- IDX reader

TEST(Idx, ParsesRaw) {
  IdxArray a = parse(idx_bytes({3, 2, 4}, iota_bytes(24)));
  EXPECT_EQ(a.dims, (std::vector<std::uint32_t>{3, 2, 4}));
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.data, iota_bytes(24));
  IdxArray l = parse(idx_bytes({5}, Bytes{1, 2, 3, 4, 5}));
  EXPECT_EQ(l.dims, (std::vector<std::uint32_t>{5}));
  EXPECT_EQ(l.data, (Bytes{1, 2, 3, 4, 5}));
}

TEST(Idx, ParsesGzip) {
  Bytes raw = idx_bytes({10, 28, 28}, iota_bytes(7840, 7));
  Bytes gz = gzip_bytes(raw);
  ASSERT_TRUE(is_gzip(gz.data(), gz.size()));
  ASSERT_LT(gz.size(), raw.size());
  IdxArray a = parse(gz);
  EXPECT_EQ(a.dims, (std::vector<std::uint32_t>{10, 28, 28}));
  EXPECT_EQ(a.data, iota_bytes(7840, 7));
}

TEST(Idx, ZeroItems) {
  IdxArray a = parse(idx_bytes({0, 28, 28}, {}));
  EXPECT_EQ(a.count(), 0u);
  EXPECT_TRUE(a.data.empty());
}

// Damaged headers and sizes: each file is refused with an error naming what
// is wrong (and the file, "t.idx", where the row lists it).
TEST(Idx, RejectsMalformedFiles) {
  Bytes magic_byte0 = idx_bytes({2}, {1, 2}), magic_byte1 = magic_byte0;
  magic_byte0[0] = 1;
  magic_byte1[1] = 8;
  Bytes mid_header = idx_bytes({2, 3, 4}, iota_bytes(24));
  mid_header.resize(4 + 4 * 2 + 1);  // mid third dimension
  const struct {
    const char* what;
    Bytes file;
    std::vector<std::string> parts;
  } cases[] = {
      {"bad magic, byte 0", magic_byte0, {"t.idx", "not an IDX file", "bad magic"}},
      {"bad magic, byte 1", magic_byte1, {"bad magic"}},
      {"empty", Bytes{}, {"not an IDX file"}},
      {"3 bytes", Bytes{0, 0, 8}, {"not an IDX file"}},
      {"text", Bytes{'h', 'e', 'l', 'l', 'o'}, {"bad magic"}},
      {"element type 0x0d", idx_bytes({2}, {0, 0, 0, 0, 0, 0, 0, 0}, 0x0D), {"element type 0x0d"}},
      {"element type 0x09", idx_bytes({2}, {1, 2}, 0x09), {"element type 0x09"}},
      {"0 dimensions", Bytes{0, 0, 8, 0}, {"dimension count 0"}},
      {"5 dimensions", idx_bytes({1, 1, 1, 1, 1}, {7}), {"dimension count 5"}},
      {"255 dimensions", Bytes{0, 0, 8, 255}, {"dimension count 255"}},
      {"truncated header", mid_header, {"truncated IDX header"}},
      {"truncated data", idx_bytes({3, 2, 4}, iota_bytes(23)), {"truncated", "3x2x4", "24 bytes", "only 23"}},
      {"trailing bytes", idx_bytes({2}, {1, 2, 3}), {"1 unexpected bytes"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    expect_error([&] { parse(c.file); }, c.parts);
  }
}

TEST(Idx, HugeHeaderClaimIsRejectedWithoutAllocating) {
  // 0xffffffff^3 bytes claimed (would overflow 64 bits), 4 bytes present.
  Bytes b = idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, {1, 2, 3, 4});
  expect_error([&] { parse(b); }, {"4294967295x4294967295x4294967295", "more than the limit"});
  // Within the limit but more than the file has: a truncation error.
  Bytes c = idx_bytes({60000, 28, 28}, {1, 2, 3});
  expect_error([&] { parse(c); }, {"truncated", "47040000 bytes", "only 3"});
  // A zero dimension after huge ones is a valid empty array.
  EXPECT_EQ(parse(idx_bytes({0xffffffffu, 0xffffffffu, 0}, {})).data.size(), 0u);
}

TEST(Idx, RejectsCorruptGzip) {
  Bytes gz = gzip_bytes(idx_bytes({100}, iota_bytes(100)));
  Bytes bad = gz;
  for (std::size_t i = 10; i < bad.size() - 8; ++i) bad[i] ^= 0x5a;
  expect_error([&] { parse(bad); }, {"t.idx"});
  Bytes crc = gz;
  crc[crc.size() - 6] ^= 1;  // CRC-32 trailer
  expect_error([&] { parse(crc); }, {"corrupt gzip"});
  Bytes trunc(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2));
  expect_error([&] { parse(trunc); }, {"truncated"});
  expect_error([&] { parse(Bytes{0x1f, 0x8b}); }, {"t.idx"});
  Bytes trailing = gz;
  trailing.push_back(0);
  expect_error([&] { parse(trailing); }, {"trailing data after the gzip stream"});
}

TEST(Idx, GzipWithBadIdxInside) {
  expect_error([&] { parse(gzip_bytes(idx_bytes({3, 2, 4}, iota_bytes(10)))); }, {"truncated", "only 10"});
  expect_error([&] { parse(gzip_bytes(Bytes{1, 2, 3, 4, 5})); }, {"bad magic"});
  expect_error([&] { parse(gzip_bytes(gzip_bytes(idx_bytes({1}, {1})))); }, {"doubly gzip"});
}

TEST(Idx, GzipBombIsCapped) {
  // 4 MB of zeros compress to ~4 KB; with a 1 MB limit it must be refused.
  Bytes gz = gzip_bytes(idx_bytes({4u << 20}, Bytes(4u << 20, 0)));
  ASSERT_LT(gz.size(), 20000u);
  expect_error([&] { parse(gz, 1u << 20); }, {"exceeds"});
  EXPECT_EQ(parse(gz).data.size(), 4u << 20);  // fine under the default limit
  // Exactly at the limit is accepted (payload + 8-byte header).
  Bytes gz2 = gzip_bytes(idx_bytes({1000}, Bytes(1000, 1)));
  EXPECT_EQ(parse(gz2, 1000).data.size(), 1000u);
  expect_error([&] { parse(gz2, 999); }, {"more than the limit of 999"});
}

TEST_F(TempDir, ReadIdxFile) {
  write_file(dir_ / "a-idx1-ubyte", idx_bytes({4}, {9, 8, 7, 6}));
  write_file(dir_ / "a-idx1-ubyte.gz", gzip_bytes(idx_bytes({4}, {9, 8, 7, 6})));
  EXPECT_EQ(read_idx_file((dir_ / "a-idx1-ubyte").string()).data, (Bytes{9, 8, 7, 6}));
  EXPECT_EQ(read_idx_file((dir_ / "a-idx1-ubyte.gz").string()).data, (Bytes{9, 8, 7, 6}));
  expect_error([&] { read_idx_file((dir_ / "nope").string()); }, {"nope", "cannot open"});
  write_file(dir_ / "short", Bytes{0, 0, 8, 1, 0, 0});
  expect_error([&] { read_idx_file((dir_ / "short").string()); }, {"short", "truncated IDX header"});
}

// Inputs from a 4-minute fuzz/fuzz_idx.cpp run (2.6M executions, no crash):
// one per distinct rejection path that the hand-written cases above missed.
TEST(Idx, FuzzCorpusInputs) {
  // gzip magic, deflate method, reserved header flag 0x20 set.
  expect_error([&] { parse(Bytes{0x1f, 0x8b, 0x08, 0x20}); }, {"corrupt gzip data", "unknown header flags"});
  // Only the gzip magic.
  expect_error([&] { parse(Bytes{0x1f, 0x8b}); }, {"gzip stream is truncated"});
  // 4 dimensions near 2^32: the product overflows 64 bits; must not allocate.
  expect_error([&] { parse(Bytes{0, 0, 8, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0x2f, 0x02}); },
               {"4294967295x4294967295x4294967295x4294913794", "more than the limit"});
}

// The fuzzer found CSV fields with NUL and other control bytes being copied
// raw into error messages (NUL cut the message, CR broke the "one line" rule).
TEST(Csv, FuzzFoundControlBytesAreEscapedInErrors) {
  static const char l1[] = "a\xff\xff\n1,2,0\n3.5,-4e!!<\0\0\x01\r!!,\n";
  static const char l2[] = "2\0\b\x01\0\0\0\0\x01?\x03\x11,6";
  const std::string in1(l1, sizeof l1 - 1), in2(l2, sizeof l2 - 1);
  const std::string in3("1,2,0\n1\r2,3,1\n");
  for (const auto& in : {in1, in2, in3}) {
    try {
      parse_csv(in, "f.csv");
      ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
      std::string m = e.what();
      EXPECT_EQ(m.size(), std::strlen(e.what())) << "NUL in message";
      for (unsigned char c : m) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << int(c) << " in: " << m;
      EXPECT_NE(m.find("f.csv:"), std::string::npos) << m;
    }
  }
  CsvOptions no_header;  // (with the auto setting, an all-text first line is a header)
  no_header.header = CsvHeader::No;
  expect_error([&] { parse_csv(in2, "f.csv", no_header); }, {"f.csv:1: column 1: '2\\x00\\x08\\x01"});
  expect_error([&] { parse_csv(in3, "f.csv"); }, {"f.csv:2: column 1: '1\\x0d2'"});
}

// ---------------------------------------------------------------- preprocessing

TEST(Preprocess, CropAndPoolByHand) {
  // pixel(r,c) = r + c: the 3x3 block of output (R,C) starts at (2+3R, 2+3C),
  // so its mean is (2+3R+1) + (2+3C+1) = 6 + 3R + 3C.
  Bytes img = image([](int r, int c) { return r + c; });
  double out[64];
  downsample_28_to_8(img.data(), out);
  for (int R = 0; R < 8; ++R)
    for (int C = 0; C < 8; ++C) EXPECT_DOUBLE_EQ(out[R * 8 + C], 6.0 + 3 * R + 3 * C) << R << "," << C;
}

TEST(Preprocess, CropBordersAndFeatureOrder) {
  double out[64];
  // Pixels outside the centre 24x24 (rows/cols 0,1,26,27) do not matter.
  Bytes border = image([](int r, int c) { return (r < 2 || r > 25 || c < 2 || c > 25) ? 255 : 0; });
  downsample_28_to_8(border.data(), out);
  for (double v : out) EXPECT_EQ(v, 0.0);
  // One bright pixel at (2,2) -> feature 0; at (25,25) -> feature 63;
  // at row 2, col 5 (block row 0, col 1) -> feature 1; at row 5, col 2 -> feature 8.
  const std::pair<std::pair<int, int>, int> cases[] = {{{2, 2}, 0}, {{25, 25}, 63}, {{2, 5}, 1}, {{5, 2}, 8}};
  for (const auto& [pixel, k] : cases) {
    const std::pair<int, int> rc = pixel;  // a structured binding cannot be captured before C++20 in clang 14
    Bytes img = image([&](int r, int c) { return (r == rc.first && c == rc.second) ? 225 : 0; });
    downsample_28_to_8(img.data(), out);
    for (int j = 0; j < 64; ++j) EXPECT_DOUBLE_EQ(out[j], j == k ? 25.0 : 0.0) << "pixel " << rc.first << "," << rc.second;
  }
}

TEST(Preprocess, Scaling) {
  EXPECT_NEAR(scale_pixel(0, Scaling::TorchQuantum), -0.1307 / 0.3081, 1e-12);
  EXPECT_NEAR(scale_pixel(255, Scaling::TorchQuantum), (1 - 0.1307) / 0.3081, 1e-12);
  EXPECT_NEAR(scale_pixel(51, Scaling::Unit), 0.2, 1e-12);
  EXPECT_NEAR(scale_pixel(255, Scaling::Pi), std::numbers::pi, 1e-12);
  EXPECT_NEAR(scale_pixel(0, Scaling::Pi), 0.0, 1e-12);
  EXPECT_EQ(parse_scaling("tq"), Scaling::TorchQuantum);
  EXPECT_EQ(parse_scaling("unit"), Scaling::Unit);
  EXPECT_EQ(parse_scaling("pi"), Scaling::Pi);
  for (auto& n : scaling_names()) EXPECT_EQ(scaling_name(parse_scaling(n)), n);
  expect_error([] { parse_scaling("bogus"); }, {"bogus", "tq, unit, pi"});
}

// ---------------------------------------------------------------- tasks

TEST(Tasks, Table) {
  ASSERT_NE(find_task("mnist4"), nullptr);
  EXPECT_EQ(find_task("mnist4")->labels, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(find_task("mnist2")->labels, (std::vector<int>{3, 6}));
  EXPECT_EQ(find_task("fashion4")->labels, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(find_task("fashion4")->class_names,
            (std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress"}));
  EXPECT_EQ(find_task("fashion2")->labels, (std::vector<int>{3, 6}));
  EXPECT_EQ(find_task("fashion2")->class_names, (std::vector<std::string>{"Dress", "Shirt"}));
  EXPECT_EQ(find_task("mnist2")->dataset, "mnist");
  EXPECT_EQ(find_task("fashion2")->dataset, "fashion-mnist");
  EXPECT_EQ(find_task("mnist3"), nullptr);
  EXPECT_EQ(find_task("mnist10")->labels, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(find_task("fashion10")->labels, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(find_task("fashion10")->class_names[9], "Ankle boot");
  EXPECT_EQ(find_task("fashion10")->dataset, "fashion-mnist");
  EXPECT_EQ(task_list(), "mnist4, mnist2, fashion4, fashion2, mnist10, fashion10");
}

TEST(Tasks, UnknownTaskListsValidOnes) {
  expect_error([] { load_task("mnist9", LoadOptions{}); }, {"unknown task 'mnist9'", "mnist4, mnist2, fashion4, fashion2, mnist10, fashion10"});
}

TEST(Tasks, SelectIndices) {
  std::vector<std::uint8_t> labels = {3, 6, 1, 6, 3, 3, 6, 0, 6};
  EXPECT_EQ(select_indices(labels, {3, 6}, 2, 0), (std::vector<std::size_t>{0, 1, 3, 4}));
  EXPECT_EQ(select_indices(labels, {3, 6}, 0, 0), (std::vector<std::size_t>{0, 1, 3, 4, 5, 6, 8}));
  EXPECT_EQ(select_indices(labels, {6, 0}, 10, 0), (std::vector<std::size_t>{1, 3, 6, 7, 8}));
  EXPECT_EQ(select_indices(labels, {3, 6}, 0, 3), (std::vector<std::size_t>{0, 1, 3}));
  EXPECT_TRUE(select_indices(labels, {9}, 0, 0).empty());
}

TEST(Tasks, ResolveDataDir) {
  EXPECT_EQ(resolve_data_dir("/flag", "/env", "/xdg", "/home/u"), "/flag");
  EXPECT_EQ(resolve_data_dir("", "/env", "/xdg", "/home/u"), "/env");
  EXPECT_EQ(resolve_data_dir("", nullptr, "/xdg", "/home/u"), "/xdg/qmoe");
  EXPECT_EQ(resolve_data_dir("", "", "", "/home/u"), "/home/u/.local/share/qmoe");
  EXPECT_EQ(resolve_data_dir("", nullptr, nullptr, "/home/u"), "/home/u/.local/share/qmoe");
  EXPECT_THROW(resolve_data_dir("", nullptr, nullptr, nullptr), std::runtime_error);
  EXPECT_EQ(fashion_dirs("/d"), (std::vector<std::string>{"/d/fashion-mnist", "/usr/share/datasets/fashion-mnist"}));
}

namespace {
// Writes a small synthetic MNIST-layout data set: image i has every pixel
// equal to 10*label + i%10, so crop+pool gives that constant.
void write_synthetic(const fs::path& dir, const std::vector<std::uint8_t>& train_labels,
                     const std::vector<std::uint8_t>& test_labels, bool gz) {
  auto imgs = [](const std::vector<std::uint8_t>& labels) {
    Bytes b;
    for (std::size_t i = 0; i < labels.size(); ++i) b.insert(b.end(), 784, static_cast<std::uint8_t>(10 * labels[i] + i % 10));
    return b;
  };
  const std::string sfx = gz ? ".gz" : "";
  auto w = [&](const std::string& name, const Bytes& b) { write_file(dir / (name + sfx), gz ? gzip_bytes(b) : b); };
  w("train-images-idx3-ubyte", idx_bytes({static_cast<std::uint32_t>(train_labels.size()), 28, 28}, imgs(train_labels)));
  w("train-labels-idx1-ubyte", idx_bytes({static_cast<std::uint32_t>(train_labels.size())}, train_labels));
  w("t10k-images-idx3-ubyte", idx_bytes({static_cast<std::uint32_t>(test_labels.size()), 28, 28}, imgs(test_labels)));
  w("t10k-labels-idx1-ubyte", idx_bytes({static_cast<std::uint32_t>(test_labels.size())}, test_labels));
}
}  // namespace

TEST_F(TempDir, LabelMappingAndLimitsOnSyntheticMnist) {
  write_synthetic(dir_ / "mnist", {6, 3, 1, 3, 6, 6, 3, 0, 3}, {3, 3, 6, 9}, false);
  LoadOptions o;
  o.data_dir = dir_.string();
  o.verify = false;
  o.scaling = Scaling::Unit;
  o.train_per_class = 2;
  o.keep_raw = true;
  TaskData t = load_task("mnist2", o);
  EXPECT_EQ(t.task, "mnist2");
  EXPECT_EQ(t.train.n_features, 64);
  EXPECT_EQ(t.train.n_classes, 2);
  EXPECT_EQ(t.train.class_names, (std::vector<std::string>{"3", "6"}));
  // digit 3 -> label 0, digit 6 -> label 1; at most 2 per class, in file order.
  EXPECT_EQ(t.train.y, (std::vector<int>{1, 0, 0, 1}));
  EXPECT_EQ(t.train.source_index, (std::vector<std::int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(t.test.y, (std::vector<int>{0, 0, 1}));
  ASSERT_EQ(t.train.x.size(), 4u * 64);
  // Sample 1 (file row 3): pixel 10*3 + 3 = 33 -> 33/255 everywhere.
  for (int k = 0; k < 64; ++k) EXPECT_NEAR(t.train.row(2)[k], 33.0 / 255, 1e-12);
  EXPECT_NEAR(t.train.row(0)[5], 60.0 / 255, 1e-12);
  EXPECT_EQ(t.train.raw.size(), 4u * 784);
  EXPECT_EQ(t.train.raw[2 * 784 + 400], 33);
  EXPECT_EQ(t.train.class_counts(), (std::vector<std::size_t>{2, 2}));

  o.train_per_class = 0;
  o.max_train = 3;
  t = load_task("mnist2", o);
  EXPECT_EQ(t.train.source_index, (std::vector<std::int64_t>{0, 1, 3}));
  o.max_train = 0;
  t = load_task("mnist2", o);
  EXPECT_EQ(t.train.size(), 7u);

  TaskData t4 = load_task("mnist4", o);
  EXPECT_EQ(t4.train.y, (std::vector<int>{3, 1, 3, 3, 0, 3}));
  EXPECT_EQ(t4.test.y, (std::vector<int>{3, 3}));
}

TEST_F(TempDir, FashionIsReadFromDataDirGzip) {
  write_synthetic(dir_ / "fashion-mnist", {0, 3, 6, 6, 1}, {6, 3}, true);
  LoadOptions o;
  o.data_dir = dir_.string();
  o.verify = false;
  TaskData t = load_task("fashion2", o);
  EXPECT_EQ(t.source_dir, (dir_ / "fashion-mnist").string());
  EXPECT_EQ(t.train.y, (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(t.test.y, (std::vector<int>{1, 0}));
  EXPECT_NEAR(t.train.row(0)[0], scale_pixel(31, kDefaultScaling), 1e-12);
}

TEST_F(TempDir, WrongShapesAreErrors) {
  LoadOptions o;
  o.data_dir = dir_.string();
  o.verify = false;
  write_file(dir_ / "mnist/train-images-idx3-ubyte", idx_bytes({2, 27, 28}, Bytes(2 * 27 * 28)));
  write_file(dir_ / "mnist/train-labels-idx1-ubyte", idx_bytes({2}, {3, 6}));
  write_file(dir_ / "mnist/t10k-images-idx3-ubyte", idx_bytes({1, 28, 28}, Bytes(784)));
  write_file(dir_ / "mnist/t10k-labels-idx1-ubyte", idx_bytes({2}, {3, 6}));
  expect_error([&] { load_task("mnist2", o); }, {"train-images-idx3-ubyte", "28 x 28", "2x27x28"});
  write_file(dir_ / "mnist/train-images-idx3-ubyte", idx_bytes({2, 28, 28}, Bytes(2 * 784)));
  expect_error([&] { load_task("mnist2", o); }, {"t10k-labels-idx1-ubyte", "2 labels", "has 1 images"});
  write_file(dir_ / "mnist/t10k-labels-idx1-ubyte", idx_bytes({1, 1}, {3}));
  expect_error([&] { load_task("mnist2", o); }, {"t10k-labels-idx1-ubyte", "1-dimensional"});
  write_file(dir_ / "mnist/t10k-labels-idx1-ubyte", idx_bytes({1}, {3, 3}));
  expect_error([&] { load_task("mnist2", o); }, {"t10k-labels-idx1-ubyte", "unexpected bytes", "fetch-mnist.sh"});
}

// ---------------------------------------------------------------- verification

TEST_F(TempDir, VerifyFileAndCache) {
  const fs::path f = dir_ / "blob";
  write_text(f, "hello world");
  const std::string sha = sha256_hex("hello world");
  KnownFile k{"test", "blob", 11, sha.c_str()};
  const std::string cache = (dir_ / "cache").string();
  fs::create_directories(cache);
  EXPECT_TRUE(verify_file(f.string(), k, "run FIX", ""));
  EXPECT_TRUE(verify_file(f.string(), k, "run FIX", ""));  // no cache: hashed again
  EXPECT_TRUE(verify_file(f.string(), k, "run FIX", cache));
  EXPECT_TRUE(fs::exists(fs::path(cache) / ".qmoe-verified"));
  EXPECT_FALSE(verify_file(f.string(), k, "run FIX", cache));  // cached
  // Same size, different content, new mtime: must be hashed again and fail.
  write_text(f, "hello World");
  fs::last_write_time(f, fs::last_write_time(f) + std::chrono::seconds(5));
  expect_error([&] { verify_file(f.string(), k, "run FIX", cache); }, {f.string(), "damaged", "SHA-256", "run FIX"});
  // Wrong size.
  write_text(f, "hello");
  expect_error([&] { verify_file(f.string(), k, "run FIX", cache); },
               {f.string(), "damaged", "5 bytes, expected 11", "run FIX"});
  // Missing.
  expect_error([&] { verify_file((dir_ / "gone").string(), k, "run FIX", cache); }, {"missing", "gone", "run FIX"});
  // A cache directory that does not exist is ignored.
  write_text(f, "hello world");
  EXPECT_TRUE(verify_file(f.string(), k, "x", (dir_ / "nodir").string()));
  EXPECT_TRUE(verify_file(f.string(), k, "x", (dir_ / "nodir").string()));
}

TEST(Verify, KnownFilesTable) {
  EXPECT_EQ(known_files().size(), 8u);
  for (const auto& k : known_files()) {
    EXPECT_EQ(std::string(k.sha256).size(), 64u) << k.name;
    EXPECT_GT(k.size, 0u);
  }
}

TEST_F(TempDir, DamagedOrMissingMnistNamesFileAndFix) {
  LoadOptions o;
  o.data_dir = dir_.string();
  expect_error([&] { load_task("mnist4", o); },
               {"missing data file", (dir_ / "mnist/train-images-idx3-ubyte").string(), "scripts/fetch-mnist.sh"});
  write_synthetic(dir_ / "mnist", {0, 1}, {2}, false);  // wrong sizes for real MNIST
  expect_error([&] { load_task("mnist4", o); },
               {"damaged data file", "train-images-idx3-ubyte", "expected 47040016", "scripts/fetch-mnist.sh"});
}

TEST_F(TempDir, DamagedFashionNamesFileAndFix) {
  LoadOptions o;
  o.data_dir = dir_.string();
  write_synthetic(dir_ / "fashion-mnist", {0, 1}, {2}, true);
  expect_error([&] { load_task("fashion4", o); },
               {"damaged data file", "train-images-idx3-ubyte.gz", "apt-get install", "dataset-fashion-mnist"});
  fs::remove(dir_ / "fashion-mnist/t10k-labels-idx1-ubyte.gz");
  o.verify = false;
  expect_error([&] { load_task("fashion4", o); }, {"missing data file", "t10k-labels-idx1-ubyte.gz", "dataset-fashion-mnist"});
}

// ---------------------------------------------------------------- CSV

TEST(Csv, GoodFile) {
  Dataset d = parse_csv("x1, x2 ,label\r\n0.5,1e-3,5\r\n\r\n-2,+3,2\n  7 , 8.25 , 5\n1,1,9", "u.csv");
  EXPECT_EQ(d.n_features, 2);
  EXPECT_EQ(d.n_classes, 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"2", "5", "9"}));
  EXPECT_EQ(d.y, (std::vector<int>{1, 0, 1, 2}));
  EXPECT_EQ(d.x, (std::vector<double>{0.5, 1e-3, -2, 3, 7, 8.25, 1, 1}));
  EXPECT_EQ(d.value_range(), (std::pair<double, double>{-2, 8.25}));
  // Without a header.
  Dataset e = parse_csv("1,2,0\n3,4,1\n", "v.csv");
  EXPECT_EQ(e.size(), 2u);
  EXPECT_EQ(e.y, (std::vector<int>{0, 1}));
}

TEST(Csv, BadFilesNameLineAndColumn) {
  expect_error([] { parse_csv("a,b,label\n1,2,0\n1,abc,1\n", "u.csv"); }, {"u.csv:3", "column 2", "'abc'"});
  expect_error([] { parse_csv("1,2,0\n1,2\n", "u.csv"); }, {"u.csv:2", "expected 3 columns, found 2"});
  expect_error([] { parse_csv("1,2,0\n\n1,2,3,4\n", "u.csv"); }, {"u.csv:3", "expected 3 columns, found 4"});
  expect_error([] { parse_csv("1,2,0\n1,2,\n", "u.csv"); }, {"u.csv:2", "column 3", "empty label"});
  expect_error([] { parse_csv("1,\"2,0\n1,2,1\n", "u.csv"); }, {"u.csv:1", "column 2", "no closing quote"});
  expect_error([] { parse_csv("1,\"2\"x,0\n", "u.csv"); }, {"u.csv:1", "column 2", "after a closing quote"});
  // A first line mixing numbers and text is neither taken as a header nor as data (issue 16).
  expect_error([] { parse_csv("1,oops,0\n1,2,1\n", "u.csv"); }, {"u.csv:1", "column 2", "--csv-header yes"});
  expect_error([] { parse_csv("1,nan,0\n", "u.csv"); }, {"u.csv:1", "column 2"});
  expect_error([] { parse_csv("inf,1,0\n", "u.csv"); }, {"u.csv:1", "column 1"});
  expect_error([] { parse_csv("1,,0\n", "u.csv"); }, {"u.csv:1", "column 2"});
  expect_error([] { parse_csv("", "u.csv"); }, {"u.csv", "no data rows"});
  expect_error([] { parse_csv("a,b,label\n", "u.csv"); }, {"u.csv", "no data rows"});
  expect_error([] { parse_csv("3\n", "u.csv"); }, {"u.csv:1", "at least one feature"});
  expect_error([] { parse_csv("h\n3\n", "u.csv"); }, {"u.csv:2", "at least one feature"});
}

// Issue 16: string labels, RFC 4180 quoting, an explicit header setting.
TEST(Csv, StringLabelsQuotingAndHeader) {
  // Labels that are not all integers 0..1000000 are names, classes in byte order.
  Dataset d = parse_csv("1,2,cat\n3,4,dog\n5,6,cat\n7,8,1.5\n", "s.csv");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"1.5", "cat", "dog"}));
  EXPECT_EQ(d.y, (std::vector<int>{1, 2, 1, 0}));
  // Integer labels sort as numbers (9 before 10), names as written.
  Dataset n = parse_csv("1,10\n2,9\n3,007\n", "n.csv");
  EXPECT_EQ(n.class_names, (std::vector<std::string>{"7", "9", "10"}));
  EXPECT_EQ(n.y, (std::vector<int>{2, 1, 0}));
  // Quoted fields: commas, "" and a line break inside; the line numbers count it.
  Dataset q = parse_csv("\"x, 1\",\"y\",label\r\n\"0.5\",1,\"New York, \"\"NY\"\"\"\n2,3,\"two\nlines\"\n4,5,x\n", "q.csv");
  EXPECT_EQ(q.x, (std::vector<double>{0.5, 1, 2, 3, 4, 5}));
  EXPECT_EQ(q.class_names, (std::vector<std::string>{"New York, \"NY\"", "two\\x0alines", "x"}));
  expect_error([] { parse_csv("a,b,l\n1,2,x\n\"3\",z,y\n", "q.csv"); }, {"q.csv:3", "column 2", "'z'"});
  expect_error([] { parse_csv("1,2,\"a\nb\"\n1,2\n", "q.csv"); }, {"q.csv:3", "expected 3 columns"});
  // Header: explicit yes / no, and auto only for an all-text first line.
  CsvOptions yes, no;
  yes.header = CsvHeader::Yes;
  no.header = CsvHeader::No;
  EXPECT_EQ(parse_csv("1,2,0\n3,4,1\n", "h.csv", yes).size(), 1u);
  EXPECT_EQ(parse_csv("1,2,0\n3,4,1\n", "h.csv", no).size(), 2u);
  expect_error([&] { parse_csv("a,b,label\n3,4,1\n", "h.csv", no); }, {"h.csv:1", "'a'"});
  EXPECT_EQ(parse_csv("a,b,label\n3,4,1\n", "h.csv").size(), 1u);
  EXPECT_EQ(parse_csv_header("yes"), CsvHeader::Yes);
  EXPECT_THROW(parse_csv_header("maybe"), std::runtime_error);
  // Unlabelled (predict --input): every column a feature.
  CsvOptions unl;
  unl.labelled = false;
  Dataset u = parse_csv("f1,f2\n1,2\n3,4\n", "u.csv", unl);
  EXPECT_EQ(u.n_features, 2);
  EXPECT_EQ(u.x, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_TRUE(u.y.empty());
}

// Feature scaling for CSV tasks: fitted on the training split, applied as fitted.
TEST(Csv, FeatureScaling) {
  Dataset d = parse_csv("1,10,0\n3,10,1\n5,10,0\n", "f.csv");
  FeatureTransform mm = fit_feature_transform(d, FeatureScaling::MinMax);
  Dataset a = d;
  apply_feature_transform(mm, a);
  EXPECT_EQ(a.x, (std::vector<double>{0, 0, 0.5, 0, 1, 0}));  // a constant feature stays put (scale 1)
  FeatureTransform st = fit_feature_transform(d, FeatureScaling::Standard);
  EXPECT_DOUBLE_EQ(st.offset[0], 3.0);
  EXPECT_DOUBLE_EQ(st.scale[0], 1.0 / std::sqrt(8.0 / 3.0));  // population variance 8/3
  Dataset b = d;
  apply_feature_transform(st, b);
  EXPECT_NEAR(b.x[0] + b.x[2] + b.x[4], 0.0, 1e-15);
  // New data gets the training split's transform, not its own.
  Dataset t = parse_csv("9,10,1\n", "t.csv");
  apply_feature_transform(mm, t);
  EXPECT_EQ(t.x[0], 2.0);
  // Huge but finite features stay finite (long double sums).
  Dataset h = parse_csv("1e308,0\n-1e308,1\n1e308,0\n", "h.csv");
  for (FeatureScaling k : {FeatureScaling::MinMax, FeatureScaling::Standard}) {
    Dataset hh = h;
    apply_feature_transform(fit_feature_transform(h, k), hh);
    for (double v : hh.x) EXPECT_TRUE(std::isfinite(v)) << feature_scaling_name(k);
  }
  Dataset wrong = parse_csv("1,2,3,0\n", "w.csv");
  expect_error([&] { apply_feature_transform(mm, wrong); }, {"fitted on 2 features", "has 3"});
  EXPECT_EQ(parse_feature_scaling("minmax"), FeatureScaling::MinMax);
  EXPECT_THROW(parse_feature_scaling("zscore"), std::runtime_error);
}

TEST(Data, DefaultScalingIsTheValidatedOne) {
  // docs/models.md "Pixel scaling": unit won on every validation split.
  EXPECT_EQ(kDefaultScaling, Scaling::Unit);
  EXPECT_EQ(LoadOptions{}.scaling, Scaling::Unit);
  // The core reads no environment: an image task needs its data directory.
  EXPECT_THROW(load_task("mnist2", LoadOptions{}), std::invalid_argument);
}

TEST_F(TempDir, CsvTask) {
  write_text(dir_ / "train.csv", "f1,f2,y\n1,2,7\n3,4,3\n5,6,7\n");
  write_text(dir_ / "test.csv", "9,9,7\n8,8,3\n");
  LoadOptions o;
  o.test_csv = (dir_ / "test.csv").string();
  TaskData t = load_task((dir_ / "train.csv").string(), o);
  EXPECT_EQ(t.train.n_features, 2);
  EXPECT_EQ(t.train.class_names, (std::vector<std::string>{"3", "7"}));
  EXPECT_EQ(t.train.y, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(t.test.y, (std::vector<int>{1, 0}));  // mapped by original label
  EXPECT_EQ(t.test.class_names, t.train.class_names);
  write_text(dir_ / "test.csv", "9,9,5\n");
  expect_error([&] { load_task((dir_ / "train.csv").string(), o); }, {"test.csv", "label 5"});
  write_text(dir_ / "test.csv", "9,9,9,3\n");
  expect_error([&] { load_task((dir_ / "train.csv").string(), o); }, {"test.csv", "3 features"});
  expect_error([&] { load_task((dir_ / "missing.csv").string(), LoadOptions{}); }, {"missing.csv", "cannot open"});
}

// ---------------------------------------------------------------- validation split

namespace {
Dataset toy(std::size_t n, int classes) {
  Dataset d;
  d.n_features = 2;
  d.n_classes = classes;
  for (int c = 0; c < classes; ++c) d.class_names.push_back(std::to_string(c));
  for (std::size_t i = 0; i < n; ++i) {
    d.x.push_back(static_cast<double>(i));
    d.x.push_back(-static_cast<double>(i));
    d.y.push_back(static_cast<int>((i * 7) % classes));
    d.source_index.push_back(static_cast<std::int64_t>(i));
  }
  return d;
}
}  // namespace

TEST(Split, DeterministicStratifiedDisjoint) {
  Dataset d = toy(1000, 3);
  Split a = split_validation(d, 0.2, 42);
  Split b = split_validation(d, 0.2, 42);
  Split c = split_validation(d, 0.2, 43);
  EXPECT_EQ(a.second.source_index, b.second.source_index);
  EXPECT_NE(a.second.source_index, c.second.source_index);
  auto full = d.class_counts(), val = a.second.class_counts(), tr = a.first.class_counts();
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(val[k], static_cast<std::size_t>(std::llround(0.2 * full[k])));
    EXPECT_EQ(val[k] + tr[k], full[k]);
  }
  std::set<std::int64_t> all(a.first.source_index.begin(), a.first.source_index.end());
  for (auto i : a.second.source_index) EXPECT_TRUE(all.insert(i).second) << "duplicate " << i;
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(a.first.source_index.begin(), a.first.source_index.end()));
  EXPECT_TRUE(std::is_sorted(a.second.source_index.begin(), a.second.source_index.end()));
  // Rows travel with their labels and features.
  for (std::size_t i = 0; i < a.second.size(); ++i) {
    auto src = static_cast<std::size_t>(a.second.source_index[i]);
    EXPECT_EQ(a.second.y[i], d.y[src]);
    EXPECT_EQ(a.second.row(i)[1], -static_cast<double>(src));
  }
  // Stable across platforms and library versions (own PRNG): pinned rows for seed 42.
  std::vector<std::int64_t> first5(a.second.source_index.begin(), a.second.source_index.begin() + 5);
  EXPECT_EQ(first5, (std::vector<std::int64_t>{0, 8, 9, 10, 12}));
}

TEST(Split, EdgeCases) {
  Dataset d = toy(10, 2);
  Split z = split_validation(d, 0.0, 1);
  EXPECT_EQ(z.first.size(), 10u);
  EXPECT_EQ(z.second.size(), 0u);
  EXPECT_THROW(split_validation(d, 1.0, 1), std::runtime_error);
  EXPECT_THROW(split_validation(d, -0.1, 1), std::runtime_error);
  EXPECT_THROW(split_validation(d, std::nan(""), 1), std::runtime_error);
  Dataset s = subset(d, {3, 1});
  EXPECT_EQ(s.source_index, (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(s.x, (std::vector<double>{3, -3, 1, -1}));
  EXPECT_THROW(subset(d, {10}), std::out_of_range);
}

// ---------------------------------------------------------------- PNG

TEST_F(TempDir, PngRoundTrip) {
  const int w = 5, h = 3;
  Bytes px(w * h);
  for (int i = 0; i < w * h; ++i) px[i] = static_cast<std::uint8_t>(i * 17);
  const fs::path p = dir_ / "a.png";
  write_png(p.string(), w, h, 1, px);
  EXPECT_FALSE(fs::exists(p.string() + ".tmp"));
  std::ifstream f(p, std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(b.size(), 8u + 25 + 12 + 12);
  EXPECT_EQ(Bytes(b.begin(), b.begin() + 8), (Bytes{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}));
  EXPECT_EQ(std::string(b.begin() + 12, b.begin() + 16), "IHDR");
  EXPECT_EQ(b[19], w);
  EXPECT_EQ(b[23], h);
  // IHDR CRC
  uLong crc = crc32(crc32(0, Z_NULL, 0), b.data() + 12, 17);
  EXPECT_EQ(crc, (uLong(b[29]) << 24 | uLong(b[30]) << 16 | uLong(b[31]) << 8 | b[32]));
  // IDAT decompresses to filter byte 0 + row pixels.
  std::size_t len = std::size_t(b[33]) << 24 | std::size_t(b[34]) << 16 | std::size_t(b[35]) << 8 | b[36];
  EXPECT_EQ(std::string(b.begin() + 37, b.begin() + 41), "IDAT");
  Bytes raw((w + 1) * h);
  uLongf rl = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &rl, b.data() + 41, len), Z_OK);
  for (int r = 0; r < h; ++r) {
    EXPECT_EQ(raw[r * (w + 1)], 0);
    for (int c = 0; c < w; ++c) EXPECT_EQ(raw[r * (w + 1) + 1 + c], px[r * w + c]);
  }
  EXPECT_THROW(write_png(p.string(), w, h, 1, Bytes(3)), std::runtime_error);
  expect_error([&] { write_png((dir_ / "no/such/dir/x.png").string(), w, h, 1, px); }, {"cannot write"});
}

TEST(Png, SampleGrid) {
  Dataset d;
  d.n_features = 64;
  d.n_classes = 2;
  d.class_names = {"a", "b"};
  d.raw_rows = d.raw_cols = 28;
  for (int i = 0; i < 6; ++i) {
    d.y.push_back(i % 2);
    d.x.insert(d.x.end(), 64, 0.0);
    d.raw.insert(d.raw.end(), 784, static_cast<std::uint8_t>(i % 2 ? 200 : 0));
  }
  Image one = render_sample_grid(d, 1), three = render_sample_grid(d, 3);
  EXPECT_EQ(one.height, three.height);
  EXPECT_GT(three.width, one.width);
  EXPECT_EQ(three.pixels.size(), static_cast<std::size_t>(three.width) * three.height);
  // The class-1 row contains the 200-valued images, the class-0 row does not.
  int n200 = 0;
  for (auto v : three.pixels) n200 += v == 200;
  EXPECT_EQ(n200, 3 * (56 * 56 + 56 * 56));
}

// ---------------------------------------------------------------- real data

namespace {
std::string real_dir() {
  return resolve_data_dir("", std::getenv("QMOE_DATA_DIR"), std::getenv("XDG_DATA_HOME"), std::getenv("HOME"));
}
LoadOptions real_options() {
  LoadOptions o;
  o.data_dir = real_dir();
  return o;
}
bool have_mnist() { return fs::exists(real_dir() + "/mnist/train-images-idx3-ubyte"); }
bool have_fashion() {
  for (auto& d : fashion_dirs(real_dir()))
    if (fs::exists(d + "/train-images-idx3-ubyte.gz")) return true;
  return false;
}
std::vector<std::size_t> counts(const Dataset& d) { return d.class_counts(); }
using V = std::vector<std::size_t>;
}  // namespace

TEST(RealData, Mnist4Counts) {
  if (!have_mnist()) GTEST_SKIP() << "MNIST not installed (scripts/fetch-mnist.sh)";
  LoadOptions o = real_options();
  o.scaling = Scaling::TorchQuantum;  // the reference below is for tq
  o.use_verify_cache = false;  // really hash the files
  TaskData t = load_task("mnist4", o);
  EXPECT_EQ(counts(t.train), (V{5923, 6000, 5958, 6000}));
  EXPECT_EQ(counts(t.test), (V{980, 1000, 1000, 1000}));
  // MNIST train labels start 5,0,4,1,9,2,1,3: the first samples are rows 1,3,5,6,7.
  EXPECT_EQ(std::vector<std::int64_t>(t.train.source_index.begin(), t.train.source_index.begin() + 5),
            (std::vector<std::int64_t>{1, 3, 5, 6, 7}));
  EXPECT_EQ(std::vector<int>(t.train.y.begin(), t.train.y.begin() + 5), (std::vector<int>{0, 1, 2, 1, 3}));
  // Reference (numpy): row 1 cropped [2:26,2:26], 3x3 mean, tq scaling; feature sum.
  double s = std::accumulate(t.train.row(0), t.train.row(0) + 64, 0.0);
  EXPECT_NEAR(s, 16.826418720685286, 1e-9);
  auto [lo, hi] = t.train.value_range();
  EXPECT_NEAR(lo, -0.1307 / 0.3081, 1e-12);
  EXPECT_LE(hi, (1 - 0.1307) / 0.3081 + 1e-12);
}

TEST(RealData, Mnist2Counts) {
  if (!have_mnist()) GTEST_SKIP() << "MNIST not installed (scripts/fetch-mnist.sh)";
  TaskData t = load_task("mnist2", real_options());
  EXPECT_EQ(counts(t.train), (V{6000, 5918}));
  EXPECT_EQ(counts(t.test), (V{1000, 958}));
}

TEST(RealData, FashionCounts) {
  if (!have_fashion()) GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  LoadOptions o = real_options();
  o.use_verify_cache = false;
  TaskData t4 = load_task("fashion4", o);
  EXPECT_EQ(counts(t4.train), (V{6000, 6000, 6000, 6000}));
  EXPECT_EQ(counts(t4.test), (V{1000, 1000, 1000, 1000}));
  TaskData t2 = load_task("fashion2", real_options());
  EXPECT_EQ(counts(t2.train), (V{6000, 6000}));
  EXPECT_EQ(counts(t2.test), (V{1000, 1000}));
  EXPECT_EQ(t2.train.class_names, (std::vector<std::string>{"Dress", "Shirt"}));
}

// All ten classes: at most 6,000 / 1,000 per class, first in file order (MNIST
// has fewer for some digits: 5,421 fives in training, 892 in test).
TEST(RealData, TenClassCounts) {
  if (have_mnist()) {
    TaskData t = load_task("mnist10", real_options());
    EXPECT_EQ(counts(t.train), (V{5923, 6000, 5958, 6000, 5842, 5421, 5918, 6000, 5851, 5949}));
    EXPECT_EQ(counts(t.test), (V{980, 1000, 1000, 1000, 982, 892, 958, 1000, 974, 1000}));
    EXPECT_EQ(t.train.n_classes, 10);
  }
  if (have_fashion()) {
    TaskData t = load_task("fashion10", real_options());
    EXPECT_EQ(counts(t.train), V(10, 6000));
    EXPECT_EQ(counts(t.test), V(10, 1000));
    EXPECT_EQ(t.test.class_names[5], "Sandal");
  }
  if (!have_mnist() && !have_fashion()) GTEST_SKIP() << "neither MNIST nor Fashion-MNIST installed";
}
