# Shared set-up for deploy/demo.sh and deploy/test.sh (sourced, not run).
# Installs what is missing: the Debian packages below and a Rust toolchain (rustup), then
# deploy/preflight.sh checks in seconds that what the lab needs actually works.

# Every Debian package the demo, the lab and the tests use — the ones Debian only
# *recommends* too, since we install with --no-install-recommends. One list, here.
ESPGW_APT_PACKAGES=(
  # strongSwan, the real IKEv1 peer: charon + swanctl; the openssl plugin lives in
  # libstrongswan-standard-plugins (only recommended by libstrongswan: without it charon
  # dies at start), xauth-generic in libcharon-extauth-plugins, `pki` in strongswan-pki.
  strongswan-charon strongswan-swanctl libstrongswan-standard-plugins
  libcharon-extra-plugins libcharon-extauth-plugins strongswan-pki
  # vpnc, the Cisco-compatible Easy VPN client (remote-access tests)
  vpnc
  # the judge and the captures
  tshark tcpdump
  # the XDP programs (clang -target bpf, libbpf headers) and xsk-rs's vendored libxdp
  clang llvm libbpf-dev libelf-dev zlib1g-dev m4 make pkg-config build-essential
  # traffic and packet tools the tests drive
  python3-scapy python3-cryptography iperf3 netsniff-ng ethtool iproute2 iputils-ping
  # espgw-perf's lossy DUT where the kernel has no netem (nft numgen random drop)
  nftables
  # an independent OpenMetrics parser for the metrics endpoint test
  python3-prometheus-client
  # the perf baselines (OpenSSL) and the rest
  libssl-dev openssl ca-certificates curl util-linux procps
)
ESPGW_RUST_TOOLCHAIN=1.95.0

say() { printf '\033[1m[espgw] %s\033[0m\n' "$*"; }
die() { printf '[espgw] error: %s\n' "$*" >&2; exit 1; }

# `timed LABEL CMD...`: runs CMD and says how long it took.
timed() {
  local label=$1 t0=$SECONDS rc=0
  shift
  "$@" || rc=$?
  say "$label: $((SECONDS - t0)) s$([ $rc = 0 ] || echo " (failed, exit $rc)")"
  return $rc
}

require_root() {
  [ "$(id -u)" = 0 ] || die "run as root: the lab creates network namespaces (sudo $0)"
  command -v apt-get >/dev/null 2>&1 || die "needs Debian 12 (apt-get): install the packages in deploy/setup.sh yourself"
}

# The packages of the list that dpkg does not have installed.
missing_packages() {
  local p
  for p in "${ESPGW_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

ensure_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages: all ${#ESPGW_APT_PACKAGES[@]} present"
    return
  fi
  say "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Short network time-outs: with no reachable mirror this fails in well under a minute.
  local apt_opts=(-q -o Acquire::Retries=1 -o Acquire::http::Timeout=20 -o Acquire::https::Timeout=20)
  timed "apt-get update" apt-get "${apt_opts[@]}" update \
    || die "apt-get update failed: cannot install ${missing[*]} (check the Debian mirror in /etc/apt/sources.list)"
  timed "apt-get install" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]} (see apt's message above)"
  local still
  mapfile -t still < <(missing_packages)
  [ ${#still[@]} -eq 0 ] || die "still not installed after apt-get: ${still[*]}"
  # strongswan-charon pulls in strongswan-starter, whose service would run a system-wide
  # charon in the root namespace. The lab runs its own charon per router namespace.
  if [[ " ${missing[*]} " == *" strongswan-charon "* ]] && command -v systemctl >/dev/null 2>&1 \
     && systemctl is-enabled strongswan-starter.service >/dev/null 2>&1; then
    say "disabling the system-wide strongSwan service the package enabled (the lab starts its own)"
    systemctl disable --now strongswan-starter.service || true
  fi
}

ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if command -v cargo >/dev/null 2>&1; then
    say "Rust: $(cargo --version)"
    return
  fi
  # rustup-init straight from the Rust project's distribution server (what the rustup.rs
  # script downloads), checked against its published SHA-256.
  local arch base tmp
  arch="$(uname -m)-unknown-linux-gnu"
  base="https://static.rust-lang.org/rustup/dist/$arch"
  tmp=$(mktemp -d)
  say "cargo not found: installing Rust $ESPGW_RUST_TOOLCHAIN with rustup into $HOME/.cargo"
  curl --proto '=https' --tlsv1.2 -fsS --max-time 120 -o "$tmp/rustup-init" "$base/rustup-init" \
    && curl --proto '=https' --tlsv1.2 -fsS --max-time 30 -o "$tmp/rustup-init.sha256" "$base/rustup-init.sha256" \
    || die "could not download rustup-init from $base; install Rust $ESPGW_RUST_TOOLCHAIN yourself and re-run"
  (cd "$tmp" && echo "$(cut -d' ' -f1 rustup-init.sha256)  rustup-init" | sha256sum -c --quiet) \
    || die "rustup-init's SHA-256 does not match $base/rustup-init.sha256"
  chmod +x "$tmp/rustup-init"
  timed "rustup" "$tmp/rustup-init" -y --no-modify-path --profile minimal --default-toolchain "$ESPGW_RUST_TOOLCHAIN" \
    || die "rustup failed; install Rust $ESPGW_RUST_TOOLCHAIN yourself and re-run"
  rm -rf "$tmp"
  export PATH="$HOME/.cargo/bin:$PATH"
  say "Rust: $(cargo --version)"
}

# Installs what is missing, then proves in seconds that it works (deploy/preflight.sh).
ensure_all() {
  require_root
  ensure_packages
  ensure_cargo
  timed "preflight" bash "$(dirname "${BASH_SOURCE[0]}")/preflight.sh" || exit 1
}

# PIDs of charon and tcpdump processes (to prove a run left none behind).
lab_processes() { pgrep -x charon 2>/dev/null; pgrep -x tcpdump 2>/dev/null; true; }
