// Entry point: sub-commands are registered from cmd_*.cpp; every error that
// reaches here becomes one line on stderr and exit code 1.
#include <cstdio>
#include <exception>
#include <new>

#include "cli/cli.hpp"

int main(int argc, char** argv) {
  CLI::App app{"qmoe: quantum mixture of experts and quantum neural networks on a CPU"};
  app.require_subcommand(1);
  qmoe::cli::add_qasm_command(app);
  qmoe::cli::add_data_command(app);
  qmoe::cli::add_train_command(app);
  qmoe::cli::add_inspect_commands(app);
  qmoe::cli::add_bench_command(app);
  qmoe::cli::add_reproduce_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "qmoe: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "qmoe: error: out of memory (a state of n qubits takes 2^n x batch x 16 bytes: "
                         "use fewer qubits or a smaller batch)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qmoe: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
