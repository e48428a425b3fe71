// Kept for existing includes: execution plans now live in circuit/plan.hpp,
// their executor (run_plan, apply_op, undo_ops) in circuit/executor.hpp and
// the adjoint steps through plan ops (adjoint_op, layer_gradients,
// affine_conjugation) in grad/adjoint_ops.hpp. Include those instead.
#pragma once

#include "circuit/executor.hpp"
#include "circuit/plan.hpp"
#include "grad/adjoint_ops.hpp"
