#!/usr/bin/env bash
# Proves the README's two commands on a Debian 12 root that has never seen this project:
# debootstrap makes a minimal bookworm root, a clone of this repository's HEAD goes into
# it, and `deploy/demo.sh` then `deploy/test.sh` run there exactly as the README writes
# them — installing their packages and Rust themselves. It ends with `ip netns list` inside
# the root, which must be empty. Not part of .ci/run: it takes 30-50 minutes on 2 cores.
#
#   deploy/fresh-check.sh [--keep] [--only-demo] [DIR]     (root; DIR default /var/tmp/espgw-fresh-PID)
#
# The root runs in its own mount and PID namespaces (its /proc shows only its processes,
# so test.sh's leak check sees nothing of the host's), with /sys and /dev bound from the
# host and a private /run; it shares the host's network stack, so it reaches the package
# registries as the host does: it gets the host's apt sources and acquire settings, its
# CA certificates (the registries here sit behind a TLS proxy, DESIGN §4) and resolv.conf.
# Nothing of the host's Rust, cargo cache or packages goes in. A log of everything:
# DIR.log.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
keep=0 only_demo=0 root=
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    --only-demo) only_demo=1 ;;
    -*) echo "usage: $0 [--keep] [--only-demo] [DIR]" >&2; exit 2 ;;
    *) root=$a ;;
  esac
done
root=${root:-/var/tmp/espgw-fresh-$$}
log="$root.log"
[ "$(id -u)" = 0 ] || { echo "fresh-check: run as root" >&2; exit 1; }
[ -e "$root" ] && { echo "fresh-check: $root exists; give another DIR" >&2; exit 1; }
say() { printf '\033[1m[fresh-check] %s\033[0m\n' "$*" | tee -a "$log"; }
t_all=$SECONDS

cleanup() {
  if [ $keep = 0 ] && [ -d "$root" ]; then
    # the mounts lived in the child mount namespace and are gone with it
    if findmnt -rn -o TARGET | grep -q "^$root/"; then
      say "mounts under $root are still there; not deleting it"
    else
      rm -rf --one-file-system "$root"
    fi
  fi
}
trap cleanup EXIT

command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
mirror=$(grep -rhoE '^(deb|URIs:)\s+\S+/debian/?(\s|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | awk '{print $2}' | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

say "debootstrap bookworm (minbase) from $mirror into $root"
t=$SECONDS
debootstrap --variant=minbase bookworm "$root" "$mirror" >>"$log" 2>&1 \
  || { tail -20 "$log" >&2; say "debootstrap failed (log: $log)"; exit 1; }
say "debootstrap: $((SECONDS - t)) s"

# What the host has for reaching the registries; nothing else of the host's.
cp -a /etc/apt/sources.list "$root/etc/apt/sources.list" 2>/dev/null || true
[ -d /etc/apt/sources.list.d ] && cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/"
for f in /etc/apt/apt.conf.d/*; do
  grep -qE '^\s*Acquire' "$f" 2>/dev/null && cp -a "$f" "$root/etc/apt/apt.conf.d/"
done
mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp -aL /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/hosts "$root/etc/hosts"
echo espgw-fresh >"$root/etc/hostname"

git clone -q --no-hardlinks "$repo" "$root/root/espgw"
say "cloned $(git -C "$repo" rev-parse --short HEAD) into $root/root/espgw"

steps='deploy/demo.sh || { echo "[fresh-check] FAIL: deploy/demo.sh"; exit 1; }
echo "[fresh-check] demo passed in $((SECONDS - t)) s"'
[ $only_demo = 1 ] || steps+='
deploy/test.sh || { echo "[fresh-check] FAIL: deploy/test.sh"; exit 1; }'
inner="set -e
mount -t proc proc /proc
cd /root/espgw
t=\$SECONDS
$steps
echo \"[fresh-check] README commands passed in \$((SECONDS - t)) s\"
left=\$(ip netns list)
[ -z \"\$left\" ] || { echo \"[fresh-check] FAIL: namespaces left: \$left\"; exit 1; }
echo '[fresh-check] ip netns list: empty'"

say "running the README's commands inside (log: $log)"
set +e
unshare --mount --propagation private --pid --fork --kill-child bash -c "
  set -e
  # the root must be a mount point of its own: ip netns and unshare remount / inside it
  mount --bind '$root' '$root'
  mount --rbind /sys '$root/sys'; mount --make-rslave '$root/sys'
  mount --rbind /dev '$root/dev'; mount --make-rslave '$root/dev'
  mount -t tmpfs -o mode=0755 tmpfs '$root/run'
  mkdir -p '$root/tmp' && chmod 1777 '$root/tmp'
  exec chroot '$root' /usr/bin/env -i HOME=/root TERM=${TERM:-dumb} LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c \"\$0\"
" "$inner" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
set -e
say "$([ "$rc" = 0 ] && echo PASS || echo "FAIL (exit $rc)") in $((SECONDS - t_all)) s (debootstrap, packages, Rust, build, demo$([ $only_demo = 1 ] || echo ", all tests"))"
exit "$rc"
