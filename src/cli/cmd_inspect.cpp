// qmoe eval / predict / export: not yet implemented (placeholder so the CLI links).
#include "cli/cli.hpp"

namespace qmoe::cli {
void add_inspect_commands(CLI::App&) {}
}  // namespace qmoe::cli
