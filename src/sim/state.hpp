// Batched statevector simulator: B independent n-qubit states stored together.
//
// Layout: amplitude i of sample b lives at flat index i*B + b, with real and
// imaginary parts in separate arrays. The batch index is innermost, so one
// SIMD lane holds one sample and a gate on any qubit is a loop over B
// contiguous slots. For a single large state (B = 1) the kernels fold the
// qubits below the lowest qubit a gate touches into that contiguous run, so
// they vectorise across amplitudes instead (see pair_loop.hpp).
//
// Where things are: state.cpp (making states, controlled parts), gates.cpp
// (gate kernels), permutations.cpp (basis permutations, product states),
// adjoint_steps.cpp and overlaps.cpp (the adjoint sweep's kernels), readout.cpp
// (expectations, probabilities), sampling.cpp (shots); the loop frame they all
// share is pair_loop.hpp, the matrix accessors coefficients.hpp.
//
// Kernels are single-threaded for small states (callers parallelise over
// samples); above kParallelAmplitudes flat elements they use OpenMP inside.
// Precision T is double (default) or float.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <random>
#include <vector>

namespace qmoe::sim {

// Storage of amplitudes: 64-byte aligned (a cache line; one AVX-512 vector),
// and each large array starts at its own 64-byte slot of a 4 KiB page. The
// kernels read one state and write another at the same index (phi and lam in
// the adjoint sweep, re and im everywhere); arrays that start at the same page
// offset, as glibc's fresh mappings all do, make the CPU see false
// store-to-load dependencies ("4K aliasing"). Whether they did depended on the
// allocation history: the 10-qubit bench circuit's forward + backward ran 20%
// slower with every state freshly mapped (bench/RESULTS.md).
// Consecutive allocations take slots 11 apart (mod 63) from one atomic counter:
// the core's one piece of global state, which decides where data sits and
// never a result.
template <class T>
struct StateAllocator {
  using value_type = T;
  static constexpr std::size_t kPage = 4096, kLine = 64, kStaggerFrom = 16384;  // bytes
  StateAllocator() = default;
  template <class U>
  StateAllocator(const StateAllocator<U>&) {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kStaggerFrom) return static_cast<T*>(::operator new(bytes, std::align_val_t(kLine)));
    static std::atomic<unsigned> next{0};
    const std::size_t slot = 1 + (next.fetch_add(1, std::memory_order_relaxed) * 11u) % 63u;  // 1..63
    void* base = ::operator new(bytes + kPage, std::align_val_t(kPage));
    char* p = static_cast<char*>(base) + slot * kLine;
    std::memcpy(p - sizeof(void*), &base, sizeof(void*));  // in the slot's unused lead
    return reinterpret_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) < kStaggerFrom) {
      ::operator delete(p, std::align_val_t(kLine));
      return;
    }
    void* base;
    std::memcpy(&base, reinterpret_cast<char*>(p) - sizeof(void*), sizeof(void*));
    ::operator delete(base, std::align_val_t(kPage));
  }
  template <class U>
  bool operator==(const StateAllocator<U>&) const { return true; }  // stateless: any frees any
};
template <class T>
using Amplitudes = std::vector<T, StateAllocator<T>>;

template <class T>
struct State {
  int n_qubits = 0;
  int batch = 0;
  Amplitudes<T> re, im;  // size (2^n_qubits) * batch each

  std::size_t dim() const { return std::size_t(1) << n_qubits; }
};

// Flat size above which a single gate is split across OpenMP threads.
inline constexpr std::size_t kParallelAmplitudes = std::size_t(1) << 16;

// A 2x2 matrix (row-major m00 m01 m10 m11), the same for every sample.
template <class T>
struct Mat {
  T re[4];
  T im[4];
};

// One 2x2 matrix per sample: re[k][b], im[k][b] for k = 0..3, b < batch.
template <class T>
struct BatchMat {
  const T* re[4];
  const T* im[4];
  // The caller promises every sample's matrix is in SU(2), [[a, -conj(b)],
  // [b, conj(a)]] (e.g. a product of RX, RY, RZ): the kernels then read only
  // entries 0 and 2 (a and b).
  bool su2 = false;
};

// Which qubits control a gate: amplitudes whose bits at `mask` equal `value`.
struct Controls {
  std::uint64_t mask = 0;
  std::uint64_t value = 0;
};

// Allocate n qubits x batch, every sample in |0...0>. Throws std::invalid_argument
// on n < 1, n > 40, batch < 1 and std::bad_alloc when memory runs out.
template <class T>
State<T> make_state(int n_qubits, int batch);
template <class T>
void set_zero_state(State<T>& s);

