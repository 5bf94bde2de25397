#!/bin/bash
# One SA on many cores: `espgw-perf scale` for three transform sets, encap and decap,
# plus the machine's facts and OpenSSL's own 3DES speed. Writes under $OUT (default
# ./scale-out): scale.txt (text), scale.jsonl (one JSON document per transform),
# sysinfo.txt. Run from the repository root.
#   THREADS  thread counts (default 1,2,4,8,12,16)   SECS     seconds per point (1)
#   POOL_MB  memory for pre-encapsulated inbound packets (16384)
#   BIN      the espgw-perf binary (default perf/device/bin/espgw-perf, else target/release)
OUT=${OUT:-./scale-out}
THREADS=${THREADS:-1,2,4,8,12,16}
SECS=${SECS:-1}
POOL_MB=${POOL_MB:-16384}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
if [ -z "$BIN" ]; then
    BIN=$here/bin/espgw-perf
    [ -x "$BIN" ] || BIN=$(pwd)/target/release/espgw-perf
fi
# The OpenSSL build needs libssl.so.3; fall back to libraries carried beside it, then to
# the build without OpenSSL (no OpenSSL baseline).
if ! "$BIN" --help >/dev/null 2>&1; then
    export LD_LIBRARY_PATH=$(dirname "$BIN")/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    if ! "$BIN" --help >/dev/null 2>&1; then
        BIN=$(dirname "$BIN")/espgw-perf-nossl
    fi
fi
{
    echo "== date"; date -u
    echo "== binary"; echo "$BIN"; ldd "$BIN" 2>&1
    echo "== nproc"; nproc
    echo "== lscpu"; lscpu
    echo "== free"; free -g
    echo "== load"; cat /proc/loadavg
    if command -v openssl >/dev/null; then
        echo "== openssl speed -evp des-ede3-cbc"; openssl version
        openssl speed -seconds 1 -evp des-ede3-cbc 2>&1 | tail -4
    else
        echo "== openssl: not installed"
    fi
} >"$OUT/sysinfo.txt" 2>&1
rm -f "$OUT/scale.jsonl"
rc=0
for t in "esp-3des esp-md5-hmac" "esp-aes esp-sha-hmac" "esp-gcm"; do
    "$BIN" scale --transform "$t" --size 1400 --batch 64 --threads "$THREADS" \
        --secs "$SECS" --dir both --pool-mb "$POOL_MB" --json-out "$OUT/scale.jsonl" \
        2>&1 | tee -a "$OUT/scale.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
exit $rc
