// qmoe data layer: the classification tasks of the paper (MNIST / Fashion-MNIST
// subsets downsampled to 8x8 = 64 features) and user CSV files.
//
// No printing and no global state: every function takes what it needs and
// reports problems by throwing std::runtime_error with one line of text.
// See docs/data.md for the file locations, options and per-class counts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qmoe::data {

// One split of a data set. x is row-major [size()][n_features].
struct Dataset {
  int n_features = 0;
  int n_classes = 0;
  std::vector<std::string> class_names;  // class_names[label]
  std::vector<double> x;
  std::vector<int> y;                    // labels 0..n_classes-1
  std::vector<std::int64_t> source_index;  // row of each sample in its source file
  // Optional originals (LoadOptions::keep_raw): [size()][raw_rows*raw_cols] pixels.
  int raw_rows = 0, raw_cols = 0;
  std::vector<std::uint8_t> raw;

  std::size_t size() const { return y.size(); }
  const double* row(std::size_t i) const { return x.data() + i * std::size_t(n_features); }
  std::vector<std::size_t> class_counts() const;  // [n_classes]
  std::pair<double, double> value_range() const;  // {min, max} of x ({0,0} if empty)
};


// How 8x8 pooled pixel values p in [0,255] become features (rotation angles).
// The default is Unit: chosen on validation splits (docs/models.md, "Pixel
// scaling": MNIST-2 97.3% against 87.2% with tq); tq stays as an option.
enum class Scaling {
  TorchQuantum,  // "tq": (p/255 - 0.1307) / 0.3081, as TorchQuantum's MNIST pipeline
  Unit,          // "unit" (default): p/255 in [0,1]
  Pi,            // "pi": p/255 * pi in [0,pi]
};
inline constexpr Scaling kDefaultScaling = Scaling::Unit;
Scaling parse_scaling(const std::string& s);  // throws listing the valid names
std::string scaling_name(Scaling s);
std::vector<std::string> scaling_names();
double scale_pixel(double p, Scaling s);      // p: pooled pixel value in [0,255]

// CSV reading options (parse_csv below).
enum class CsvHeader { Auto, Yes, No };
struct CsvOptions {
  CsvHeader header = CsvHeader::Auto;
  bool labelled = true;  // false: every column is a feature (predict on new data); y stays empty
};
CsvHeader parse_csv_header(const std::string& s);  // "auto", "yes", "no"

// How a CSV task's features become angles, fitted on its training split:
// x' = (x - offset[f]) * scale[f]. "standard": zero mean and unit variance per
// feature; "minmax": [0, 1] per feature (as the pixels' default `unit`); "none"
// (default): as given. The fitted values travel with a checkpoint, so eval and
// predict transform new data exactly as training did.
enum class FeatureScaling { None, Standard, MinMax };
FeatureScaling parse_feature_scaling(const std::string& s);  // none, standard, minmax
std::string feature_scaling_name(FeatureScaling s);
struct FeatureTransform {
  FeatureScaling kind = FeatureScaling::None;
  std::vector<double> offset, scale;  // [n_features]; empty for None
};
FeatureTransform fit_feature_transform(const Dataset& train, FeatureScaling kind);
void apply_feature_transform(const FeatureTransform& t, Dataset& d);  // throws on a feature-count mismatch

struct TaskData {
  std::string task;         // "mnist4", ... or the CSV path
  std::string description;  // one line, e.g. "MNIST digits 0,1,2,3"
  std::string source_dir;   // where the files were read from
  Dataset train, test;
  FeatureTransform transform;  // CSV tasks: what was applied to both splits
};

struct LoadOptions {
  std::string data_dir;  // image tasks: required (the caller resolves it, e.g. with resolve_data_dir)
  std::string default_data_dir;  // where scripts/fetch-mnist.sh installs (the environment's
                                 // choice); when data_dir differs, install hints name data_dir
  Scaling scaling = kDefaultScaling;
  int train_per_class = 6000;  // at most this many per class, first in file order (<=0: all)
  int test_per_class = 1000;
  std::size_t max_train = 0;   // if > 0: keep only the first max_train selected samples (file order)
  std::size_t max_test = 0;
  bool keep_raw = false;       // keep the original 28x28 images in Dataset::raw
  bool verify = true;          // check size + SHA-256 of the files
  bool use_verify_cache = true;  // skip re-hashing files listed in <dir>/.qmoe-verified
                                 // with the same size and mtime (written after a good hash)
  std::string test_csv;        // CSV tasks only: optional separate test file
  CsvOptions csv;              // CSV tasks: header, labels
  FeatureScaling feature_scaling = FeatureScaling::None;  // CSV tasks: fitted on the training split ...
  FeatureTransform feature_transform;  // ... unless this is given (kind != None): applied as it is
};

