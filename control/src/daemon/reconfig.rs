//! Live reconfiguration of the daemon: `espgw configure FILE` and SIGHUP.
//!
//! A new configuration text is checked whole first (every parse error, with its line; the
//! IKE view; the PKI credentials; the IKE address, which the bound sockets cannot follow).
//! Any failure changes nothing. Otherwise, for `configure`, the daemon's `--config` file is
//! rewritten atomically (temporary file in the same directory, mode and owner of the old
//! one, rename) so that espgw-dataplane, which polls that file's modification time and
//! reloads the crypto ACL rules of its classifiers, follows without a restart; then the
//! endpoint gets the new configuration through [`Endpoint::reconfigure`] (SAs it no longer
//! allows are deleted, DELETE to the peer) and the configuration becomes the one in force.
//!
//! [`Endpoint::reconfigure`]: crate::ike::Endpoint::reconfigure

use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Daemon;
use crate::config::model::InterfaceMap;
use crate::config::parse::{check_config, ConfigError};

/// Where the daemon's configuration comes from and how it was read, and its text in force.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    /// The `--config` file.
    pub path: PathBuf,
    pub ifmap: InterfaceMap,
    /// `--aggressive`.
    pub aggressive: bool,
    /// `--key-store`.
    pub key_store: PathBuf,
    /// The configuration text in force (secrets included: never logged).
    pub text: String,
}

/// Why a new configuration was not applied (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum ReconfigError {
    /// Every parse error, in line order.
    #[error("{}", lines(.0))]
    Parse(Vec<ConfigError>),
    #[error("{0}")]
    Invalid(String),
    #[error("the IKE address would change from {old} to {new}: restart espgw-control for that")]
    LocalAddress {
        old: std::net::Ipv4Addr,
        new: std::net::Ipv4Addr,
    },
    #[error("this daemon was not started from a configuration file")]
    NoSource,
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

fn lines(errors: &[ConfigError]) -> String {
    let v: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    v.join("\n")
}

impl Daemon {
    /// Records where the configuration came from (the binary calls this once at start).
    pub fn set_source(&self, source: ConfigSource) {
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// The configuration text in force, if the daemon knows it.
    pub fn config_text(&self) -> Option<String> {
        let src = self.source.lock().unwrap_or_else(|e| e.into_inner());
        src.as_ref().map(|s| s.text.clone())
    }

    /// Applies `text` as the new configuration (module comment); `rewrite`: also replace
    /// the `--config` file with it (`espgw configure`; SIGHUP has just read that file).
    /// On success, a one-line summary of what was kept and deleted, then the warnings.
    pub fn reconfigure(&self, text: &str, rewrite: bool) -> Result<String, ReconfigError> {
        let mut guard = self.source.lock().unwrap_or_else(|e| e.into_inner());
        let src = guard.as_mut().ok_or(ReconfigError::NoSource)?;
        let report = check_config(text, &src.ifmap);
        if !report.errors.is_empty() {
            return Err(ReconfigError::Parse(report.errors));
        }
        let config = report.config;
        let mut ike = crate::ike::ios::ike_config(&config, src.aggressive)
            .map_err(|e| ReconfigError::Invalid(e.to_string()))?;
        let store = crate::pki::KeyStore::new(&src.key_store);
        ike.pki = crate::pki::credentials::load(&config, &store)
            .map_err(|e| ReconfigError::Invalid(e.to_string()))?
            .map(Arc::new);
        let old = self.shared.with(|ep, _| ep.config().local_addr);
        if ike.local_addr != old {
            return Err(ReconfigError::LocalAddress {
                old,
                new: ike.local_addr,
            });
        }
        if rewrite {
            write_atomically(&src.path, text).map_err(|source| ReconfigError::Io {
                path: src.path.display().to_string(),
                source,
            })?;
        }
        let done = self.shared.with(|ep, now| ep.reconfigure(now, ike));
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        src.text = text.to_string();
        let mut msg = format!(
            "configuration applied: {} IPsec SA pair(s) kept, {} deleted, {} ISAKMP SA(s) deleted, {} negotiation(s) abandoned",
            done.kept_pairs.len(),
            done.deleted_pairs.len(),
            done.deleted_isakmp.len(),
            done.abandoned
        );
        for w in &report.warnings {
            msg.push_str(&format!("\nwarning: {w}"));
        }
        Ok(msg)
    }

    /// SIGHUP: re-reads the `--config` file and applies it as [`Daemon::reconfigure`] does.
    pub fn reload(&self) -> Result<String, ReconfigError> {
        let path = {
            let src = self.source.lock().unwrap_or_else(|e| e.into_inner());
            src.as_ref().ok_or(ReconfigError::NoSource)?.path.clone()
        };
        let bytes = std::fs::read(&path).map_err(|source| ReconfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.reconfigure(&String::from_utf8_lossy(&bytes), false)
    }
}

/// Replaces `path` (the file a symbolic link names, if it is one) with `text`: a temporary
/// file beside it with the old file's mode and owner, synced, then renamed over it, so that
/// a reader sees the old text or the new, never a mix.
pub fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let old = std::fs::metadata(&target).ok();
    let mode = old
        .as_ref()
        .map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.espgw-new-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        // The umask may have taken bits away.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(m) = &old {
            // Only root may give a file away; keep ours if that fails.
            let _ = std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid()));
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_keeps_mode_and_leaves_no_temporary() {
        let d = std::env::temp_dir().join(format!("espgw-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("r1.conf");
        std::fs::write(&p, "old\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&p, "new text\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new text\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("r1.conf")]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
