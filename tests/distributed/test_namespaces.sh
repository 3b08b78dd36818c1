#!/usr/bin/env bash
# The 2-rank training test with one rank in each of two network namespaces
# joined by a veth pair, over Open MPI's TCP transport, so the traffic really
# crosses an interface (the byte counters of the veth are checked). Needs
# root and `ip netns`; exit 77 (skipped) where namespaces cannot be made.
# Usage: test_namespaces.sh HAVE_MPI TEST_BINARY
set -uo pipefail
have_mpi=$1 binary=$(readlink -f "$2")
skip() { echo "skipped: $*"; exit 77; }
[[ "$have_mpi" == "true" ]] || skip "petal built without MPI"
command -v mpirun >/dev/null 2>&1 || skip "no mpirun"
[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"

suffix=$$
ns_a=petal_a_$suffix ns_b=petal_b_$suffix
veth_a=pva$suffix veth_b=pvb$suffix
addr_a=10.231.77.1 addr_b=10.231.77.2 subnet=10.231.77.0/24
work=$(mktemp -d)
cleanup() {
  ip netns del "$ns_a" 2>/dev/null
  ip netns del "$ns_b" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns_a" 2>/dev/null || skip "cannot create a network namespace here"
ip netns add "$ns_b" || skip "cannot create a second network namespace"
ip link add "$veth_a" type veth peer name "$veth_b" || skip "cannot create a veth pair"
ip link set "$veth_a" netns "$ns_a" && ip link set "$veth_b" netns "$ns_b" || exit 1
ip netns exec "$ns_a" ip addr add "$addr_a/24" dev "$veth_a" &&
  ip netns exec "$ns_b" ip addr add "$addr_b/24" dev "$veth_b" &&
  ip netns exec "$ns_a" ip link set "$veth_a" up && ip netns exec "$ns_b" ip link set "$veth_b" up &&
  ip netns exec "$ns_a" ip link set lo up && ip netns exec "$ns_b" ip link set lo up || exit 1

# mpirun (in namespace a) starts the remote daemon through this agent, which
# enters the namespace that owns the address instead of using ssh.
cat >"$work/agent.sh" <<AGENT
#!/usr/bin/env bash
host=\$1; shift
case "\$host" in
  $addr_a) ns=$ns_a ;;
  $addr_b) ns=$ns_b ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" bash -c "\$*"
AGENT
chmod +x "$work/agent.sh"
printf '%s slots=1\n%s slots=1\n' "$addr_a" "$addr_b" >"$work/hosts"

tx_before=$(ip netns exec "$ns_a" cat "/sys/class/net/$veth_a/statistics/tx_bytes")
ip netns exec "$ns_a" timeout --kill-after=10 300 mpirun --allow-run-as-root -np 2 --hostfile "$work/hosts" \
  --map-by node --mca plm_rsh_agent "$work/agent.sh" --mca btl tcp,self \
  --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet" \
  -x PETAL_NUM_THREADS=1 "$binary" --test-case='*global batch*' 2>&1 | tee "$work/log"
rc=${PIPESTATUS[0]}
tx_after=$(ip netns exec "$ns_a" cat "/sys/class/net/$veth_a/statistics/tx_bytes")
echo "mpirun exit $rc; $veth_a sent $((tx_after - tx_before)) bytes"
[[ $rc -eq 0 ]] || exit 1
grep -q "rank 1 of 2" "$work/log" || { echo "FAIL: rank 1 did not report"; exit 1; }
# The weights broadcast alone is about 2 KB; every step all-reduces the
# gradients (about 2 KB) and the loss: well over 10 KB in all.
(( tx_after - tx_before > 10000 )) || { echo "FAIL: too little traffic crossed the veth pair"; exit 1; }
