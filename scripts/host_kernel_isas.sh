#!/usr/bin/env bash
# Prints the -Dkernel_isas value (meson.build) for the instruction sets this
# machine's CPU can run: "avx2,avx512", "avx2" or "[]" (scalar only). The
# same test as kernels/cpu/isa.cpp (AVX-512 F, BW, DQ and VL; AVX2 with FMA),
# read from /proc/cpuinfo. A build configured with it skips compiling
# kernels this machine could never run (CI's sanitizer build).
set -euo pipefail
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
if has avx512f avx512bw avx512dq avx512vl avx2 fma; then
  echo "avx2,avx512"
elif has avx2 fma; then
  echo "avx2"
else
  echo "[]"
fi
