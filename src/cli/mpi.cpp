#include "cli/mpi.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef QMOE_MPI
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <csignal>
#endif

namespace qmoe::cli::mpi {
namespace {

int g_rank = 0, g_size = 1;
CommStats g_stats;

}  // namespace

int rank() { return g_rank; }
int size() { return g_size; }
CommStats comm_stats() { return g_stats; }

#ifndef QMOE_MPI

int run(int argc, char** argv, int (*cli)(int, char**)) { return cli(argc, argv); }

train::DataParallel data_parallel() { return {}; }

#else

namespace {

MPI_Comm g_fail = MPI_COMM_NULL;  // the failure agreement (apart from the commands' messages)
MPI_Comm g_jobs = MPI_COMM_NULL;  // run_jobs()' requests and replies
bool g_thread_multiple = false;

// Started by mpirun (Open MPI), by a PMIx launcher (srun) or by MPICH's hydra.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string(what) + " failed on rank " + std::to_string(g_rank) + ": " +
                           std::string(text, std::size_t(len)) + " (did another rank stop?)");
}

// mpirun stops the other ranks with SIGTERM when one dies: rank 0 says what
// happened and what is kept (async-signal-safe: write and _exit only).
void on_sigterm(int) {
  static const char msg[] =
      "qmoe: error: the MPI job was stopped (a rank died or the job was interrupted); "
      "the last checkpoint is kept: continue with --resume\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(143);
}

// Copies what a rank kept back to the real stderr, naming the rank in its error lines.
void release_output(FILE* kept, int real_stderr) {
  std::fflush(stderr);
  dup2(real_stderr, 2);
  std::rewind(kept);
  const std::string tag = "qmoe: error: ";
  char line[4096];
  while (std::fgets(line, sizeof line, kept)) {
    std::string s = line;
    if (s.rfind(tag, 0) == 0)
      s = "qmoe: error on rank " + std::to_string(g_rank) + " of " + std::to_string(g_size) + ": " + s.substr(tag.size());
    std::fputs(s.c_str(), stderr);
  }
  std::fflush(stderr);
}

}  // namespace

