#!/usr/bin/env bash
# Runs every espgw test: `cargo test --workspace` (unit, integration and lab tests, the
# lab ones against real strongSwan, tshark, AF_XDP and XDP in network namespaces), then
# checks that the run left no network namespace, charon or tcpdump behind and that the
# fuzz targets (sadb/fuzz, control/fuzz, dataplane/fuzz) still compile.
#
#   deploy/test.sh [extra cargo test arguments]
#
# On a host where other people run labs at the same time, set ESPGW_SHARED_HOST=1: the
# leak check then counts only namespaces and processes this run created (labs and the
# processes they start carry this run's ESPGW_LAB_RUN token).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/setup.sh
ensure_all
start=$(date +%s)

say "removing labs orphaned by earlier, killed test runs"
timed "build espgw-lab" cargo build -p espgw-lab
target/debug/espgw-lab reap

export ESPGW_LAB_RUN="testsh-$$-$(date +%s)"
# Tests record here what they could not run on this machine (a SIMD level the CPU lacks);
# a missing package or root fails a test instead (espgw_lab::prereq).
export ESPGW_SKIP_LOG
ESPGW_SKIP_LOG=$(mktemp /tmp/espgw-skipped.XXXXXX)
netns_before=$(ip netns list | awk '{print $1}' | sort)
procs_before=$(lab_processes | sort)
cleanup_check() {
  local rc=0
  local netns_after procs_after extra_ns extra_procs
  netns_after=$(ip netns list | awk '{print $1}' | sort)
  procs_after=$(lab_processes | sort)
  extra_ns=$(comm -13 <(echo "$netns_before") <(echo "$netns_after") | sed '/^$/d')
  extra_procs=$(comm -13 <(echo "$procs_before") <(echo "$procs_after") | sed '/^$/d')
  if [ "${ESPGW_SHARED_HOST:-0}" = 1 ]; then
    # Keep only what this run created: labs marked with our token (namespace
    # PREFIX-node, marker /run/espgw-lab/PREFIX) and processes with our token.
    local ns p keep=()
    for ns in $extra_ns; do
      grep -qsx "$ESPGW_LAB_RUN" "/run/espgw-lab/${ns%-*}" && keep+=("$ns")
    done
    extra_ns=${keep[*]:-}
    keep=()
    for p in $extra_procs; do
      { tr '\0' '\n' < "/proc/$p/environ"; } 2>/dev/null | grep -qx "ESPGW_LAB_RUN=$ESPGW_LAB_RUN" && keep+=("$p")
    done
    extra_procs=${keep[*]:-}
  fi
  if [ -n "$extra_ns" ]; then
    echo "[espgw] FAIL: network namespaces left behind:" $extra_ns >&2; rc=1
  fi
  if [ -n "$extra_procs" ]; then
    echo "[espgw] FAIL: charon/tcpdump processes left behind:" >&2
    for p in $extra_procs; do ps -o pid=,args= -p "$p" >&2 || true; done
    rc=1
  fi
  [ $rc = 0 ] && say "clean: ip netns list is as before, no charon/tcpdump left"
  return $rc
}
trap 'echo; say "interrupted: removing orphaned labs"; target/debug/espgw-lab reap; exit 130' INT TERM

say "cargo test --workspace --no-fail-fast $*"
set +e
cargo test --workspace --no-fail-fast "$@"
rc=$?
set -e
cleanup_check || rc=1
# The fuzz crates are not workspace members (cargo fuzz builds them with sanitizers on a
# nightly-flagged toolchain): make sure every target still compiles against today's API.
for f in sadb/fuzz control/fuzz dataplane/fuzz; do
  say "cargo check $f (fuzz targets)"
  cargo check -q --manifest-path "$f/Cargo.toml" --bins --target-dir target/fuzz-check || rc=1
done
skipped=$(sort -u "$ESPGW_SKIP_LOG" | sed '/^$/d')
rm -f "$ESPGW_SKIP_LOG"
if [ -n "$skipped" ]; then
  say "skipped: $(echo "$skipped" | wc -l) check(s) this machine cannot run:"
  echo "$skipped" | sed 's/^/    /'
else
  say "skipped: 0"
fi
say "tests finished in $(( $(date +%s) - start ))s: $([ $rc = 0 ] && echo PASS || echo FAIL)"
exit $rc
