#!/usr/bin/python3
# MPI_Allgatherv of the per-chunk partials that qmoe train exchanges each step
# (chunks x (P + 2) doubles in all), against MPI_Allreduce of P doubles, on
# the ranks mpirun gives: the transfer alone, after a barrier (no waiting for
# a slow rank). Usage: mpirun -np K bench/mpi_allgather.py P CHUNKS [ITERS]
import sys, time
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
k, r = comm.Get_size(), comm.Get_rank()
P, chunks = int(sys.argv[1]), int(sys.argv[2])
iters = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
W = P + 2
counts = [W * ((chunks * (w + 1)) // k - (chunks * w) // k) for w in range(k)]
mine = np.full(counts[r], float(r))
allv = np.empty(sum(counts))
grad, total = np.ones(P), np.empty(P)
def timed(f):
    best = []
    for _ in range(5):
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            f()
        best.append((time.perf_counter() - t0) / iters)
    return min(best)
t_gather = timed(lambda: comm.Allgatherv(mine, [allv, counts]))
t_reduce = timed(lambda: comm.Allreduce(grad, total))
if r == 0:
    print(f"{k} ranks, P={P}, {chunks} chunks: Allgatherv {sum(counts) * 8} B in {t_gather * 1e6:.1f} us; "
          f"Allreduce {P * 8} B in {t_reduce * 1e6:.1f} us")
