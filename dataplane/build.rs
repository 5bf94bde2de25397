//! Compiles the XDP classifiers in `ebpf/*.c` with clang (BPF target) and
//! embeds the objects; compiles and runs `ebpf/layout.c` on the host so the
//! Rust mirrors of `ebpf/espgw_maps.h` can be checked against the header.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["inside", "outside"];

fn clang() -> String {
    env::var("ESPGW_CLANG").unwrap_or_else(|_| "clang".to_string())
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install clang, llvm, libbpf-dev)"));
    if !status.success() {
        panic!("{cmd:?} failed with {status}");
    }
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let ebpf = manifest.join("..").join("ebpf");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    println!("cargo:rerun-if-env-changed=ESPGW_CLANG");
    for header in ["espgw_maps.h", "common.h", "acl.h", "layout.c"] {
        println!("cargo:rerun-if-changed={}", ebpf.join(header).display());
    }
    for prog in PROGRAMS {
        let src = ebpf.join(format!("{prog}.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        run(Command::new(clang())
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-I")
            .arg(&ebpf)
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(out.join(format!("{prog}.bpf.o"))));
    }

    // Layout probe: the header's sizes, offsets and constants as Rust.
    let probe = out.join("espgw_layout_probe");
    run(Command::new(clang())
        .args(["-O0", "-Wall", "-Werror"])
        .arg(ebpf.join("layout.c"))
        .arg("-o")
        .arg(&probe));
    let output = Command::new(&probe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", probe.display()));
    assert!(output.status.success(), "layout probe failed");
    std::fs::write(out.join("espgw_layout.rs"), output.stdout).expect("write espgw_layout.rs");
}
