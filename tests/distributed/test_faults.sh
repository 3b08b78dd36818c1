#!/usr/bin/env bash
# A rank that raises or dies makes every rank stop, within a bounded time,
# with an error naming it. Usage: test_faults.sh HAVE_MPI FAULT_PROGRAM
set -uo pipefail
have_mpi=$1 program=$2
if [[ "$have_mpi" != "true" ]] || ! command -v mpirun >/dev/null 2>&1; then
  echo "skipped: petal built without MPI, or no mpirun"
  exit 77
fi
args=(-np 2 --oversubscribe)
[[ $(id -u) -eq 0 ]] && args+=(--allow-run-as-root)
status=0
for mode in raise kill; do
  log=$(mktemp)
  start=$(date +%s)
  timeout --kill-after=5 60 mpirun "${args[@]}" "$program" "$mode" >"$log" 2>&1
  rc=$?
  seconds=$(( $(date +%s) - start ))
  echo "mode $mode: exit $rc after ${seconds}s"
  sed 's/^/  | /' "$log" | head -20
  # timeout's own exit is 124 (137 when it had to kill); mpirun reports a rank
  # killed by a signal as 128 + signal too, so the elapsed time decides.
  if [[ $rc -eq 0 || $seconds -ge 60 ]]; then
    echo "FAIL: mode $mode: expected a failure exit within 60 s, got $rc"; status=1
  fi
  if [[ $mode == raise ]] && ! grep -q "rank 1 of 2 failed" "$log"; then
    echo "FAIL: mode raise: no line naming rank 1"; status=1
  fi
  if [[ $mode == raise ]] && ! grep -q "failed on purpose at step 3" "$log"; then
    echo "FAIL: mode raise: the error itself was not reported"; status=1
  fi
  if [[ $mode == kill ]] && ! grep -q -i "rank 1" "$log"; then
    echo "FAIL: mode kill: the launcher did not name rank 1"; status=1
  fi
  rm -f "$log"
done
exit $status
