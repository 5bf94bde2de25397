#!/bin/bash
# Forwarding rate of espgw-dataplane (plain forwarder on R1) beside the kernel's
# own forwarding on R1, same topology, same generator (trafgen on hostA), same run.
# usage: xdp_rate.sh BIN [SECONDS] [GEN_CPU] [WORKER_CPU]
# Prints one line per frame size. Needs root, iproute2, ethtool, netsniff-ng.
set -u
BIN=$(readlink -f "$1"); SECS=${2:-4}; GCPU=${3:-0}; WCPU=${4:-1}
P=xr$$
NS="hA r1 r2 hB"
cleanup() { [ -n "${DP:-}" ] && kill -9 $DP 2>/dev/null; for n in $NS; do ip netns del $P-$n 2>/dev/null; done; }
trap cleanup EXIT
for n in $NS; do ip netns add $P-$n; ip -n $P-$n link set lo up; done
ip link add ${P}a type veth peer name ${P}b
ip link add ${P}c type veth peer name ${P}d
ip link add ${P}e type veth peer name ${P}f
ip link set ${P}a netns $P-hA name eth0; ip link set ${P}b netns $P-r1 name in0
ip link set ${P}c netns $P-r1 name out0; ip link set ${P}d netns $P-r2 name out0
ip link set ${P}e netns $P-r2 name in0; ip link set ${P}f netns $P-hB name eth0
ip -n $P-hA addr add 10.1.1.2/24 dev eth0; ip -n $P-r1 addr add 10.1.1.1/24 dev in0
ip -n $P-r1 addr add 172.16.172.10/28 dev out0; ip -n $P-r2 addr add 172.16.172.20/28 dev out0
ip -n $P-r2 addr add 10.1.2.1/24 dev in0; ip -n $P-hB addr add 10.1.2.2/24 dev eth0
for x in "hA eth0" "r1 in0" "r1 out0" "r2 in0" "r2 out0" "hB eth0"; do set -- $x; ip -n $P-$1 link set $2 up; done
for r in r1 r2; do ip netns exec $P-$r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0; done
ip -n $P-hA route add default via 10.1.1.1; ip -n $P-hB route add default via 10.1.2.1
ip -n $P-r1 route add 172.16.172.20/32 dev out0; ip -n $P-r2 route add 172.16.172.10/32 dev out0
ip -n $P-r1 route add 10.1.2.0/24 via 172.16.172.20 dev out0 onlink
ip -n $P-r2 route add 10.1.1.0/24 via 172.16.172.10 dev out0 onlink
# R2 drops what arrives (counted on its out0): the number is R1's forwarding alone.
ip -n $P-r2 route add blackhole 10.1.2.0/24 2>/dev/null || true
ip -n $P-r2 route del 10.1.2.0/24 dev in0 2>/dev/null
ip -n $P-r2 route add blackhole 10.1.2.0/24
DA=$(ip -n $P-r1 -br link show in0 | awk '{print $3}'); SA=$(ip -n $P-hA -br link show eth0 | awk '{print $3}')
rx() { ip -n $P-r2 -s link show out0 | awk 'f{print $2; exit} /RX:/{f=1}'; }
blast() { # size -> pps received by R2's out0
  local fill=$(( $1 - 42 ))
  echo "{ eth(da=$DA, sa=$SA, type=0x0800), ipv4(saddr=10.1.1.2, daddr=10.1.2.2, ttl=64, proto=17), udp(sport=40000, dport=40001), fill(0x41, $fill) }" > /tmp/$P.cfg
  ip netns exec $P-hA ping -c 2 -i 0.2 -W 1 10.1.2.2 >/dev/null 2>&1
  local a=$(rx)
  ip netns exec $P-hA timeout $SECS taskset -c $GCPU trafgen --dev eth0 --conf /tmp/$P.cfg -P 1 -q -C >/dev/null 2>&1
  sleep 0.3; local b=$(rx)
  echo $(( (b - a) / SECS ))
}
for size in 64 1400; do
  k=$(blast $size)
  ip netns exec $P-r1 $BIN --no-esp --inside in0 --outside out0 --cores $WCPU --acl "permit ip 10.1.1.0/24 10.1.2.0/24" ${DPARGS:-} --stats /tmp/$P.json >/tmp/$P.log 2>&1 &
  DP=$!
  for i in $(seq 50); do [ -s /tmp/$P.json ] && break; sleep 0.1; done
  d=$(blast $size)
  kill -TERM $DP; wait $DP 2>/dev/null; DP=
  echo "size=$size kernel_pps=$k espgw_pps=$d stats=$(tr -d '\n' < /tmp/$P.json | grep -o '"workers".*')"
  rm -f /tmp/$P.json
done
