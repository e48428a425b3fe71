// qmoe train: not yet implemented (placeholder so the CLI links).
#include "cli/cli.hpp"

namespace qmoe::cli {
void add_train_commands(CLI::App&) {}
}  // namespace qmoe::cli
