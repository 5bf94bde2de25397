#!/usr/bin/env bash
# espgw lab demo: the slides' topology (hostA - R1 - R2 - hostB) in network namespaces,
# an IKEv1 tunnel between R1 and R2, hostA pinging hostB through it, the SAs, and tshark
# decrypting and authenticating every frame on the R1-R2 link. Then everything is removed.
#
#   deploy/demo.sh [--aggressive] [--aes]
#
# Until espgw's dataplane and IKE daemon are wired into the lab, both routers are
# strongSwan 5.9.8 (userspace ESP), the peer espgw is built to talk to.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/setup.sh
require_root
ensure_packages
ensure_cargo
say "building the lab tool (cargo build -p espgw-lab)"
cargo build -q -p espgw-lab
bin=target/debug/espgw-lab
prefix="demo-$$-0"
trap 'echo; say "interrupted: tearing the lab down"; "$bin" down "$prefix" >/dev/null; exit 130' INT TERM
"$bin" demo "$prefix" "$@"
