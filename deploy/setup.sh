# Shared set-up for deploy/demo.sh and deploy/test.sh (sourced, not run).
# Installs what is missing: the Debian packages below and a Rust toolchain (rustup).

ESPGW_APT_PACKAGES=(
  strongswan-charon strongswan-swanctl libcharon-extra-plugins tshark tcpdump
  clang llvm libbpf-dev libelf-dev zlib1g-dev m4 make pkg-config python3-scapy
  iperf3 netsniff-ng ethtool iproute2 libssl-dev iputils-ping build-essential
  ca-certificates curl util-linux procps
)
ESPGW_RUST_TOOLCHAIN=1.95.0

say() { printf '\033[1m[espgw] %s\033[0m\n' "$*"; }
die() { printf '[espgw] error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "run as root: the lab creates network namespaces (sudo $0)"
  command -v ip >/dev/null 2>&1 || command -v apt-get >/dev/null 2>&1 || die "needs Debian 12 (apt-get) or iproute2"
}

ensure_packages() {
  local missing=()
  for p in "${ESPGW_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages: all present"
    return
  fi
  say "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
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
  say "cargo not found: installing Rust $ESPGW_RUST_TOOLCHAIN with rustup into $HOME/.cargo (https://rustup.rs)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain "$ESPGW_RUST_TOOLCHAIN" \
    || die "rustup failed; install Rust $ESPGW_RUST_TOOLCHAIN yourself and re-run"
  export PATH="$HOME/.cargo/bin:$PATH"
  say "Rust: $(cargo --version)"
}

# PIDs of charon and tcpdump processes (to prove a run left none behind).
lab_processes() { pgrep -x charon 2>/dev/null; pgrep -x tcpdump 2>/dev/null; true; }
