#!/usr/bin/env bash
# Line-rate test traffic with the kernel's pktgen, for appliances with real NICs (the lab
# kernel has no pktgen; in the lab use trafgen or espgw-perf). Sends UDP from the inside
# network behind the gateway to the network behind the peer, so the gateway under test
# sees "interesting traffic" for its crypto map. Ports are unassigned high ports.
#
#   deploy/pktgen/pktgen.sh -i IFACE -m NEXT_HOP_MAC [options]
#     -i IFACE      sending interface (on the generator box, cabled to espgw's inside NIC)
#     -m MAC        destination MAC: espgw's inside interface
#     -s SIZE       frame size in bytes without FCS (default 64)
#     -n COUNT      packets per thread, 0 = until Ctrl-C (default 10000000)
#     -t THREADS    pktgen threads = CPUs/queues to use (default 1)
#     -r PPS        rate limit per thread in packets/s (default: none)
#     -S SRC_RANGE  source addresses, MIN-MAX (default 10.1.1.2-10.1.1.254)
#     -D DST_RANGE  destination addresses, MIN-MAX (default 10.1.2.2-10.1.2.254)
#     -p PORTS      UDP destination ports, MIN-MAX (default 40000-40999)
#     -y            do not ask for confirmation
#
# It floods IFACE: only run it on a test network you own.
set -euo pipefail
iface= mac= size=64 count=10000000 threads=1 rate= yes=
src=10.1.1.2-10.1.1.254 dst=10.1.2.2-10.1.2.254 ports=40000-40999
while getopts "i:m:s:n:t:r:S:D:p:y" o; do
  case $o in
    i) iface=$OPTARG ;; m) mac=$OPTARG ;; s) size=$OPTARG ;; n) count=$OPTARG ;;
    t) threads=$OPTARG ;; r) rate=$OPTARG ;; S) src=$OPTARG ;; D) dst=$OPTARG ;;
    p) ports=$OPTARG ;; y) yes=1 ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
[ -n "$iface" ] && [ -n "$mac" ] || { sed -n '2,22p' "$0"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "pktgen.sh: needs root" >&2; exit 1; }
[ -e "/sys/class/net/$iface" ] || { echo "pktgen.sh: no interface $iface" >&2; exit 1; }
modprobe pktgen 2>/dev/null || true
[ -d /proc/net/pktgen ] || { echo "pktgen.sh: this kernel has no pktgen (CONFIG_NET_PKTGEN)" >&2; exit 1; }
ncpu=$(nproc)
[ "$threads" -le "$ncpu" ] || { echo "pktgen.sh: $threads threads but $ncpu CPUs" >&2; exit 1; }

pg() { # pg FILE COMMAND: write a pktgen command and check its result
  echo "$2" > "$1"
  if ! grep -q "Result: OK" "$1" 2>/dev/null; then
    grep "Result:" "$1" >&2 || true
    echo "pktgen.sh: '$2' -> $1 failed" >&2; exit 1
  fi
}

echo "pktgen: $iface -> $mac, ${size}-byte frames, $threads thread(s), count $count/thread" \
     "${rate:+, $rate pps/thread}; UDP $src -> $dst ports $ports"
if [ -z "$yes" ]; then read -r -p "Flood $iface now? [y/N] " a; [ "$a" = y ] || exit 1; fi

echo reset > /proc/net/pktgen/pgctrl
for ((t = 0; t < threads; t++)); do
  th=/proc/net/pktgen/kpktgend_$t
  dev="$iface@$t"
  pg "$th" "rem_device_all"
  pg "$th" "add_device $dev"
  d=/proc/net/pktgen/$dev
  pg "$d" "count $count"
  pg "$d" "pkt_size $((size - 4))"
  pg "$d" "clone_skb 0"
  pg "$d" "burst 32"
  pg "$d" "delay 0"
  pg "$d" "queue_map_min $t"
  pg "$d" "queue_map_max $t"
  pg "$d" "dst_mac $mac"
  pg "$d" "src_min ${src%-*}"
  pg "$d" "src_max ${src#*-}"
  pg "$d" "dst_min ${dst%-*}"
  pg "$d" "dst_max ${dst#*-}"
  pg "$d" "udp_src_min ${ports%-*}"
  pg "$d" "udp_src_max ${ports#*-}"
  pg "$d" "udp_dst_min ${ports%-*}"
  pg "$d" "udp_dst_max ${ports#*-}"
  pg "$d" "flag IPSRC_RND"
  pg "$d" "flag UDPSRC_RND"
  [ -n "$rate" ] && pg "$d" "ratep $rate"
done
trap 'echo stop > /proc/net/pktgen/pgctrl' INT TERM
echo start > /proc/net/pktgen/pgctrl   # blocks until every thread is done
for ((t = 0; t < threads; t++)); do
  echo "thread $t: $(grep -A2 '^Result' "/proc/net/pktgen/$iface@$t" | tr -s ' \n' ' ')"
done