struct TaskInfo {
  std::string name;         // "mnist4"
  std::string dataset;      // "mnist" or "fashion-mnist"
  std::vector<int> labels;  // original labels, in the order they map to 0..C-1
  std::vector<std::string> class_names;
  std::string description;
};
const std::vector<TaskInfo>& tasks();  // the built-in tasks (immutable table)
const TaskInfo* find_task(const std::string& name);  // nullptr if unknown
std::string task_list();  // "mnist4, mnist2, fashion4, fashion2"

// Data directory: flag if non-empty, else $QMOE_DATA_DIR, else
// ${XDG_DATA_HOME:-$HOME/.local/share}/qmoe. Pure: the caller (the CLI, the
// Python package) passes the environment's values (nullptr = unset); the core
// reads no environment.
std::string resolve_data_dir(const std::string& flag, const char* qmoe_data_dir, const char* xdg_data_home,
                             const char* home);

// Directories searched for Fashion-MNIST, in order.
std::vector<std::string> fashion_dirs(const std::string& data_dir);

// True when `task` names a CSV file (ends in ".csv" or ".CSV").
bool is_csv_path(const std::string& task);
// A --scaling value fits the task: pixel scalings (unit, tq, pi) for image
// tasks, feature scalings (none, standard, minmax) for CSV tasks; "" fits any.
// Throws one line otherwise.
void check_scaling_applies(const std::string& task, const std::string& scaling);
// Loads a built-in task, or a CSV file when `task` ends in ".csv".
// Unknown task: error listing the valid ones.
TaskData load_task(const std::string& task, const LoadOptions& opt);

// Lower-level pieces (exposed for tests and tools).
// Centre-crop 28x28 -> 24x24, then 3x3 average pooling -> 8x8 (values in [0,255]).
// out[k], k = row*8 + col.
void downsample_28_to_8(const std::uint8_t* img28, double out[64]);

// Selects samples whose label is in `labels` (mapped to their index there),
// at most per_class each (<=0: all) in file order, then keeps the first max_total (0: all).
std::vector<std::size_t> select_indices(const std::vector<std::uint8_t>& labels, const std::vector<int>& wanted,
                                        int per_class, std::size_t max_total);

// CSV (RFC 4180: commas, fields in double quotes may hold commas, line breaks
// and "" for a quote; CRLF fine; blank lines skipped): numeric features, then
// (labelled) a label. Integer labels 0..1000000 become classes 0..C-1 in
// increasing order, any other labels (strings) in byte order; class_names
// keeps the original labels. Header: CsvHeader::Auto takes a first line whose
// feature fields are all text as a header and refuses a first line that mixes
// numbers and text (a damaged data row must not vanish as a "header").
// Errors name the line and column. Options: CsvOptions above.
Dataset parse_csv(const std::string& text, const std::string& name, const CsvOptions& opt = {});
Dataset read_csv(const std::string& path, const CsvOptions& opt = {});

// Deterministic stratified split: from each class, round(fraction * count)
// samples (chosen with a seeded Fisher-Yates shuffle, splitmix64) go to
// `second`, the rest stay in `first`; both keep file order. fraction in [0,1).
struct Split {
  Dataset first, second;
};
Split split_validation(const Dataset& d, double fraction, std::uint64_t seed);

// Subset of rows (in the given order).
Dataset subset(const Dataset& d, const std::vector<std::size_t>& rows);

// Known data files: expected size and SHA-256 (by file name, e.g.
// "train-images-idx3-ubyte" for MNIST, "train-images-idx3-ubyte.gz" for Fashion).
struct KnownFile {
  const char* dataset;
  const char* name;
  std::uint64_t size;
  const char* sha256;
};
const std::vector<KnownFile>& known_files();

// Checks a file's size and SHA-256 against `expected`; throws one line naming
// the file and `install_hint` on mismatch. If cache_dir is non-empty and
// exists, a good result is remembered in <cache_dir>/.qmoe-verified (absolute
// path, size, mtime, hash) and a file listed there with unchanged size and
// mtime is not hashed again. `bytes`, if given, is the file's content (saves
// reading it twice). Returns true if the hash was computed, false if cached.
bool verify_file(const std::string& path, const KnownFile& expected, const std::string& install_hint,
                 const std::string& cache_dir, const std::vector<std::uint8_t>* bytes = nullptr);

// Writes an 8-bit grey or RGB PNG (channels 1 or 3) via a temporary file + rename.
void write_png(const std::string& path, int width, int height, int channels, const std::vector<std::uint8_t>& pixels);

// Renders a sample grid: one row per class, `per_class` samples, each as the
// original 28x28 (if d.raw is present) beside the 8x8 pooled image, enlarged.
// Returns {width, height, grey pixels}.
struct Image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;
};
Image render_sample_grid(const Dataset& d, int per_class);

}  // namespace qmoe::data
