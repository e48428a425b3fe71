// Seed for the qasm fuzz corpus: user gate definitions (parameters, nesting,
// gates from other user gates), broadcasting, measure.
OPENQASM 2.0;
include "qelib1.inc";
gate rot(a, b) q { rx(a) q; ry(b / 2) q; }
gate ent(t) c, d { rot(t, 2 * t) c; cx c, d; rz(-t) d; barrier c, d; }
gate twice(t) c, d { ent(t) c, d; ent(t + pi) d, c; }
qreg q[3];
creg c[3];
twice(0.3) q[0], q[2];
rot(0.1, sin(0.4)) q;
measure q -> c;