// ---- gates ------------------------------------------------------------------
// Apply m to `target` on the amplitudes whose control bits match. A shared
// matrix whose imaginary parts are all zero (RY, H, their products) runs a
// real kernel: half the arithmetic (also in apply_matrix_pair).
template <class T>
void apply_matrix(State<T>& s, int target, Controls c, const Mat<T>& m);
template <class T>
void apply_matrix(State<T>& s, int target, Controls c, const BatchMat<T>& m);
// ma on qubit a and mb on qubit b (a != b, neither a control), both with
// the controls c, in one pass over the state: the same result as
// apply_matrix(a, c, ma) then apply_matrix(b, c, mb).
// keep (optional): receives s as it was before, at no extra cost without
// controls: the pass then writes into keep's storage and the two swap
// (forward() saves the state at a layer's start this way instead of copying it).
template <class T>
void apply_matrix_pair(State<T>& s, int a, const Mat<T>& ma, int b, const Mat<T>& mb,
                       Controls c = {}, State<T>* keep = nullptr);
template <class T>
void apply_matrix_pair(State<T>& s, int a, const BatchMat<T>& ma, int b, const Mat<T>& mb,
                       Controls c = {}, State<T>* keep = nullptr);
template <class T>
void apply_matrix_pair(State<T>& s, int a, const BatchMat<T>& ma, int b, const BatchMat<T>& mb,
                       Controls c = {}, State<T>* keep = nullptr);
// Exchange qubits q0 and q1 (where the controls match).
template <class T>
void apply_swap(State<T>& s, int q0, int q1, Controls c);

// ---- specialised kernels ----------------------------------------------------
// Each gives the same result as apply_matrix with the equivalent 2x2 matrix.
// X on `target` where the controls match: swaps amplitude slots, no arithmetic.
template <class T>
void apply_x(State<T>& s, int target, Controls c);
// diag(d0, d1) on `target` where the controls match (half the work of a 2x2).
template <class T>
struct Diag {
  T re[2];
  T im[2];
};
// One diagonal per sample: re[k][b], im[k][b] for k = 0, 1.
template <class T>
struct BatchDiag {
  const T* re[2];
  const T* im[2];
};
template <class T>
void apply_diagonal(State<T>& s, int target, Controls c, const Diag<T>& d);
template <class T>
void apply_diagonal(State<T>& s, int target, Controls c, const BatchDiag<T>& d);
// A permutation of the basis (e.g. a whole CNOT ring in one pass): amplitude i
// moves to perm[i]; with `inverse`, amplitude perm[i] moves to i. perm has
// s.dim() entries. Writes into `buffer` (reshaped as needed) and swaps storage
// with s, so s's vectors change identity.
template <class T>
void apply_permutation(State<T>& s, const std::uint32_t* perm, bool inverse, State<T>& buffer);
// The same in place, for the amplitudes perm moves listed in cycle order
// (permutation_cycles): each cycle in turn, one row held aside in buffer.
// Touches only the moved amplitudes (e.g. a CNOT ring controlled by other
// qubits moves a quarter) and needs no second state.
template <class T>
void apply_permutation(State<T>& s, const std::uint32_t* perm, const std::uint32_t* moved,
                       std::size_t n_moved, bool inverse, State<T>& buffer);
// The indices i with perm[i] != i, cycle by cycle (i, perm[i], perm[perm[i]], ...).
std::vector<std::uint32_t> permutation_cycles(const std::uint32_t* perm, std::size_t dim);
// m on `target` (no controls) followed by the basis permutation perm (as in
// apply_permutation) in one pass; with `inverse`, perm^-1 first and then m
// (pass M^dagger to undo a forward call). Out of place through `buffer`.
template <class T>
void apply_matrix_permute(State<T>& s, int target, const Mat<T>& m, const std::uint32_t* perm,
                          bool inverse, State<T>& buffer);
template <class T>
void apply_matrix_permute(State<T>& s, int target, const BatchMat<T>& m, const std::uint32_t* perm,
                          bool inverse, State<T>& buffer);
// Per-sample 2x2s on a and b (a != b; they commute) and then a permutation,
// in one out-of-place pass (as apply_matrix_pair, then apply_permutation);
// inverse: the permutation's inverse, then ma and mb (pass the inverses).
template <class T>
void apply_matrix_pair_permute(State<T>& s, int a, const BatchMat<T>& ma, int b, const BatchMat<T>& mb,
                               const std::uint32_t* perm, bool inverse, State<T>& buffer);
