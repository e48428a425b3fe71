// The MPI edge of the qmoe command (issue 20, docs/distributed.md): the only
// code that calls MPI. Without QMOE_MPI, or when this process was not started
// by mpirun (or srun), there is one rank and nothing here touches MPI.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "train/trainer.hpp"

namespace qmoe::cli::mpi {

// Runs cli(argc, argv) on every rank, with MPI started around it when mpirun
// started this process. Rank 0 alone prints (and, by the commands' choice,
// writes files): the other ranks' output is kept back. When a command fails
// on every rank alike (a bad option, missing data), rank 0's error line is the
// one printed and all ranks exit with its code; when it fails on some ranks
// only (a rank runs out of memory, loses its data), each of those prints its
// error with its rank and the job is aborted (mpirun then stops the others).
int run(int argc, char** argv, int (*cli)(int, char**));

int rank();  // 0 without MPI
int size();  // 1 without MPI

// The trainer's data-parallel hook over all ranks (MPI_Allgatherv); one
// worker without MPI.
train::DataParallel data_parallel();

// What data_parallel()'s gathers have cost on this rank so far.
struct CommStats {
  long calls = 0;
  double bytes = 0;    // received per rank (all ranks' partials)
  double seconds = 0;  // in MPI_Allgatherv: transfer plus waiting for the slowest rank
};
CommStats comm_stats();

// Runs jobs 0 .. n-1 over all ranks, per_rank at a time in each (threads),
// rank 0 handing the next job to whichever worker is free (jobs differ in
// cost). run(i) returns job i's result as text, or throws: that job failed,
// the others go on. on_done(i, result) is called on rank 0, one call at a
// time, as results come in. Returns every job's result, on every rank.
struct JobResult {
  bool ok = false;
  std::string text;  // run()'s result, or the failure's message
};
std::vector<JobResult> run_jobs(int n, int per_rank, const std::function<std::string(int)>& run,
                                const std::function<void(int, const JobResult&)>& on_done);

}  // namespace qmoe::cli::mpi
