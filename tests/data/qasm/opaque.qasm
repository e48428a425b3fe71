// Seed for the qasm fuzz corpus: an opaque declaration (a clear error).
OPENQASM 2.0;
include "qelib1.inc";
opaque magic(t) a, b;
qreg q[2];
magic(0.5) q[0], q[1];