// Set s to the product state (x) over qubits q of (a_q0 |0> + a_q1 |1>), one
// factor per sample: amp[(q * 4 + k) * batch + b] with k = re0, im0, re1, im1.
// scratch: tables reused from call to call (the overloads without it
// allocate them per call).
template <class T>
struct ProductScratch {
  std::vector<T> tables;
  std::vector<std::uint32_t> source;
};
template <class T>
void set_product_state(State<T>& s, const T* amp, ProductScratch<T>& scratch);
template <class T>
void set_product_state(State<T>& s, const T* amp);
// set_product_state followed by the basis permutation perm (as in
// apply_permutation) in the same pass; out of place through `buffer`.
template <class T>
void set_product_state_permuted(State<T>& s, const T* amp, const std::uint32_t* perm,
                                State<T>& buffer, ProductScratch<T>& scratch);
template <class T>
void set_product_state_permuted(State<T>& s, const T* amp, const std::uint32_t* perm,
                                State<T>& buffer);

// ---- the adjoint sweep --------------------------------------------------------
// One backward step of the adjoint method through a gate with matrix M:
//   phi <- M^-1 phi  (m_inv = M^dagger is passed in);
//   grad[j][b] += 2 Re <lam_b| D_j |phi_b>  over the controlled subspace, j < n_deriv;
//   lam <- M^-1 lam.
// D_j = dM/dangle_j. Per-sample matrices when the gate's angles depend on features.
template <class T>
void adjoint_step(State<T>& phi, State<T>& lam, int target, Controls c, const Mat<T>& m_inv,
                  int n_deriv, const Mat<T>* deriv, double* const* grad);
template <class T>
void adjoint_step(State<T>& phi, State<T>& lam, int target, Controls c, const BatchMat<T>& m_inv,
                  int n_deriv, const BatchMat<T>* deriv, double* const* grad);

// A rotation's axis.
enum class Pauli : std::uint8_t { X, Y, Z };
// 'X', 'Y', 'Z' -> Pauli (for the char overloads below); throws std::invalid_argument.
Pauli pauli_axis(char letter);

// adjoint_step for a rotation M = exp(-i a P/2), P = X, Y or Z (RX, RY, RZ,
// also controlled), with the one derivative d/da: the same numbers (to
// rounding) as adjoint_step with deriv = dM/da, using dM/da M^-1 = -i/2 P.
template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c,
                           const Mat<T>& m_inv, Pauli axis, double* grad);
template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c,
                           const BatchMat<T>& m_inv, Pauli axis, double* grad);
// The same with the axis as a letter 'X', 'Y', 'Z' (kept for existing callers).
template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c,
                           const Mat<T>& m_inv, char pauli, double* grad);
template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c,
                           const BatchMat<T>& m_inv, char pauli, double* grad);

// One backward step through a fused run M = G_m ... G_1 of gates on `target`
// (all with controls c) whose differentiable members are rotations
// exp(-i a P/2): first, over the controlled subspace,
//   overlap[k][b] += Im <lam_b| sigma_k |phi_b>   (sigma_0,1,2 = X, Y, Z on target),
// then phi <- m_inv phi, lam <- m_inv lam (m_inv = M^dagger). The gradient of
// G_j's angle is n . overlap, with n the Bloch vector of A P_j A^dagger,
// A = G_m ... G_{j+1} (the gates after G_j in the run): one pass for the run.
// A null overlap[k] is not computed (e.g. only X for an RX last in its run).
template <class T>
void adjoint_step_overlaps(State<T>& phi, State<T>& lam, int target, Controls c,
                           const Mat<T>& m_inv, double* const* overlap);
template <class T>
void adjoint_step_overlaps(State<T>& phi, State<T>& lam, int target, Controls c,
                           const BatchMat<T>& m_inv, double* const* overlap);

// The overlaps alone: overlap[k][b] += Im <lam_b| sigma_k |phi_b> over the
// controlled subspace, the states unchanged (for a layer's gradients, which
// grad/adjoint.cpp takes before undoing lam only). Null overlap[k]: skipped.
template <class T>
void pauli_overlaps(const State<T>& phi, const State<T>& lam, int target, Controls c,
                    double* const* overlap);

// ---- parts of a state ------------------------------------------------------------
// The amplitudes whose bits at c.mask equal c.value (the only ones that gates
// with controls c change), in index order, as a state of n - popcount(c.mask)
// qubits and the same batch: forward() saves the start of a controlled layer
// this way (an expert's layer under 2 routing qubits: a quarter of the state)
// and backward() puts it back. Throws std::invalid_argument on a bad mask.
template <class T>
void copy_controlled(const State<T>& s, Controls c, State<T>& part);
// The inverse: write part's amplitudes back to the places they came from.
template <class T>
void restore_controlled(const State<T>& part, Controls c, State<T>& s);

