// qmoe data TASK: loads a task (or a CSV file) and reports what the model will
// see: per-class counts for train and test, the feature count and value range.
// --json prints one JSON object; --png writes a grid of samples per class.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli.hpp"
#include "cli/train_common.hpp"
#include "data/data.hpp"

namespace qmoe::cli {

namespace {
struct DataArgs {
  std::string task;
  bool json = false;
  std::string data_dir;
  std::string scaling;  // "": data::kDefaultScaling
  std::string png;
  int samples = 8;
  int train_per_class = 6000;
  int test_per_class = 1000;
  std::string test_csv;
  std::string csv_header = "auto";
  bool no_cache = false;
};

nlohmann::json counts_json(const data::Dataset& d) {
  nlohmann::json j = nlohmann::json::object();
  auto c = d.class_counts();
  for (std::size_t i = 0; i < c.size(); ++i) j[std::to_string(i)] = c[i];
  return j;
}

void run_data(const DataArgs& a) {
  auto t0 = std::chrono::steady_clock::now();
  data::LoadOptions opt = load_options(a.data_dir);
  if (opt.data_dir.empty() && !data::is_csv_path(a.task)) data_dir_from_env(a.data_dir);  // throws, naming what to set
  data::check_scaling_applies(a.task, a.scaling);
  const bool is_csv = data::is_csv_path(a.task);
  if (!a.scaling.empty() && !is_csv) opt.scaling = data::parse_scaling(a.scaling);
  if (!a.scaling.empty() && is_csv) opt.feature_scaling = data::parse_feature_scaling(a.scaling);
  opt.csv.header = data::parse_csv_header(a.csv_header);
  opt.train_per_class = a.train_per_class;
  opt.test_per_class = a.test_per_class;
  opt.keep_raw = !a.png.empty();
  opt.test_csv = a.test_csv;
  opt.use_verify_cache = !a.no_cache;
  data::TaskData td = data::load_task(a.task, opt);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!a.png.empty()) {
    if (td.train.n_features != 64)
      throw std::runtime_error("--png needs 64 features (8x8 images); " + a.task + " has " +
                               std::to_string(td.train.n_features));
    data::Image im = data::render_sample_grid(td.train, a.samples);
    data::write_png(a.png, im.width, im.height, 1, im.pixels);
  }

  auto [tr_lo, tr_hi] = td.train.value_range();
  auto [te_lo, te_hi] = td.test.value_range();
  const double lo = td.test.size() ? std::min(tr_lo, te_lo) : tr_lo;
  const double hi = td.test.size() ? std::max(tr_hi, te_hi) : tr_hi;

  if (a.json) {
    nlohmann::json j;
    j["task"] = td.task;
    j["description"] = td.description;
    j["source"] = td.source_dir;
    j["features"] = td.train.n_features;
    j["classes"] = td.train.n_classes;
    j["class_names"] = td.train.class_names;
    j["scaling"] = is_csv ? data::feature_scaling_name(opt.feature_scaling) : data::scaling_name(opt.scaling);
    j["train"] = counts_json(td.train);
    j["test"] = counts_json(td.test);
    j["train_total"] = td.train.size();
    j["test_total"] = td.test.size();
    j["min"] = lo;
    j["max"] = hi;
    if (!a.png.empty()) j["png"] = a.png;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("task      %s: %s\n", td.task.c_str(), td.description.c_str());
  std::printf("source    %s\n", td.source_dir.empty() ? "." : td.source_dir.c_str());
  if (is_csv)
    std::printf("features  %d (from the CSV, scaling %s)\n", td.train.n_features,
                data::feature_scaling_name(opt.feature_scaling).c_str());
  else
    std::printf("features  %d (8x8: centre crop 24x24, 3x3 average pooling; scaling %s)\n", td.train.n_features,
                data::scaling_name(opt.scaling).c_str());
  std::printf("values    [%.4f, %.4f]\n", lo, hi);
  std::printf("%-6s %-14s %8s %8s\n", "label", "class", "train", "test");
  auto ctr = td.train.class_counts(), cte = td.test.class_counts();
  for (int c = 0; c < td.train.n_classes; ++c)
    std::printf("%-6d %-14s %8zu %8zu\n", c, td.train.class_names[c].c_str(), ctr[c],
                c < static_cast<int>(cte.size()) ? cte[c] : std::size_t(0));
  std::printf("%-6s %-14s %8zu %8zu\n", "total", "", td.train.size(), td.test.size());
  if (!a.png.empty()) std::printf("wrote     %s\n", a.png.c_str());
  std::printf("loaded in %.2f s\n", secs);
}
}  // namespace

void add_data_command(CLI::App& app) {
  auto args = std::make_shared<DataArgs>();
  auto* cmd = app.add_subcommand("data", "show a task's data: per-class counts, features, value range");
  cmd->add_option("task", args->task, "task: " + data::task_list() + ", or a CSV file (features..., label)")
      ->required();
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->add_option("--data-dir", args->data_dir,
                  "data directory")
      ->default_str("$QMOE_DATA_DIR, else ${XDG_DATA_HOME:-~/.local/share}/qmoe");
  cmd->add_option("--scaling", args->scaling,
                  "images: unit (p/255), tq (TorchQuantum's (p/255-0.1307)/0.3081), pi (p/255*pi); CSV: none, "
                  "standard, minmax (fitted on the training split)")
      ->check(CLI::IsMember({"tq", "torchquantum", "unit", "pi", "none", "standard", "minmax"}))
      ->default_str(data::scaling_name(data::kDefaultScaling) + " (CSV: none)");
  cmd->add_option("--csv-header", args->csv_header, "CSV: is the first line a header? auto, yes, no")
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  cmd->add_option("--png", args->png, "write a PNG grid of samples per class (28x28 original beside the 8x8 input)");
  cmd->add_option("--samples", args->samples, "samples per class in the PNG")->check(CLI::Range(1, 64));
  cmd->add_option("--train-per-class", args->train_per_class, "at most N training samples per class (0: all)")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--test-per-class", args->test_per_class, "at most N test samples per class (0: all)")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--test-csv", args->test_csv, "CSV tasks: a separate test file");
  cmd->add_flag("--no-verify-cache", args->no_cache, "hash the data files even if verified before");
  cmd->callback([args]() { run_data(*args); });
}

}  // namespace qmoe::cli
