#include "data/data.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "data/idx.hpp"
#include "data/sha256.hpp"

namespace fs = std::filesystem;

namespace qmoe::data {

// ---------------------------------------------------------------- Dataset

std::vector<std::size_t> Dataset::class_counts() const {
  std::vector<std::size_t> c(std::max(n_classes, 0), 0);
  for (int v : y)
    if (v >= 0 && v < n_classes) ++c[v];
  return c;
}

std::pair<double, double> Dataset::value_range() const {
  if (x.empty()) return {0.0, 0.0};
  auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  return {*lo, *hi};
}

// ---------------------------------------------------------------- scaling

std::vector<std::string> scaling_names() { return {"tq", "unit", "pi"}; }

Scaling parse_scaling(const std::string& s) {
  if (s == "tq" || s == "torchquantum") return Scaling::TorchQuantum;
  if (s == "unit") return Scaling::Unit;
  if (s == "pi") return Scaling::Pi;
  throw std::runtime_error("unknown scaling '" + s + "' (valid: tq, unit, pi)");
}

std::string scaling_name(Scaling s) {
  switch (s) {
    case Scaling::TorchQuantum: return "tq";
    case Scaling::Unit: return "unit";
    case Scaling::Pi: return "pi";
  }
  return "?";
}

double scale_pixel(double p, Scaling s) {
  const double u = p / 255.0;
  switch (s) {
    case Scaling::TorchQuantum: return (u - 0.1307) / 0.3081;
    case Scaling::Unit: return u;
    case Scaling::Pi: return u * std::numbers::pi;
  }
  return u;
}

// ---------------------------------------------------------------- tasks

const std::vector<TaskInfo>& tasks() {
  static const std::vector<TaskInfo> t = {
      {"mnist4", "mnist", {0, 1, 2, 3}, {"0", "1", "2", "3"}, "MNIST digits 0,1,2,3"},
      {"mnist2", "mnist", {3, 6}, {"3", "6"}, "MNIST digits 3,6"},
      {"fashion4", "fashion-mnist", {0, 1, 2, 3}, {"T-shirt/top", "Trouser", "Pullover", "Dress"},
       "Fashion-MNIST T-shirt/top, Trouser, Pullover, Dress"},
      {"fashion2", "fashion-mnist", {3, 6}, {"Dress", "Shirt"}, "Fashion-MNIST Dress, Shirt"},
      {"mnist10", "mnist", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
       "MNIST digits 0-9"},
      {"fashion10", "fashion-mnist", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
       {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
       "Fashion-MNIST, all ten classes"},
  };
  return t;
}

const TaskInfo* find_task(const std::string& name) {
  for (const auto& t : tasks())
    if (t.name == name) return &t;
  return nullptr;
}

std::string task_list() {
  std::string s;
  for (const auto& t : tasks()) s += (s.empty() ? "" : ", ") + t.name;
  return s;
}

// ---------------------------------------------------------------- locations

std::string resolve_data_dir(const std::string& flag, const char* qmoe_data_dir, const char* xdg_data_home,
                             const char* home) {
  if (!flag.empty()) return flag;
  if (qmoe_data_dir && *qmoe_data_dir) return qmoe_data_dir;
  if (xdg_data_home && *xdg_data_home) return std::string(xdg_data_home) + "/qmoe";
  if (home && *home) return std::string(home) + "/.local/share/qmoe";
  throw std::runtime_error("cannot find the data directory: none of --data-dir, QMOE_DATA_DIR, XDG_DATA_HOME, HOME is set");
}

std::vector<std::string> fashion_dirs(const std::string& data_dir) {
  return {data_dir + "/fashion-mnist", "/usr/share/datasets/fashion-mnist"};
}

const std::vector<KnownFile>& known_files() {
  static const std::vector<KnownFile> k = {
      {"mnist", "train-images-idx3-ubyte", 47040016,
       "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
      {"mnist", "train-labels-idx1-ubyte", 60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
      {"mnist", "t10k-images-idx3-ubyte", 7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
      {"mnist", "t10k-labels-idx1-ubyte", 10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
      {"fashion-mnist", "train-images-idx3-ubyte.gz", 26421856,
       "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"},
      {"fashion-mnist", "train-labels-idx1-ubyte.gz", 29491,
       "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"},
      {"fashion-mnist", "t10k-images-idx3-ubyte.gz", 4422079,
       "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"},
      {"fashion-mnist", "t10k-labels-idx1-ubyte.gz", 5125,
       "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"},
  };
  return k;
}

static const KnownFile& known(const std::string& dataset, const std::string& name) {
  for (const auto& k : known_files())
    if (dataset == k.dataset && name == k.name) return k;
  throw std::logic_error("no known file " + dataset + "/" + name);
}

// ---------------------------------------------------------------- verification

namespace {
constexpr const char* kStampName = ".qmoe-verified";

struct FileId {
  std::uint64_t size = 0;
  long long mtime = 0;
};

bool file_id(const std::string& path, FileId& id) {
  std::error_code ec;
  id.size = fs::file_size(path, ec);
  if (ec) return false;
  auto t = fs::last_write_time(path, ec);
  if (ec) return false;
  id.mtime = static_cast<long long>(t.time_since_epoch().count());
  return true;
}

std::string absolute_path(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

// Lines: "<size> <mtime> <sha256> <absolute path>".
bool stamp_has(const std::string& cache_dir, const std::string& abs, const FileId& id, const std::string& sha) {
  std::ifstream f(cache_dir + "/" + kStampName);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::uint64_t size;
    long long mtime;
    std::string h, path;
    if (!(is >> size >> mtime >> h)) continue;
    is.get();
    std::getline(is, path);
    if (path == abs && size == id.size && mtime == id.mtime && h == sha) return true;
  }
  return false;
}

void stamp_add(const std::string& cache_dir, const std::string& abs, const FileId& id, const std::string& sha) {
  std::error_code ec;
  if (!fs::is_directory(cache_dir, ec)) return;
  const std::string stamp = cache_dir + "/" + kStampName;
  std::vector<std::string> keep;
  {
    std::ifstream f(stamp);
    std::string line;
    while (std::getline(f, line)) {
      auto pos = line.find(' ');
      pos = pos == std::string::npos ? pos : line.find(' ', pos + 1);
      pos = pos == std::string::npos ? pos : line.find(' ', pos + 1);
      if (pos == std::string::npos) continue;
      if (line.substr(pos + 1) != abs) keep.push_back(line);
    }
  }
  keep.push_back(std::to_string(id.size) + " " + std::to_string(id.mtime) + " " + sha + " " + abs);
  const std::string tmp = stamp + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream o(tmp, std::ios::trunc);
    if (!o) return;  // not writable: no cache, not an error
    for (const auto& l : keep) o << l << '\n';
    if (!o) {
      o.close();
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, stamp, ec);
  if (ec) fs::remove(tmp, ec);
}
}  // namespace

bool verify_file(const std::string& path, const KnownFile& expected, const std::string& install_hint,
                 const std::string& cache_dir, const std::vector<std::uint8_t>* bytes) {
  FileId id;
  if (!file_id(path, id)) throw std::runtime_error("missing data file " + path + "; " + install_hint);
  if (id.size != expected.size)
    throw std::runtime_error("damaged data file " + path + " (" + std::to_string(id.size) + " bytes, expected " +
                             std::to_string(expected.size) + "); " + install_hint);
  const std::string abs = absolute_path(path);
  if (!cache_dir.empty() && stamp_has(cache_dir, abs, id, expected.sha256)) return false;
  std::string sha;
  if (bytes) {
    sha = sha256_hex(bytes->data(), bytes->size());
  } else {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read data file " + path + "; " + install_hint);
    Sha256 h;
    std::vector<char> buf(1 << 20);
    while (f) {
      f.read(buf.data(), buf.size());
      h.update(buf.data(), static_cast<std::size_t>(f.gcount()));
    }
    sha = h.hex_digest();
  }
  if (sha != expected.sha256)
    throw std::runtime_error("damaged data file " + path + " (SHA-256 " + sha.substr(0, 12) + "..., expected " +
                             std::string(expected.sha256).substr(0, 12) + "...); " + install_hint);
  if (!cache_dir.empty()) stamp_add(cache_dir, abs, id, sha);
  return true;
}

// ---------------------------------------------------------------- preprocessing

void downsample_28_to_8(const std::uint8_t* img, double out[64]) {
  constexpr int kOff = 2;  // (28 - 24) / 2
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) {
      int s = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) s += img[(kOff + 3 * r + i) * 28 + (kOff + 3 * c + j)];
      out[r * 8 + c] = s / 9.0;
    }
}

std::vector<std::size_t> select_indices(const std::vector<std::uint8_t>& labels, const std::vector<int>& wanted,
                                        int per_class, std::size_t max_total) {
  std::vector<std::size_t> out;
  std::vector<std::size_t> have(wanted.size(), 0);
  int map[256];
  std::fill(std::begin(map), std::end(map), -1);
  for (std::size_t k = 0; k < wanted.size(); ++k)
    if (wanted[k] >= 0 && wanted[k] < 256) map[wanted[k]] = static_cast<int>(k);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    int k = map[labels[i]];
    if (k < 0) continue;
    if (per_class > 0 && have[k] >= static_cast<std::size_t>(per_class)) continue;
    ++have[k];
    out.push_back(i);
    if (max_total > 0 && out.size() >= max_total) break;
  }
  return out;
}

namespace {

Dataset build_split(const IdxArray& images, const IdxArray& labels, const std::string& img_name,
                    const std::string& lab_name, const TaskInfo& t, int per_class, std::size_t max_total,
                    Scaling scaling, bool keep_raw) {
  if (images.dims.size() != 3 || images.dims[1] != 28 || images.dims[2] != 28) {
    std::string shape;
    for (std::size_t i = 0; i < images.dims.size(); ++i) shape += (i ? "x" : "") + std::to_string(images.dims[i]);
    throw std::runtime_error(img_name + ": expected N x 28 x 28 images, found shape " + shape);
  }
  if (labels.dims.size() != 1)
    throw std::runtime_error(lab_name + ": expected a 1-dimensional label file, found " +
                             std::to_string(labels.dims.size()) + " dimensions");
  if (labels.dims[0] != images.dims[0])
    throw std::runtime_error(lab_name + ": " + std::to_string(labels.dims[0]) + " labels but " + img_name + " has " +
                             std::to_string(images.dims[0]) + " images");
  Dataset d;
  d.n_features = 64;
  d.n_classes = static_cast<int>(t.labels.size());
  d.class_names = t.class_names;
  std::vector<std::size_t> idx = select_indices(labels.data, t.labels, per_class, max_total);
  d.x.resize(idx.size() * 64);
  d.y.resize(idx.size());
  d.source_index.resize(idx.size());
  if (keep_raw) {
    d.raw_rows = d.raw_cols = 28;
    d.raw.resize(idx.size() * 784);
  }
  int map[256];
  std::fill(std::begin(map), std::end(map), -1);
  for (std::size_t k = 0; k < t.labels.size(); ++k) map[t.labels[k]] = static_cast<int>(k);
  for (std::size_t n = 0; n < idx.size(); ++n) {
    const std::uint8_t* img = images.data.data() + idx[n] * 784;
    double* row = d.x.data() + n * 64;
    downsample_28_to_8(img, row);
    for (int k = 0; k < 64; ++k) row[k] = scale_pixel(row[k], scaling);
    d.y[n] = map[labels.data[idx[n]]];
    d.source_index[n] = static_cast<std::int64_t>(idx[n]);
    if (keep_raw) std::copy(img, img + 784, d.raw.begin() + n * 784);
  }
  return d;
}

IdxArray load_checked(const std::string& path, const KnownFile& k, const std::string& hint,
                      const std::string& cache_dir, bool verify) {
  FileId id;
  if (!file_id(path, id)) throw std::runtime_error("missing data file " + path + "; " + hint);
  if (verify && id.size != k.size)  // before reading a large file
    throw std::runtime_error("damaged data file " + path + " (" + std::to_string(id.size) + " bytes, expected " +
                             std::to_string(k.size) + "); " + hint);
  std::vector<std::uint8_t> bytes = read_file_bytes(path);
  if (verify) verify_file(path, k, hint, cache_dir, &bytes);
  try {
    return parse_idx(bytes.data(), bytes.size(), path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + "; " + hint);
  }
}

TaskData load_image_task(const TaskInfo& t, const LoadOptions& opt) {
  if (opt.data_dir.empty()) throw std::invalid_argument("load_task: no data directory given (LoadOptions::data_dir)");
  const std::string& data_dir = opt.data_dir;
  const bool fashion = t.dataset == "fashion-mnist";
  const std::string suffix = fashion ? ".gz" : "";
  const char* base[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                         "t10k-labels-idx1-ubyte"};
  std::string dir, hint;
  if (fashion) {
    auto dirs = fashion_dirs(data_dir);
    for (const auto& d : dirs) {
      std::error_code ec;
      bool any = false;
      for (auto* b : base) any = any || fs::exists(d + "/" + b + suffix, ec);
      if (any) {
        dir = d;
        break;
      }
    }
    hint = "install Fashion-MNIST with: apt-get install dataset-fashion-mnist";
    if (dir.empty())
      throw std::runtime_error("Fashion-MNIST not found in " + dirs[0] + " or " + dirs[1] + "; " + hint);
    if (dir == dirs[1]) hint = "reinstall it with: apt-get install --reinstall dataset-fashion-mnist";
  } else {
    dir = data_dir + "/mnist";
    // scripts/fetch-mnist.sh re-fetches missing or damaged files; it resolves
    // the directory from the environment, so name it when --data-dir differs.
    hint = "install MNIST with: " +
           (opt.default_data_dir == data_dir ? std::string() : "QMOE_DATA_DIR=" + data_dir + " ") +
           "scripts/fetch-mnist.sh";
  }
  const std::string cache_dir = opt.use_verify_cache ? data_dir : "";
  std::string path[4];
  IdxArray arr[4];
  for (int i = 0; i < 4; ++i) {
    path[i] = dir + "/" + base[i] + suffix;
    arr[i] = load_checked(path[i], known(t.dataset, base[i] + suffix), hint, cache_dir, opt.verify);
  }
  TaskData td;
  td.task = t.name;
  td.description = t.description;
  td.source_dir = dir;
  td.train = build_split(arr[0], arr[1], path[0], path[1], t, opt.train_per_class, opt.max_train, opt.scaling,
                         opt.keep_raw);
  td.test = build_split(arr[2], arr[3], path[2], path[3], t, opt.test_per_class, opt.max_test, opt.scaling,
                        opt.keep_raw);
  return td;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

bool is_csv_path(const std::string& task) { return ends_with(task, ".csv") || ends_with(task, ".CSV"); }

void check_scaling_applies(const std::string& task, const std::string& scaling) {
  if (scaling.empty()) return;
  if (is_csv_path(task) && scaling != "none" && scaling != "standard" && scaling != "minmax")
    throw std::runtime_error("--scaling " + scaling + " maps image pixels to angles; for the features of CSV task " +
                             task + " give none, standard or minmax");
  if (!is_csv_path(task) && (scaling == "none" || scaling == "standard" || scaling == "minmax"))
    throw std::runtime_error("--scaling " + scaling + " is for CSV features; the images of " + task +
                             " take unit, tq or pi");
}

CsvHeader parse_csv_header(const std::string& s) {
  if (s == "auto") return CsvHeader::Auto;
  if (s == "yes") return CsvHeader::Yes;
  if (s == "no") return CsvHeader::No;
  throw std::runtime_error("unknown CSV header setting '" + s + "' (valid: auto, yes, no)");
}

FeatureScaling parse_feature_scaling(const std::string& s) {
  if (s == "none") return FeatureScaling::None;
  if (s == "standard") return FeatureScaling::Standard;
  if (s == "minmax") return FeatureScaling::MinMax;
  throw std::runtime_error("unknown feature scaling '" + s + "' (valid: none, standard, minmax)");
}

std::string feature_scaling_name(FeatureScaling s) {
  switch (s) {
    case FeatureScaling::None: return "none";
    case FeatureScaling::Standard: return "standard";
    case FeatureScaling::MinMax: return "minmax";
  }
  return "?";
}

FeatureTransform fit_feature_transform(const Dataset& train, FeatureScaling kind) {
  FeatureTransform t;
  t.kind = kind;
  if (kind == FeatureScaling::None) return t;
  const std::size_t nf = std::size_t(train.n_features), n = train.size();
  t.offset.assign(nf, 0.0);
  t.scale.assign(nf, 1.0);
  if (n == 0) return t;
  for (std::size_t f = 0; f < nf; ++f) {
    // Sums in long double and the mean first: finite for any finite input.
    double lo = train.x[f], hi = train.x[f];
    long double mean = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = train.x[i * nf + f];
      lo = std::min(lo, v), hi = std::max(hi, v);
      mean += (static_cast<long double>(v) - mean) / static_cast<long double>(i + 1);
    }
    if (kind == FeatureScaling::MinMax) {
      t.offset[f] = lo;
      const long double range = static_cast<long double>(hi) - lo;
      t.scale[f] = range > 0 ? static_cast<double>(1.0L / range) : 1.0;
    } else {
      long double var = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const long double d = train.x[i * nf + f] - mean;
        var += (d * d - var) / static_cast<long double>(i + 1);
      }
      t.offset[f] = static_cast<double>(mean);
      t.scale[f] = var > 0 ? static_cast<double>(1.0L / std::sqrt(var)) : 1.0;
    }
  }
  return t;
}

void apply_feature_transform(const FeatureTransform& t, Dataset& d) {
  if (t.kind == FeatureScaling::None) return;
  const std::size_t nf = std::size_t(d.n_features);
  if (t.offset.size() != nf || t.scale.size() != nf)
    throw std::runtime_error("the feature scaling was fitted on " + std::to_string(t.offset.size()) +
                             " features, the data has " + std::to_string(nf));
  for (std::size_t i = 0; i < d.size(); ++i)
    for (std::size_t f = 0; f < nf; ++f) {
      double& v = d.x[i * nf + f];
      v = static_cast<double>((static_cast<long double>(v) - t.offset[f]) * t.scale[f]);
    }
}

TaskData load_task(const std::string& task, const LoadOptions& opt) {
  const bool csv = is_csv_path(task);
  if (!csv && !opt.test_csv.empty())
    throw std::runtime_error("a test CSV file goes with a CSV task only; " + task + " has its own test split");
  if (csv) {
    TaskData td;
    td.task = task;
    td.description = "CSV file " + task;
    td.source_dir = fs::path(task).parent_path().string();
    td.train = read_csv(task, opt.csv);
    if (!opt.test_csv.empty()) {
      td.test = read_csv(opt.test_csv, opt.csv);
      if (td.test.n_features != td.train.n_features)
        throw std::runtime_error(opt.test_csv + ": " + std::to_string(td.test.n_features) + " features but " + task +
                                 " has " + std::to_string(td.train.n_features));
      // Map test labels onto the training classes (by original label).
      std::map<std::string, int> cls;
      for (int i = 0; i < td.train.n_classes; ++i) cls[td.train.class_names[i]] = i;
      for (auto& v : td.test.y) {
        auto it = cls.find(td.test.class_names[v]);
        if (it == cls.end())
          throw std::runtime_error(opt.test_csv + ": label " + td.test.class_names[v] + " does not occur in " + task);
        v = it->second;
      }
      td.test.n_classes = td.train.n_classes;
      td.test.class_names = td.train.class_names;
    } else {
      td.test.n_features = td.train.n_features;
      td.test.n_classes = td.train.n_classes;
      td.test.class_names = td.train.class_names;
    }
    if (opt.max_train > 0 && td.train.size() > opt.max_train) {
      std::vector<std::size_t> r(opt.max_train);
      for (std::size_t i = 0; i < r.size(); ++i) r[i] = i;
      td.train = subset(td.train, r);
    }
    if (opt.max_test > 0 && td.test.size() > opt.max_test) {
      std::vector<std::size_t> r(opt.max_test);
      for (std::size_t i = 0; i < r.size(); ++i) r[i] = i;
      td.test = subset(td.test, r);
    }
    td.transform = opt.feature_transform.kind != FeatureScaling::None
                       ? opt.feature_transform
                       : fit_feature_transform(td.train, opt.feature_scaling);
    apply_feature_transform(td.transform, td.train);
    apply_feature_transform(td.transform, td.test);
    return td;
  }
  const TaskInfo* t = find_task(task);
  if (!t) throw std::runtime_error("unknown task '" + task + "' (valid: " + task_list() + ", or a file ending in .csv)");
  return load_image_task(*t, opt);
}

// ---------------------------------------------------------------- subsets

Dataset subset(const Dataset& d, const std::vector<std::size_t>& rows) {
  Dataset o;
  o.n_features = d.n_features;
  o.n_classes = d.n_classes;
  o.class_names = d.class_names;
  o.raw_rows = d.raw_rows;
  o.raw_cols = d.raw_cols;
  const std::size_t nf = static_cast<std::size_t>(d.n_features);
  const std::size_t rs = static_cast<std::size_t>(d.raw_rows) * d.raw_cols;
  const bool has_raw = rs > 0 && d.raw.size() == d.size() * rs;
  const bool has_src = d.source_index.size() == d.size();
  o.x.reserve(rows.size() * nf);
  for (std::size_t r : rows) {
    if (r >= d.size()) throw std::out_of_range("subset: row " + std::to_string(r) + " out of range");
    o.x.insert(o.x.end(), d.x.begin() + r * nf, d.x.begin() + (r + 1) * nf);
    o.y.push_back(d.y[r]);
    if (has_src) o.source_index.push_back(d.source_index[r]);
    if (has_raw) o.raw.insert(o.raw.end(), d.raw.begin() + r * rs, d.raw.begin() + (r + 1) * rs);
  }
  if (!has_raw) o.raw_rows = o.raw_cols = 0;
  return o;
}

Split split_validation(const Dataset& d, double fraction, std::uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0))
    throw std::runtime_error("validation fraction must be in [0, 1), got " + std::to_string(fraction));
  std::uint64_t state = seed;
  auto next = [&state]() {  // splitmix64: same sequence on every platform
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  std::vector<char> to_second(d.size(), 0);
  for (int c = 0; c < d.n_classes; ++c) {
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < d.size(); ++i)
      if (d.y[i] == c) members.push_back(i);
    const std::size_t k = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(members.size())));
    // Partial Fisher-Yates: the first k positions become a uniform random sample.
    for (std::size_t i = 0; i < k; ++i) {
      std::size_t j = i + static_cast<std::size_t>(next() % (members.size() - i));
      std::swap(members[i], members[j]);
      to_second[members[i]] = 1;
    }
  }
  std::vector<std::size_t> a, b;
  for (std::size_t i = 0; i < d.size(); ++i) (to_second[i] ? b : a).push_back(i);
  return {subset(d, a), subset(d, b)};
}

}  // namespace qmoe::data
