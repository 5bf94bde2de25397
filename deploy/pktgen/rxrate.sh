#!/usr/bin/env bash
# Receive rate of an interface from its kernel counters, once a second:
#   deploy/pktgen/rxrate.sh IFACE [SECONDS]
# Run it on the box behind the peer (or on espgw's outside NIC) while pktgen.sh sends.
set -euo pipefail
iface=${1:?usage: rxrate.sh IFACE [SECONDS]}
secs=${2:-10}
s=/sys/class/net/$iface/statistics
[ -d "$s" ] || { echo "rxrate.sh: no interface $iface" >&2; exit 1; }
p0=$(<"$s/rx_packets") b0=$(<"$s/rx_bytes") d0=$(<"$s/rx_dropped")
for ((i = 1; i <= secs; i++)); do
  sleep 1
  p=$(<"$s/rx_packets") b=$(<"$s/rx_bytes") d=$(<"$s/rx_dropped")
  printf '%3ds  %10d pps  %8.1f Mbit/s  %d dropped\n' "$i" $((p - p0)) \
    "$(awk -v x=$((b - b0)) 'BEGIN { print x * 8 / 1e6 }')" $((d - d0))
  p0=$p b0=$b d0=$d
done
