//! What the espgw-perf lab tests share: running the binary for its JSON.
#![allow(dead_code)]

use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_espgw-perf");

/// `espgw-perf SUBCOMMAND ARGS… --json`, which must succeed; its JSON document.
pub fn perf_json(sub: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg(sub)
        .args(args)
        .arg("--json")
        .output()
        .expect("run espgw-perf");
    assert!(
        out.status.success(),
        "espgw-perf {sub} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// A u64 field, or a panic naming it.
pub fn u(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}
