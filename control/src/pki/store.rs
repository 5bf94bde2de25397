//! The key store: a directory (mode 0700) holding what never goes into the configuration.
//!
//! ```text
//! DIR/keys/LABEL.key              RSA private key, PKCS#8 PEM, mode 0600
//! DIR/trustpoints/NAME/ca.der     the trustpoint's CA certificate
//! DIR/trustpoints/NAME/cert.der   the router's certificate
//! DIR/trustpoints/NAME/crl.der    the CA's CRL (revocation-check crl)
//! ```
//! `espgw crypto key generate rsa` writes keys; `espgw crypto pki import` writes
//! trustpoints (and a key, if the PEM files hold one). A key file readable by anyone but
//! its owner is refused, naming the file. Private keys are zeroized when dropped (the `rsa`
//! crate's keys are) and the PEM text is held in `Zeroizing` buffers.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

#[cfg(test)]
use super::cert::key_bits;
use super::cert::{pem_blocks, Cert};
use super::validate::Crl;

/// Where espgw keeps keys and imported certificates unless told otherwise.
pub const DEFAULT_DIR: &str = "/etc/espgw/pki";

/// Why the key store could not do what was asked; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "% You already have RSA keys defined named {0} ({1}); remove the file to replace them"
    )]
    Exists(String, String),
    #[error("% Key pair {label} not found ({path})")]
    NoKey { label: String, path: String },
    #[error("{path}: mode {mode:04o}; a key file must be readable by its owner only (chmod 600)")]
    Mode { path: String, mode: u32 },
    #[error("{path}: {reason}")]
    Bad { path: String, reason: String },
    #[error("% A key label is 1-64 characters of letters, digits, '.', '-' and '_': {0:?}")]
    Label(String),
    #[error("% The modulus size must be 512-4096 bits, a multiple of 64: {0}")]
    Modulus(usize),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn check_label(label: &str) -> Result<(), StoreError> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label != "."
        && label != ".."
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Label(label.to_string()))
    }
}

/// A trustpoint's files, as read from the store.
#[derive(Debug, Default)]
pub struct TrustpointFiles {
    pub ca: Option<Cert>,
    pub cert: Option<Cert>,
    pub crl: Option<Crl>,
}

/// What `import` put where.
#[derive(Debug, Default)]
pub struct Imported {
    pub ca: Option<Cert>,
    pub cert: Option<Cert>,
    pub crl: bool,
    /// The label a private key was stored under.
    pub key: Option<String>,
}

