//! `espgw pcap …` runs espgw-dataplane's `espgw-pcap` from espgw's own directory (the
//! offline tool needs the ESP code; espgw does not link the dataplane). No root needed.

use std::path::Path;
use std::process::Command;

/// Builds `espgw-pcap` next to the `espgw` under test. Where it cannot be built (the
/// dataplane needs clang and the BPF headers) the test fails and says so: no test passes
/// without running.
fn build_tool(espgw: &Path) {
    let dir = espgw.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "espgw-dataplane", "--bin", "espgw-pcap"]);
    if dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    let ok = cmd.status().is_ok_and(|s| s.success());
    assert!(
        ok && dir.join("espgw-pcap").is_file(),
        "prerequisite missing: espgw-pcap (espgw-dataplane) does not build here; it needs \
         clang, llvm and libbpf-dev (deploy/test.sh installs them)"
    );
}

#[test]
fn espgw_pcap_runs_the_dataplane_tool() {
    let espgw = Path::new(env!("CARGO_BIN_EXE_espgw"));
    build_tool(espgw);
    let out = Command::new(espgw)
        .args(["pcap", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("encap") && text.contains("decap"), "{text}");
    // The tool's own errors and exit status come back through espgw.
    let out = Command::new(espgw)
        .args(["pcap", "encap", "--spi", "xyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--spi"),
        "{out:?}"
    );
}
