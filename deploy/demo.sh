#!/usr/bin/env bash
# espgw lab demo: the slides' topology (hostA - R1 - R2 - hostB) in network namespaces,
# an IKEv1 tunnel between R1 and R2, hostA pinging hostB through it, the SAs, and tshark
# decrypting and authenticating every frame on the R1-R2 link. Then everything is removed.
#
#   deploy/demo.sh [--aggressive] [--aes] [--espgw]
#
# By default both routers are strongSwan 5.9.8 (userspace ESP), the peer espgw is built
# to talk to. With --espgw, R1 is espgw-control with the slides' IOS configuration: it
# negotiates with strongSwan, shows `show crypto isakmp sa` / `show crypto ipsec sa` and
# its `debug crypto isakmp` output, and tshark decrypts the exchange from espgw's key log
# (the data plane is not wired into the demo yet, so no ping in that mode).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/setup.sh
require_root
ensure_packages
ensure_cargo
if [[ " $* " == *" --espgw "* ]]; then
  say "building the lab tool and espgw (cargo build -p espgw-lab -p espgw-control)"
  cargo build -q -p espgw-lab -p espgw-control
else
  say "building the lab tool (cargo build -p espgw-lab)"
  cargo build -q -p espgw-lab
fi
bin=target/debug/espgw-lab
prefix="demo-$$-0"
trap 'echo; say "interrupted: tearing the lab down"; "$bin" down "$prefix" >/dev/null; exit 130' INT TERM
"$bin" demo "$prefix" "$@"