int run(int argc, char** argv, int (*cli)(int, char**)) {
  if (!launched_by_mpi()) return cli(argc, argv);
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "qmoe: error: MPI did not start\n");
    return 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors become qmoe errors (check())
  MPI_Comm_dup(MPI_COMM_WORLD, &g_fail);
  MPI_Comm_dup(MPI_COMM_WORLD, &g_jobs);
  MPI_Comm_set_errhandler(g_jobs, MPI_ERRORS_RETURN);
  g_thread_multiple = provided >= MPI_THREAD_MULTIPLE;
  FILE* kept = nullptr;
  int real_stderr = -1;
  if (g_rank != 0) {  // rank 0 prints; the others keep their output back
    std::fflush(stdout);
    std::fflush(stderr);
    kept = std::tmpfile();
    real_stderr = dup(2);
    const int null = open("/dev/null", O_WRONLY);
    if (kept && real_stderr >= 0 && null >= 0) {
      dup2(null, 1);
      dup2(fileno(kept), 2);
    }
    if (null >= 0) close(null);
  } else {
    std::signal(SIGTERM, on_sigterm);
  }
  const int code = cli(argc, argv);
  std::fflush(stdout);
  std::fflush(stderr);
  if (code == 0) {
    MPI_Finalize();
    return 0;
  }
  // Did every rank fail? Then rank 0's message stands for all, and all end
  // normally. A rank still busy (in a collective, waiting for this one) does
  // not join within the grace time: then this rank speaks and aborts the job.
  MPI_Request req;
  MPI_Ibarrier(g_fail, &req);
  int all_failed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (!all_failed && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    MPI_Test(&req, &all_failed, MPI_STATUS_IGNORE);
    if (!all_failed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (all_failed) {
    MPI_Finalize();
    return code;
  }
  if (kept) release_output(kept, real_stderr);
  std::fprintf(stderr, "qmoe: rank %d of %d failed: stopping the MPI job\n", g_rank, g_size);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  return code;
}

train::DataParallel data_parallel() {
  train::DataParallel dp;
  dp.rank = g_rank;
  dp.size = g_size;
  if (g_size == 1) return dp;
  dp.gather = [](const std::vector<double>& mine, const std::vector<int>& counts) {
    std::vector<int> displs(counts.size(), 0);
    for (std::size_t r = 1; r < counts.size(); ++r) displs[r] = displs[r - 1] + counts[r - 1];
    std::vector<double> all(std::size_t(displs.back() + counts.back()));
    const auto t0 = std::chrono::steady_clock::now();
    check(MPI_Allgatherv(mine.data(), int(mine.size()), MPI_DOUBLE, all.data(), counts.data(), displs.data(),
                         MPI_DOUBLE, MPI_COMM_WORLD),
          "MPI_Allgatherv");
    g_stats.calls++;
    g_stats.bytes += double(all.size()) * sizeof(double);
    g_stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return all;
  };
  return dp;
}

#endif

// ---- run_jobs ------------------------------------------------------------------

namespace {

// Runs `per_rank` worker loops; each calls next(prev, result) to report its
// last job (prev -1: none yet) and get its next one (-1: none left).
void worker_loops(int per_rank, const std::function<std::string(int)>& run,
                  const std::function<int(int thread, int prev, const JobResult& result)>& next) {
  std::exception_ptr first;
  std::mutex lock;
#ifdef _OPENMP
  omp_set_max_active_levels(1);  // each run single-threaded inside when several run at once
#endif
#pragma omp parallel num_threads(per_rank)
  {
    int thread = 0;
#ifdef _OPENMP
    thread = omp_get_thread_num();
#endif
    try {
      int prev = -1;
      JobResult result;
      for (int job; (job = next(thread, prev, result)) >= 0; prev = job) {
        try {
          result = {true, run(job)};
        } catch (const std::exception& e) {
          result = {false, e.what()};
        }
      }
    } catch (...) {  // a failure of the queue itself (MPI)
      std::lock_guard<std::mutex> g(lock);
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace

std::vector<JobResult> run_jobs(int n, int per_rank, const std::function<std::string(int)>& run,
                                const std::function<void(int, const JobResult&)>& on_done) {
  std::vector<JobResult> results(std::size_t(std::max(n, 0)));
  std::mutex lock;
  int handed = 0;
  // One rank: the threads take jobs in order.
  const auto local_next = [&](int, int prev, const JobResult& r) {
    std::lock_guard<std::mutex> g(lock);
    if (prev >= 0) {
      results[std::size_t(prev)] = r;
      if (on_done) on_done(prev, r);
    }
    return handed < n ? handed++ : -1;
  };
#ifndef QMOE_MPI
  worker_loops(per_rank, run, local_next);
  return results;
#else
  if (g_size == 1) {
    worker_loops(per_rank, run, local_next);
    return results;
  }
  if (!g_thread_multiple)
    throw std::runtime_error("this MPI gives no MPI_THREAD_MULTIPLE, which sharing runs over ranks needs");
  // Requests to rank 0 (tag 0): [int prev, int ok, int thread, int threads of
  // the rank][text]; the reply (tag 1 + thread) is the next job. Rank 0 serves
  // them from a thread that sleeps between polls (a blocking receive would
  // spin a core); it is done when every worker of every rank got its -1.
  constexpr int kHeader = 4 * sizeof(int);
  std::thread server;
  if (g_rank == 0) {
    server = std::thread([&] {
      std::vector<int> workers(std::size_t(g_size), -1), finished(std::size_t(g_size), 0);
      const auto done = [&] {
        for (int r = 0; r < g_size; ++r)
          if (workers[std::size_t(r)] < 0 || finished[std::size_t(r)] < workers[std::size_t(r)]) return false;
        return true;
      };
      std::vector<char> buf;
      while (!done()) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, 0, g_jobs, &flag, &st);
        if (!flag) {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          continue;
        }
        int bytes = 0;
        MPI_Get_count(&st, MPI_CHAR, &bytes);
        buf.resize(std::size_t(std::max(bytes, kHeader)));
        MPI_Recv(buf.data(), bytes, MPI_CHAR, st.MPI_SOURCE, 0, g_jobs, MPI_STATUS_IGNORE);
        int head[4];
        std::memcpy(head, buf.data(), kHeader);
        workers[std::size_t(st.MPI_SOURCE)] = head[3];
        if (head[0] >= 0) {
          JobResult r{head[1] != 0, std::string(buf.data() + kHeader, std::size_t(bytes - kHeader))};
          results[std::size_t(head[0])] = r;
          if (on_done) on_done(head[0], r);
        }
        int job = handed < n ? handed++ : -1;
        if (job < 0) finished[std::size_t(st.MPI_SOURCE)]++;
        MPI_Send(&job, 1, MPI_INT, st.MPI_SOURCE, 1 + head[2], g_jobs);
      }
    });
  }
  std::exception_ptr failed;
  try {
    worker_loops(per_rank, run, [&](int thread, int prev, const JobResult& r) {
      std::vector<char> msg(std::size_t(kHeader) + (prev >= 0 ? r.text.size() : 0));
      int threads = 1;
#ifdef _OPENMP
      threads = omp_get_num_threads();
#endif
      const int head[4] = {prev, r.ok ? 1 : 0, thread, threads};
      std::memcpy(msg.data(), head, kHeader);
      if (prev >= 0) std::memcpy(msg.data() + kHeader, r.text.data(), r.text.size());
      check(MPI_Send(msg.data(), int(msg.size()), MPI_CHAR, 0, 0, g_jobs), "the job request");
      int job = -1;
      check(MPI_Recv(&job, 1, MPI_INT, 0, 1 + thread, g_jobs, MPI_STATUS_IGNORE), "the job reply");
      return job;
    });
  } catch (...) {
    failed = std::current_exception();
  }
  if (server.joinable()) server.join();
  if (failed) std::rethrow_exception(failed);
  // Every rank gets every result: [ok][length][text] per job.
  std::string all;
  if (g_rank == 0)
    for (const JobResult& r : results) {
      const std::uint64_t len = r.text.size();
      all += char(r.ok ? 1 : 0);
      all.append(reinterpret_cast<const char*>(&len), sizeof len);
      all += r.text;
    }
  std::uint64_t total = all.size();
  check(MPI_Bcast(&total, 1, MPI_UINT64_T, 0, g_jobs), "MPI_Bcast");
  all.resize(total);
  check(MPI_Bcast(all.data(), int(total), MPI_CHAR, 0, g_jobs), "MPI_Bcast");
  std::size_t at = 0;
  for (JobResult& r : results) {
    std::uint64_t len = 0;
    r.ok = all[at] != 0;
    std::memcpy(&len, all.data() + at + 1, sizeof len);
    r.text.assign(all.data() + at + 1 + sizeof len, len);
    at += 1 + sizeof len + len;
  }
  return results;
#endif
}

}  // namespace qmoe::cli::mpi
