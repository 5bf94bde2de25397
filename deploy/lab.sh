#!/usr/bin/env bash
# The slides' lab in network namespaces, for humans.
#   deploy/lab.sh up [PREFIX]     build hostA, R1, R2, hostB (namespaces PREFIX-hostA ...)
#   deploy/lab.sh down [PREFIX]   kill everything inside them and delete them (idempotent)
# PREFIX defaults to "lab". Ctrl-C during `up` tears the half-built lab down again.
# Enter a node with: ip netns exec PREFIX-R1 bash
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
prefix=${2:-lab}
case "$cmd" in
  up|down) ;;
  *) echo "usage: $0 up|down [PREFIX]" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then echo "lab.sh: needs root (network namespaces)" >&2; exit 1; fi
bin=target/debug/espgw-lab
if [ ! -x "$bin" ] || [ -n "$(find deploy/labkit -newer "$bin" -name '*.rs' -print -quit)" ]; then
  echo "lab.sh: building the lab tool (cargo build -p espgw-lab)"
  cargo build -q -p espgw-lab
fi
if [ "$cmd" = up ]; then
  trap 'echo "lab.sh: interrupted, tearing down $prefix"; "$bin" down "$prefix"; exit 130' INT TERM
  "$bin" up "$prefix"
else
  "$bin" down "$prefix"
fi
