#!/usr/bin/env bash
# espgw lab demo: the slides' topology (hostA - R1 - R2 - hostB) in network namespaces.
# R1 is espgw — espgw-control with the slides' IOS configuration (deploy/configs/r1.conf)
# and espgw-dataplane (XDP classifiers + AF_XDP workers on in0/out0). hostA's first ping
# to hostB is interesting traffic: it starts Main Mode and Quick Mode (debug crypto
# isakmp/ipsec output shown); then ping and iperf3 through the tunnel, `show crypto isakmp
# sa`, `show crypto ipsec sa`, `show crypto map`, `show crypto dataplane` (the data
# plane's drop counters), and tshark decrypting and authenticating every ESP frame on the
# R1-R2 link from espgw's key log. Then everything is removed (also on Ctrl-C).
#
#   deploy/demo.sh                      R2 = strongSwan 5.9.8 (ESP in UDP 4500)
#   deploy/demo.sh --peer espgw         R2 = espgw too (raw ESP, as in the slides)
#   deploy/demo.sh --swan-only [--aggressive] [--aes]
#                                       strongSwan on both routers (the lab's baseline)
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/setup.sh
ensure_all
# cargo's own progress: the first build on a fresh machine takes minutes.
if [[ " $* " == *" --swan-only "* ]]; then
  say "building the lab tool (cargo build -p espgw-lab)"
  timed "build" cargo build -p espgw-lab
else
  say "building espgw and the lab tool (cargo build -p espgw-control -p espgw-dataplane -p espgw-lab)"
  timed "build" cargo build -p espgw-control -p espgw-dataplane -p espgw-lab
fi
bin=target/debug/espgw-lab
prefix="demo-$$-0"
cleanup() {
  "$bin" down "$prefix" >/dev/null 2>&1 || true
  # the R1-R2 cable's namespace (tcpdump runs there)
  local w="$prefix-wire"
  if ip netns list | grep -qw -- "$w"; then
    for p in $(ip netns pids "$w" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    ip netns del "$w" 2>/dev/null || true
  fi
}
trap 'echo; say "interrupted: tearing the lab down"; cleanup; exit 130' INT TERM
"$bin" demo "$prefix" "$@"
