// The qmoe command: each sub-command registers itself on the CLI11 app.
#pragma once
#include <CLI/CLI.hpp>

namespace qmoe::cli {
void add_qasm_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_inspect_commands(CLI::App& app);  // eval, predict, export
void add_bench_command(CLI::App& app);
void add_reproduce_command(CLI::App& app);
void add_plot_command(CLI::App& app);  // training curves, confusion, routing of one run
}  // namespace qmoe::cli
