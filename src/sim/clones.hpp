// QMOE_CLONES: compile a hot loop for baseline x86-64, AVX2+FMA and AVX-512,
// picked at run time (GCC target_clones), so one binary runs on any x86-64
// and never needs -march=native. Empty when QMOE_NO_CLONES is defined (CMake
// option QMOE_TARGET_CLONES=OFF, for sanitizer builds) and with clang, which
// rejects target_clones on templates (the fuzzers run baseline code).
#pragma once

#if defined(QMOE_NO_CLONES) || defined(__clang__)
#define QMOE_CLONES
#else
#define QMOE_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#endif
