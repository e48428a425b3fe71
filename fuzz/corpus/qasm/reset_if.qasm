// reset, if (on a gate, a user gate and a measure) and mid-circuit measurement:
// c reads 00 or 11 with probability 1/2 each, and every qubit ends in |0>.
OPENQASM 2.0;
include "qelib1.inc";
gate flip a { x a; }
qreg q[2];
creg c[2];
h q[0];
measure q[0] -> c[0];
reset q[0];
if(c==1) flip q[1];
if (c == 1) measure q[1] -> c[1];
reset q;
