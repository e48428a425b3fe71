// qmoe demo: not yet implemented (placeholder so the CLI links).
#include "cli/cli.hpp"

namespace qmoe::cli {
void add_demo_command(CLI::App&) {}
}  // namespace qmoe::cli
