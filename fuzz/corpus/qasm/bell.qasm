// Bell pair with a parameterised rotation, several registers, measurement.
OPENQASM 2.0;
include "qelib1.inc";
qreg a[1];
qreg b[2];
creg c[3];
h a[0];
cx a[0], b[0];
barrier a, b;
u3(pi/3, 0.25, -.5) b[1];
crz(2*pi/5) a[0], b[1];
measure a[0] -> c[0];
