// Entry point: sub-commands are registered from cmd_*.cpp; every error that
// reaches here becomes one line on stderr and exit code 1.
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "cli/cli.hpp"
#include "cli/mpi.hpp"

static int run_cli(int argc, char** argv) {
  CLI::App app{"qmoe: quantum mixture of experts and quantum neural networks on a CPU"};
  app.require_subcommand(1);
  qmoe::cli::add_qasm_command(app);
  qmoe::cli::add_data_command(app);
  qmoe::cli::add_train_command(app);
  qmoe::cli::add_inspect_commands(app);
  qmoe::cli::add_bench_command(app);
  qmoe::cli::add_reproduce_command(app);
  app.set_version_flag("--version", "qmoe " QMOE_VERSION);
  try {
    // A first argument that is neither an option nor a command: name it (CLI11
    // would only say that a subcommand is required).
    if (argc > 1 && argv[1][0] != '-') {
      bool known = false;
      std::string names;
      for (const CLI::App* sub : app.get_subcommands({})) {
        known = known || sub->get_name() == argv[1];
        names += (names.empty() ? "" : ", ") + sub->get_name();
      }
      if (!known) {
        std::fprintf(stderr, "qmoe: error: unknown command '%s' (commands: %s)\n", argv[1], names.c_str());
        return 2;
      }
    }
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
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

// Under mpirun every rank runs the command (cli/mpi.hpp).
int main(int argc, char** argv) { return qmoe::cli::mpi::run(argc, argv, run_cli); }