/// The key store in one directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KeyStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key_path(&self, label: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{label}.key"))
    }

    fn tp_dir(&self, tp: &str) -> PathBuf {
        self.dir.join("trustpoints").join(tp)
    }

    /// Makes `d` (and the store's root) with mode 0700.
    fn make_dir(&self, d: &Path) -> Result<(), StoreError> {
        for p in [self.dir.as_path(), d] {
            fs::create_dir_all(p).map_err(io(p))?;
            fs::set_permissions(p, fs::Permissions::from_mode(0o700)).map_err(io(p))?;
        }
        Ok(())
    }

    /// Writes `bytes` to `path` through a temporary file of mode `mode`, then renames it.
    fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp))?;
        fs::rename(&tmp, path).map_err(io(path))
    }

    /// `crypto key generate rsa label LABEL modulus BITS`: a new key pair, written 0600.
    /// Refuses to replace an existing one.
    pub fn generate_rsa(&self, label: &str, bits: usize) -> Result<PublicKey, StoreError> {
        check_label(label)?;
        if !(512..=4096).contains(&bits) || !bits.is_multiple_of(64) {
            return Err(StoreError::Modulus(bits));
        }
        let path = self.key_path(label);
        if path.exists() {
            return Err(StoreError::Exists(
                label.to_string(),
                path.display().to_string(),
            ));
        }
        let key = PrivateKey::new(&mut crypto_common::getrandom::SysRng, bits).map_err(|e| {
            StoreError::Bad {
                path: path.display().to_string(),
                reason: format!("key generation failed: {e}"),
            }
        })?;
        self.save_key(label, &key)?;
        Ok(key.to_public_key())
    }

    /// Stores a private key under `label` (replacing one of that name).
    pub fn save_key(&self, label: &str, key: &PrivateKey) -> Result<(), StoreError> {
        check_label(label)?;
        let path = self.key_path(label);
        self.make_dir(&self.dir.join("keys"))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| StoreError::Bad {
                path: path.display().to_string(),
                reason: format!("cannot encode the key: {e}"),
            })?;
        Self::write_file(&path, pem.as_bytes(), 0o600)
    }

    /// The private key `label`; its file must be mode 0600 (or stricter).
    pub fn load_key(&self, label: &str) -> Result<PrivateKey, StoreError> {
        check_label(label)?;
        let path = self.key_path(label);
        let shown = path.display().to_string();
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NoKey {
                    label: label.to_string(),
                    path: shown,
                })
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::Mode { path: shown, mode });
        }
        let text = Zeroizing::new(fs::read_to_string(&path).map_err(io(&path))?);
        parse_private_key(&text).map_err(|reason| StoreError::Bad {
            path: shown,
            reason,
        })
    }

    /// The labels of the stored keys, sorted.
    pub fn labels(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.join("keys"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".key"))
                    .map(str::to_string)
            })
            .collect();
        v.sort();
        v
    }

    /// The public half of key `label` (for `show crypto key mypubkey rsa`).
    pub fn public_key(&self, label: &str) -> Result<PublicKey, StoreError> {
        Ok(self.load_key(label)?.to_public_key())
    }

    /// `crypto pki import TRUSTPOINT pem FILE…`: every PEM block of every file goes where
    /// it belongs — a CA certificate (basicConstraints cA) to ca.der, another certificate
    /// to cert.der, a CRL to crl.der, a private key to `key_label` (mode 0600). The router
    /// certificate must certify that key when both are given.
    pub fn import_pem(
        &self,
        trustpoint: &str,
        key_label: &str,
        files: &[PathBuf],
    ) -> Result<Imported, StoreError> {
        check_label(trustpoint)?;
        let mut got = Imported::default();
        let mut key: Option<PrivateKey> = None;
        let mut crl_der: Option<Vec<u8>> = None;
        for f in files {
            let shown = f.display().to_string();
            let bad = |reason: String| StoreError::Bad {
                path: shown.clone(),
                reason,
            };
            let text = Zeroizing::new(fs::read_to_string(f).map_err(io(f))?);
            let blocks = pem_blocks(&text).map_err(bad)?;
            if blocks.is_empty() {
                return Err(bad("no PEM block (-----BEGIN …-----) in the file".into()));
            }
            for (i, (label, der)) in blocks.into_iter().enumerate() {
                let der = Zeroizing::new(der);
                let at = |r: String| bad(format!("block {} ({label}): {r}", i + 1));
                match label.as_str() {
                    "CERTIFICATE" | "X509 CERTIFICATE" => {
                        let c = Cert::from_der(&der).map_err(|e| at(e.to_string()))?;
                        let is_ca = c.basic_constraints_ca().map_err(|e| at(e.to_string()))?;
                        let slot = if is_ca == Some(true) {
                            &mut got.ca
                        } else {
                            &mut got.cert
                        };
                        if slot.is_some() {
                            return Err(at(format!(
                                "a second {} certificate",
                                if is_ca == Some(true) { "CA" } else { "router" }
                            )));
                        }
                        *slot = Some(c);
                    }
                    "X509 CRL" => {
                        Crl::from_der(&der).map_err(at)?;
                        crl_der = Some(der.to_vec());
                    }
                    "RSA PRIVATE KEY" | "PRIVATE KEY" => {
                        let k = if label == "RSA PRIVATE KEY" {
                            PrivateKey::from_pkcs1_der(&der).map_err(|e| e.to_string())
                        } else {
                            PrivateKey::from_pkcs8_der(&der).map_err(|e| e.to_string())
                        };
                        key = Some(k.map_err(at)?);
                    }
                    "ENCRYPTED PRIVATE KEY" => {
                        return Err(at(
                            "encrypted keys are not supported; decrypt it first (openssl pkey)"
                                .into(),
                        ))
                    }
                    _ => return Err(at("not a certificate, CRL or RSA private key".into())),
                }
            }
        }
        if let (Some(c), Some(k)) = (&got.cert, &key) {
            if c.public_key() != k.as_public_key() {
                return Err(StoreError::Bad {
                    path: files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    reason: format!(
                        "the router certificate (SN: {}) does not certify the private key",
                        c.serial_hex()
                    ),
                });
            }
        }
        if let (Some(c), Some(ca)) = (&got.cert, &got.ca) {
            if !c.signed_by(ca.public_key()) {
                return Err(StoreError::Bad {
                    path: trustpoint.to_string(),
                    reason: format!(
                        "the router certificate (SN: {}) is not signed by the CA certificate (SN: {})",
                        c.serial_hex(),
                        ca.serial_hex()
                    ),
                });
            }
        }
        let d = self.tp_dir(trustpoint);
        self.make_dir(&d)?;
        if let Some(ca) = &got.ca {
            Self::write_file(&d.join("ca.der"), ca.der(), 0o644)?;
        }
        if let Some(c) = &got.cert {
            Self::write_file(&d.join("cert.der"), c.der(), 0o644)?;
        }
        if let Some(crl) = &crl_der {
            Self::write_file(&d.join("crl.der"), crl, 0o644)?;
            got.crl = true;
        }
        if let Some(k) = &key {
            self.save_key(key_label, k)?;
            got.key = Some(key_label.to_string());
        }
        Ok(got)
    }

    /// What the store holds for `trustpoint` (missing files are `None`).
    pub fn trustpoint(&self, trustpoint: &str) -> Result<TrustpointFiles, StoreError> {
        check_label(trustpoint)?;
        let d = self.tp_dir(trustpoint);
        let read = |name: &str| -> Result<Option<(PathBuf, Vec<u8>)>, StoreError> {
            let p = d.join(name);
            match fs::read(&p) {
                Ok(b) => Ok(Some((p, b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(&p)(e)),
            }
        };
        let cert = |x: Option<(PathBuf, Vec<u8>)>| -> Result<Option<Cert>, StoreError> {
            x.map(|(p, b)| {
                Cert::from_der(&b).map_err(|e| StoreError::Bad {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
        };
        let crl = read("crl.der")?
            .map(|(p, b)| {
                Crl::from_der(&b).map_err(|reason| StoreError::Bad {
                    path: p.display().to_string(),
                    reason,
                })
            })
            .transpose()?;
        Ok(TrustpointFiles {
            ca: cert(read("ca.der")?)?,
            cert: cert(read("cert.der")?)?,
            crl,
        })
    }
}

/// A private key from PEM text (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
pub fn parse_private_key(text: &str) -> Result<PrivateKey, String> {
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        PrivateKey::from_pkcs1_pem(text).map_err(|e| format!("not a PKCS#1 RSA key ({e})"))
    } else {
        PrivateKey::from_pkcs8_pem(text).map_err(|e| format!("not a PKCS#8 RSA key ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/pki/testdata")).join(name)
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("espgw-pki-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn generate_writes_0600_and_refuses_to_replace() {
        let d = tmp("gen");
        let s = KeyStore::new(&d);
        let pubk = s.generate_rsa("R1KEY", 1024).unwrap();
        assert_eq!(key_bits(&pubk), 1024);
        let path = d.join("keys/R1KEY.key");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(s.load_key("R1KEY").unwrap().to_public_key(), pubk);
        assert_eq!(s.labels(), vec!["R1KEY".to_string()]);
        assert!(matches!(
            s.generate_rsa("R1KEY", 1024),
            Err(StoreError::Exists(..))
        ));
        // Too open: refused, naming the file.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = s.load_key("R1KEY").unwrap_err().to_string();
        assert!(e.contains("R1KEY.key: mode 0644"), "{e}");
        assert!(matches!(
            s.generate_rsa("../x", 1024),
            Err(StoreError::Label(_))
        ));
        assert!(matches!(
            s.generate_rsa("k", 1000),
            Err(StoreError::Modulus(1000))
        ));
        assert!(matches!(s.load_key("nope"), Err(StoreError::NoKey { .. })));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn import_sorts_blocks_and_checks_them() {
        let d = tmp("import");
        let s = KeyStore::new(&d);
        let files = [
            testdata("ca.pem"),
            testdata("r1.pem"),
            testdata("r1.key"),
            testdata("ca.crl"),
        ];
        let got = s.import_pem("LAB", "R1KEY", &files).unwrap();
        assert_eq!(
            got.ca.as_ref().unwrap().subject(),
            "CN=Lab CA,O=espgw lab,C=CH"
        );
        assert_eq!(got.cert.as_ref().unwrap().serial_hex(), "35219C1D59F6446A");
        assert!(got.crl);
        assert_eq!(got.key.as_deref(), Some("R1KEY"));
        let mode = fs::metadata(d.join("keys/R1KEY.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let tp = s.trustpoint("LAB").unwrap();
        assert_eq!(tp.ca.unwrap().der(), got.ca.unwrap().der());
        assert!(tp.crl.is_some());
        let k = s.load_key("R1KEY").unwrap();
        assert_eq!(tp.cert.unwrap().public_key(), k.as_public_key());

        // The wrong key for the certificate.
        let e = s
            .import_pem("LAB", "X", &[testdata("r1.pem"), testdata("r2.key")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not certify the private key"), "{e}");
        // A certificate from another CA than the one given.
        let e = s
            .import_pem(
                "LAB",
                "X",
                &[testdata("ca.pem"), testdata("r2-other-ca.pem")],
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not signed by the CA certificate"), "{e}");
        // A file with no PEM, a broken block: the file's name and the reason.
        let junk = d.join("junk.pem");
        fs::write(&junk, "hello\n").unwrap();
        let e = s
            .import_pem("LAB", "X", std::slice::from_ref(&junk))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: no PEM block (-----BEGIN …-----) in the file",
                junk.display()
            )
        );
        fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = s
            .import_pem("LAB", "X", std::slice::from_ref(&junk))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "{}: block 1 (CERTIFICATE): not a DER X.509 certificate",
                junk.display()
            )),
            "{e}"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
