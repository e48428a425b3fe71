// qmoe plot RUN [--out DIR]: the figures of one training run as PNG files:
// curves.png (loss and accuracy per epoch, from RUN/metrics.csv),
// confusion.png and routing.png (QMoE only), from `qmoe eval --json` of
// RUN/checkpoint on its test split. Drawn by scripts/plot_run.py with
// matplotlib, as scripts/report.py draws results/ (one way to draw: Python,
// Debian's python3-matplotlib); this command finds the script beside the
// binary and runs it with /usr/bin/python3.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "cli/train_common.hpp"

namespace qmoe::cli {
namespace {

struct PlotArgs {
  std::string run;
  std::string out;  // "": RUN
  int threads = 0;
};

void run_plot(const PlotArgs& a) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(a.run, ec)) throw std::runtime_error(a.run + " is not a run directory (qmoe train --out)");
  for (const char* f : {"metrics.csv", "checkpoint"})
    if (!fs::exists(fs::path(a.run) / f, ec))
      throw std::runtime_error(a.run + " has no " + f + ": plot needs a run with at least one finished epoch");
  const std::string script = source_path("scripts/plot_run.py");
  if (script.empty()) throw std::runtime_error("cannot find scripts/plot_run.py here or beside the qmoe binary");
  const std::string python = "/usr/bin/python3";  // Debian's, which sees python3-matplotlib
  if (access(python.c_str(), X_OK) != 0) throw std::runtime_error("plot needs " + python + " with matplotlib (scripts/setup.sh)");
  const std::string out = a.out.empty() ? a.run : a.out;
  make_directories(out);
  const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  std::vector<std::string> args = {python, script, a.run, out, self, std::to_string(a.threads)};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("cannot start ") + python + ": " + std::strerror(errno));
  if (pid == 0) {
    execv(python.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("plotting " + a.run + " failed (scripts/plot_run.py; its message is above)");
}

}  // namespace

void add_plot_command(CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand("plot", "PNG figures of one run: training curves, confusion matrix, routing heat map");
  cmd->add_option("run", a->run, "a train --out directory")->required();
  cmd->add_option("--out", a->out, "where the PNG files go")->default_str("the run directory");
  cmd->add_option("--threads", a->threads, "threads of the evaluation (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([a] { run_plot(*a); });
}

}  // namespace qmoe::cli