// pauli_overlaps for several targets (none a control) at once, for a layer's
// gradients: overlap[3 * t + k] as pauli_overlaps' overlap[k] for targets[t].
// With a batch of whole 8-lane tiles, targets that want the same single axis
// are swept in groups of up to 4 (string_overlaps' blocked sweeps: sums in
// registers, rows from L1); other targets (several axes, or a batch that is
// not a multiple of 8) take one pass each, which computes all their axes from
// one read of the pair (as strings, a 3-axis layer of QMoE experts trained
// 1.5x slower).
template <class T>
void layer_overlaps(const State<T>& phi, const State<T>& lam, const int* targets, int n_targets,
                    Controls c, double* const* overlap);

// A Pauli string i^phase X^x Z^z on the qubits of bit masks x and z; it is
// Hermitian when phase has the parity of popcount(x & z). A qubit's X, Y and Z:
// {bit, 0, 0}, {bit, bit, 1}, {0, bit, 0}; conjugated by a CNOT ring they
// become longer strings (grad/adjoint.cpp takes a layer's overlaps that way).
struct PauliMask {
  std::uint64_t x = 0, z = 0;
  int phase = 0;
};

// overlap[t][b] += Im <lam_b| strings[t] |phi_b> over the controlled
// subspace, the states unchanged. With whole 8-lane tiles (batch a multiple
// of 8), consecutive strings of one kind (phase odd or even, with or without a
// Z part) share sweeps, up to 4 at a time, in blocks of rows that stay in L1;
// otherwise a pass per string. In float the grouped sweeps multiply and sum a
// block's rows in float (each block's sum then in double) and a pass per string
// multiplies and sums in double, so float results differ in the last bits
// between the two (well within float's accuracy). Throws
// std::invalid_argument for a string that is not Hermitian, flips a control
// or acts on a qubit the state lacks.
template <class T>
void string_overlaps(const State<T>& phi, const State<T>& lam, const PauliMask* strings, int n,
                     Controls c, double* const* overlap);

// A Pauli error per sample on `target`: pauli[b] = 0 (none), 1 (X), 2 (Y) or
// 3 (Z) for sample b (a noise trajectory's sampled error, grad/noise.hpp).
// Costs a pass over the hit samples only.
template <class T>
void apply_pauli_per_sample(State<T>& s, int target, const std::uint8_t* pauli);

// ---- read-out ---------------------------------------------------------------
// out[b * n_qubits + q] = <Z_q> of sample b.
template <class T>
void expval_z_all(const State<T>& s, double* out);
// out[b] = <P> for the Pauli string given by x/z bit masks: P = prod_q X^x_q Z^z_q
// with a factor i for every Y (x and z both set), i.e. letters I X Y Z.
template <class T>
void expval_pauli(const State<T>& s, std::uint64_t x_mask, std::uint64_t z_mask, double* out);
// lam[i,b] = w_b(i) * psi[i,b] with w_b(i) = sum_q weight[b*n_qubits + q] * z_q(i):
// the observable sum_q w_bq Z_q applied to psi (the adjoint method's start).
template <class T>
void apply_weighted_z(const State<T>& psi, const double* weight, State<T>& lam);
// lam += w_b * P psi for each sample (accumulates; for general Pauli observables).
template <class T>
void add_weighted_pauli(const State<T>& psi, std::uint64_t x_mask, std::uint64_t z_mask,
                        const double* weight, State<T>& lam);
// Probabilities of the basis states of sample b: out[i], i < 2^n.
template <class T>
void probabilities(const State<T>& s, int b, double* out);
// Marginal distribution of the listed qubits (qubits[0] is the low bit of the
// outcome): out[b * 2^k + outcome].
template <class T>
void marginal_probabilities(const State<T>& s, const std::vector<int>& qubits, double* out);
// Squared norm of each sample: out[b].
template <class T>
void norms(const State<T>& s, double* out);
// Draws basis states of one sample from its probabilities, one at a time, so
// that counting a large number of shots needs no memory per shot.
struct BasisSampler {
  std::vector<double> cdf;  // cumulative probabilities of the basis states
  std::mt19937_64 rng;
  std::uint64_t next();     // one basis state
};
template <class T>
BasisSampler make_sampler(const State<T>& s, int b, std::uint64_t seed);
// `shots` draws of make_sampler(s, b, seed).next(), in order.
template <class T>
std::vector<std::uint64_t> sample_basis_states(const State<T>& s, int b, int shots,
                                               std::uint64_t seed);

}  // namespace qmoe::sim
