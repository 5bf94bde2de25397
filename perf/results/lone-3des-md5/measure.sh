#!/bin/bash
# usage: measure.sh OUTDIR BIN_LABEL=BIN ... ; runs every config for each binary, alternating.
out=$1; shift
mkdir -p "$out"
for level in avx512 avx2 portable; do
  for t in "esp-3des esp-md5-hmac" "esp-aes esp-sha-hmac"; do
    for size in 64 1400; do
      for batch in 1 64; do
        for lb in "$@"; do
          label=${lb%%=*}; bin=${lb#*=}
          "$bin" crypto --transform "$t" --size $size --batch $batch --secs ${SECS:-0.5} --level $level >> "$out/$label-$level.txt" 2>&1
        done
      done
    done
  done
done
