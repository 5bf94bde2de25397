#!/usr/bin/env bash
# Preflight: proves in seconds, before any build, that this machine can run the lab — and
# when it cannot, says which package or kernel feature is missing. deploy/demo.sh and
# deploy/test.sh run it right after installing packages; run it alone as root any time.
#
# Checks: network namespaces and veth; clang can target BPF with libbpf's headers; XDP
# attaches to veth (driver and generic mode); the kernel has AF_XDP sockets; charon starts
# in a throwaway namespace and loads every plugin the lab uses; tshark decrypts and
# authenticates a known ESP frame and knows the IKEv1 decryption table; scapy imports.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ns="espgw-preflight-$$"
tmp=$(mktemp -d /tmp/espgw-preflight.XXXXXX)
charon_pid=
fails=0

cleanup() {
  if [ -n "$charon_pid" ]; then
    kill "$charon_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$charon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$charon_pid" 2>/dev/null
  fi
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { printf '[preflight] ok   %s\n' "$*"; }
fail() { printf '[preflight] FAIL %s\n' "$*" >&2; fails=$((fails + 1)); }
# the last lines of a log, indented
tail_of() { tail -n "${2:-12}" "$1" 2>/dev/null | sed 's/^/             | /' >&2; }

# --- network namespaces and veth ----------------------------------------------------------
if ip netns add "$ns" 2>"$tmp/netns.err" && ip -n "$ns" link set lo up 2>>"$tmp/netns.err"; then
  ok "network namespaces"
else
  fail "cannot create a network namespace (ip netns add): $(cat "$tmp/netns.err") — run as root on a kernel with CONFIG_NET_NS, package iproute2"
fi
veth=0
if ip -n "$ns" link add pf0 type veth peer name pf1 2>"$tmp/veth.err" \
   && ip -n "$ns" link set pf0 up && ip -n "$ns" link set pf1 up; then
  ok "veth pairs"; veth=1
else
  fail "cannot create a veth pair: $(cat "$tmp/veth.err") — the kernel needs CONFIG_VETH"
fi

# --- clang targets BPF; XDP on veth -------------------------------------------------------
cat >"$tmp/pass.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
EOF
bpf=0
if ! command -v clang >/dev/null; then
  fail "clang not found — apt-get install clang llvm"
elif clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c "$tmp/pass.c" -o "$tmp/pass.o" 2>"$tmp/clang.err"; then
  ok "clang -target bpf with libbpf headers"; bpf=1
else
  fail "clang cannot build an XDP program: $(head -3 "$tmp/clang.err") — apt-get install clang llvm libbpf-dev"
fi
if [ $bpf = 1 ] && [ $veth = 1 ]; then
  for mode in xdpdrv xdpgeneric; do
    if ip -n "$ns" link set dev pf0 "$mode" obj "$tmp/pass.o" sec xdp 2>"$tmp/xdp.err"; then
      ip -n "$ns" link set dev pf0 "$mode" off
      ok "XDP on veth ($mode)"
    else
      fail "cannot attach XDP ($mode) to veth: $(head -2 "$tmp/xdp.err") — the kernel needs CONFIG_BPF_SYSCALL and CONFIG_XDP; iproute2 with libbpf"
    fi
  done
fi

# --- AF_XDP -------------------------------------------------------------------------------
if /usr/bin/python3 -c 'import socket; socket.socket(44, socket.SOCK_RAW).close()' 2>"$tmp/xsk.err"; then
  ok "AF_XDP sockets"
else
  fail "the kernel refuses AF_XDP sockets ($(tail -1 "$tmp/xsk.err")) — it needs CONFIG_XDP_SOCKETS"
fi

# --- charon: starts and loads the lab's plugins ---------------------------------------------
charon=
for c in /usr/lib/ipsec/charon /usr/libexec/ipsec/charon /usr/lib/strongswan/charon; do
  [ -x "$c" ] && charon=$c && break
done
# plugin -> the Debian package that ships it
declare -A plugin_pkg=(
  [openssl]=libstrongswan-standard-plugins [kernel-libipsec]=libcharon-extra-plugins
  [xauth-generic]=libcharon-extauth-plugins [kernel-netlink]=strongswan-charon
  [socket-default]=strongswan-charon [vici]=strongswan-swanctl [random]=libstrongswan
  [nonce]=libstrongswan [unity]=libcharon-extra-plugins
)
if [ -z "$charon" ]; then
  fail "charon not found — apt-get install strongswan-charon"
elif ! command -v swanctl >/dev/null; then
  fail "swanctl not found — apt-get install strongswan-swanctl"
else
  mkdir -p "$tmp/run"
  cat >"$tmp/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl kernel-libipsec kernel-netlink socket-default vici xauth-generic unity
  plugins { vici { socket = unix://$tmp/charon.vici } }
  filelog { preflight { path = $tmp/charon.log
                        default = 1
                        flush_line = yes } }
  syslog { daemon { default = -1 } }
}
swanctl { load = random openssl }
EOF
  STRONGSWAN_CONF="$tmp/strongswan.conf" ip netns exec "$ns" \
    unshare -m --propagation private sh -c "mount --bind '$tmp/run' /run && exec $charon" \
    >"$tmp/charon.out" 2>&1 &
  charon_pid=$!
  for _ in $(seq 100); do
    [ -S "$tmp/charon.vici" ] && break
    kill -0 "$charon_pid" 2>/dev/null || break
    sleep 0.1
  done
  missing_plugins=$(grep -o "plugin '[a-z0-9-]*': failed to load" "$tmp/charon.log" 2>/dev/null | cut -d"'" -f2 | sort -u)
  if [ -n "$missing_plugins" ]; then
    pk=$(for p in $missing_plugins; do echo "${plugin_pkg[$p]:-?}"; done | sort -u | tr '\n' ' ')
    fail "charon cannot load plugin(s) $(echo $missing_plugins) — apt-get install ${pk% }; charon's log ends:"
    tail_of "$tmp/charon.log"
  elif ! kill -0 "$charon_pid" 2>/dev/null || [ ! -S "$tmp/charon.vici" ]; then
    fail "charon did not start (no vici socket within 10 s); its log ends:"
    tail_of "$tmp/charon.log"; tail_of "$tmp/charon.out" 5
  elif ! STRONGSWAN_CONF="$tmp/strongswan.conf" ip netns exec "$ns" swanctl --stats --uri "unix://$tmp/charon.vici" >"$tmp/swanctl.out" 2>&1; then
    fail "charon started but swanctl cannot talk to it:"; tail_of "$tmp/swanctl.out" 5
  else
    ok "charon $("$charon" --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' | head -1) loads ${!plugin_pkg[*]}"
  fi
fi

# --- tshark: decrypts and authenticates ESP, knows IKEv1 decryption -----------------------
# deploy/preflight/esp-3des-md5.pcap: one ICMP echo in ESP (3DES-CBC, HMAC-MD5-96), written
# by scapy's SecurityAssociation with the keys below.
if ! command -v tshark >/dev/null; then
  fail "tshark not found — apt-get install tshark"
else
  out=$(tshark -n -r "$here/preflight/esp-3des-md5.pcap" \
    -o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE \
    -o 'uat:esp_sa:"IPv4","172.16.172.10","172.16.172.20","0x1000abcd","TripleDES-CBC [RFC2451]","0x0123456789abcdef1122334455667788aabbccddeeff0011","HMAC-MD5-96 [RFC2403]","0x00112233445566778899aabbccddeeff"' \
    -o 'uat:ikev1_decryption_table:0011223344556677,00112233445566778899aabbccddeeff' \
    -T fields -e esp.icv_good -e icmp.seq 2>"$tmp/tshark.err")
  if [ "$out" = "$(printf '1\t1')" ]; then
    ok "tshark decrypts and authenticates ESP; IKEv1 decryption table accepted"
  else
    fail "tshark could not decrypt/authenticate a known ESP frame or has no IKEv1 decryption table (got '$out'): $(grep -v '^Running as' "$tmp/tshark.err" | head -2) — apt-get install tshark (Debian 12's 4.0)"
  fi
fi

# --- scapy and the tools the tests drive ---------------------------------------------------
if /usr/bin/python3 -c 'import scapy.all, scapy.layers.ipsec, cryptography' 2>"$tmp/scapy.err"; then
  ok "scapy (Debian's /usr/bin/python3)"
else
  fail "scapy does not import in /usr/bin/python3: $(tail -1 "$tmp/scapy.err") — apt-get install python3-scapy python3-cryptography"
fi
declare -A tool_pkg=([tcpdump]=tcpdump [iperf3]=iperf3 [trafgen]=netsniff-ng [ethtool]=ethtool
  [ping]=iputils-ping [unshare]=util-linux [pgrep]=procps [pki]=strongswan-pki)
absent=
for t in "${!tool_pkg[@]}"; do command -v "$t" >/dev/null || absent+=" $t (${tool_pkg[$t]})"; done
if [ -z "$absent" ]; then ok "tools: ${!tool_pkg[*]}"; else fail "missing tools:$absent — apt-get install the packages named"; fi

if [ $fails -gt 0 ]; then
  echo "[preflight] $fails check(s) failed: the lab cannot run here until they pass" >&2
  exit 1
fi
echo "[preflight] all checks passed"
