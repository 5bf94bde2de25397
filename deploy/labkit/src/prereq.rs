//! Test prerequisites, one rule for every test in the workspace: **no test passes without
//! running.**
//!
//! - What this machine can be given (root, charon, tshark, scapy, a tool): a test that
//!   lacks it fails, with the reason and the fix ([`require_root`], [`require_tool`]).
//! - What it cannot be given (a CPU feature that a SIMD dispatch level needs): the test
//!   runs every level the CPU has and records each level it could not run with [`skip`].
//!   The record goes to stderr and, when `ESPGW_SKIP_LOG` names a file, one line is
//!   appended there; `deploy/test.sh` sets it and prints the count and the lines at the end.

use std::io::Write;
use std::path::Path;

/// The environment variable naming the file that skipped checks are appended to.
pub const SKIP_LOG_ENV: &str = "ESPGW_SKIP_LOG";

/// Whether this process runs as root (the Uid line of /proc/self/status: no unsafe code).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The reason a test cannot run without root, or `None` as root.
pub fn root_missing() -> Option<String> {
    (!is_root()).then(|| {
        "this test needs root (network namespaces, veth, XDP, AF_XDP): run it as root, e.g. \
         `sudo deploy/test.sh`"
            .to_string()
    })
}

/// Fails the calling test, with the reason, unless it runs as root.
#[track_caller]
pub fn require_root() {
    if let Some(why) = root_missing() {
        panic!("prerequisite missing: {why}");
    }
}

/// Whether `name` is an executable file in a directory of `PATH` (or an absolute path to one).
pub fn have_tool(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        return exec(Path::new(name));
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| exec(&d.join(name))))
        .unwrap_or(false)
}

/// Fails the calling test, naming the Debian package, unless `tool` is installed.
#[track_caller]
pub fn require_tool(tool: &str, package: &str) {
    if !have_tool(tool) {
        panic!(
            "prerequisite missing: `{tool}` is not installed: apt-get install {package} \
             (deploy/test.sh installs it)"
        );
    }
}

/// Records that `what` (a test, or one dispatch level of it) did not run on this machine
/// because of `reason` — a hardware feature no package can provide.
pub fn skip(what: &str, reason: &str) {
    eprintln!("SKIPPED {what}: {reason}");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        let line = format!("{what}: {reason}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!(
                "cannot record the skip in {}: {e}",
                Path::new(&path).display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_on_path_only_when_executable() {
        assert!(have_tool("sh"));
        assert!(have_tool("/bin/sh"));
        assert!(!have_tool("espgw-no-such-tool"));
        assert!(!have_tool("/etc/passwd"));
    }

    #[test]
    fn root_is_read_from_proc() {
        // Whatever we run as, the answer and the reason agree.
        assert_eq!(is_root(), root_missing().is_none());
    }

    #[test]
    fn skip_appends_one_line_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips");
        // The variable is read by this process only; tests in this binary do not race on
        // it because only this test sets it.
        std::env::set_var(SKIP_LOG_ENV, &log);
        skip("t1 level avx512", "CPU lacks avx512vbmi");
        skip("t2", "why");
        std::env::remove_var(SKIP_LOG_ENV);
        let s = std::fs::read_to_string(&log).unwrap();
        assert_eq!(s, "t1 level avx512: CPU lacks avx512vbmi\nt2: why\n");
    }
}
