// qmoe reproduce: not yet implemented (placeholder so the CLI links).
#include "cli/cli.hpp"

namespace qmoe::cli {
void add_reproduce_command(CLI::App&) {}
}  // namespace qmoe::cli
