//! `espgw pcap encap|decap …`: the offline ESP capture tool. It runs the dataplane's ESP
//! code, so it is espgw-dataplane's binary `espgw-pcap`; espgw runs it from its own
//! directory (git-style), arguments untouched, and exits with its status. espgw itself
//! therefore builds without the dataplane (and its BPF toolchain).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};

/// The binary `espgw pcap` runs, installed next to `espgw`.
pub const TOOL: &str = "espgw-pcap";

/// Exit status when the tool is not installed (the shell's "command not found").
pub const NOT_FOUND: u8 = 127;

/// Entry point for `espgw pcap ...`: `args` are the arguments after `pcap`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let exe = std::env::current_exe().ok();
    let dir = exe.as_deref().and_then(Path::parent);
    run_tool(dir, TOOL, &args, &mut std::io::stderr().lock())
}

/// Runs `dir/name args…` with this process's standard streams and returns its exit
/// status (128 + the signal if a signal ended it). If there is no such program, says so on
/// `err` and returns [`NOT_FOUND`].
pub fn run_tool(
    dir: Option<&Path>,
    name: &str,
    args: &[OsString],
    err: &mut dyn Write,
) -> ExitCode {
    let Some(path) = dir.map(|d| d.join(name)).filter(|p| p.is_file()) else {
        let _ = writeln!(
            err,
            "espgw pcap: {name} not found{}: it is espgw-dataplane's offline tool; install it next to espgw",
            dir.map(|d| format!(" in {}", d.display())).unwrap_or_default()
        );
        return ExitCode::from(NOT_FOUND);
    };
    match Command::new(&path).args(args).status() {
        Ok(st) => match st.code() {
            Some(c) => ExitCode::from(c.clamp(0, 255) as u8),
            None => {
                use std::os::unix::process::ExitStatusExt;
                let sig = st.signal().unwrap_or(0);
                ExitCode::from((128 + sig).clamp(0, 255) as u8)
            }
        },
        Err(e) => {
            let _ = writeln!(err, "espgw pcap: {}: {e}", path.display());
            ExitCode::from(NOT_FOUND)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("espgw-pcap-dispatch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_tool_is_a_clear_error() {
        let d = tmpdir("missing");
        let mut err = Vec::new();
        let code = run_tool(Some(&d), TOOL, &[OsString::from("encap")], &mut err);
        assert_eq!(code, ExitCode::from(NOT_FOUND));
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("espgw pcap: espgw-pcap not found in "),
            "{err}"
        );
        assert!(err.contains("espgw-dataplane"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn arguments_pass_untouched_and_the_status_comes_back() {
        let d = tmpdir("run");
        let tool = d.join("tool");
        let seen = d.join("args");
        std::fs::write(
            &tool,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexit 3\n",
                seen.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o700)).unwrap();
        let args: Vec<OsString> = ["decap", "--spi", "0x100", "a b.pcap"]
            .iter()
            .map(OsString::from)
            .collect();
        let mut err = Vec::new();
        assert_eq!(
            run_tool(Some(&d), "tool", &args, &mut err),
            ExitCode::from(3)
        );
        assert!(err.is_empty());
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            "decap\n--spi\n0x100\na b.pcap\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
