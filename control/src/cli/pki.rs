//! The key and certificate commands, offline against the key store (they never talk to
//! the daemon, and nothing they do reaches a running configuration):
//!
//! ```text
//! espgw [--key-store DIR] crypto key generate rsa [general-keys] label LABEL modulus BITS
//! espgw [--key-store DIR] crypto pki import TRUSTPOINT pem FILE...
//! espgw [--key-store DIR] show crypto pki certificates [--config FILE]
//! espgw [--key-store DIR] show crypto key mypubkey rsa
//! ```
//! Words may be abbreviated as on IOS when unambiguous (`cry key gen rsa gen lab R1 mod 2048`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use rsa::pkcs8::EncodePublicKey;
use rsa::PublicKey;

use super::command::Io;
use crate::config::pki::ios_hex_lines;
use crate::config::{load_config, InterfaceMap};
use crate::pki::cert::key_bits;
use crate::pki::validate::ios_time;
use crate::pki::{Cert, KeyStore};

/// Whether `word` is an unambiguous abbreviation of `kw` among `all`.
fn is(word: &str, kw: &str, all: &[&str]) -> bool {
    let w = word.to_ascii_lowercase();
    kw.starts_with(&w) && all.iter().filter(|k| k.starts_with(&w)).count() == 1
}

/// `espgw crypto …` (the words after `crypto`).
pub fn crypto_cmd(store: &KeyStore, words: &[String], io: &mut Io<'_>) -> ExitCode {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let r = match w.as_slice() {
        [k, g, r, rest @ ..]
            if is(k, "key", &["key"])
                && is(g, "generate", &["generate"])
                && is(r, "rsa", &["rsa"]) =>
        {
            generate(store, rest, io)
        }
        [p, i, tp, pem, files @ ..]
            if is(p, "pki", &["pki"]) && is(i, "import", &["import"]) && is(pem, "pem", &["pem"]) =>
        {
            import(store, tp, files, io)
        }
        _ => Err(
            "usage: espgw crypto key generate rsa [general-keys] label LABEL modulus BITS\n       espgw crypto pki import TRUSTPOINT pem FILE..."
                .to_string(),
        ),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io.err, "{e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(store: &KeyStore, rest: &[&str], io: &mut Io<'_>) -> Result<(), String> {
    const WORDS: &[&str] = &[
        "general-keys",
        "label",
        "modulus",
        "usage-keys",
        "exportable",
    ];
    let (mut label, mut bits) = (None, None);
    let mut i = 0;
    while i < rest.len() {
        let word = rest[i];
        if is(word, "general-keys", WORDS) {
            i += 1;
        } else if is(word, "label", WORDS) {
            label = Some(rest.get(i + 1).ok_or("% label: a key label is missing")?);
            i += 2;
        } else if is(word, "modulus", WORDS) {
            let v = rest.get(i + 1).ok_or("% modulus: a size is missing")?;
            bits = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("% modulus: {v:?} is not a number of bits"))?,
            );
            i += 2;
        } else if is(word, "usage-keys", WORDS) || is(word, "exportable", WORDS) {
            return Err(format!("% {word} is not supported: espgw keys are general-purpose and stay in the key store"));
        } else {
            return Err(format!(
                "% Invalid input {word:?}: expected general-keys|label|modulus"
            ));
        }
    }
    let label = label.ok_or("% label LABEL is required (espgw has no default key name)")?;
    let bits = bits.ok_or("% modulus BITS is required (IOS would ask; 2048 is a good answer)")?;
    let _ = writeln!(
        io.out,
        "The name for the keys will be: {label}\n\n% The key modulus size is {bits} bits\n% Generating {bits} bit RSA keys, keys will be non-exportable..."
    );
    let t0 = std::time::Instant::now();
    let pubk = store.generate_rsa(label, bits).map_err(|e| e.to_string())?;
    let _ = writeln!(
        io.out,
        "[OK] (elapsed time was {} seconds)\n% {} bit key written to {} (mode 0600)",
        t0.elapsed().as_secs(),
        key_bits(&pubk),
        store
            .dir()
            .join("keys")
            .join(format!("{label}.key"))
            .display()
    );
    Ok(())
}

fn import(store: &KeyStore, tp: &str, files: &[&str], io: &mut Io<'_>) -> Result<(), String> {
    if files.is_empty() {
        return Err("% pem: at least one PEM file is required".into());
    }
    let paths: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    let got = store
        .import_pem(tp, tp, &paths)
        .map_err(|e| e.to_string())?;
    if let Some(ca) = &got.ca {
        let _ = writeln!(
            io.out,
            "% The CA certificate (SN: {}) of {tp} was imported: {}",
            ca.serial_hex(),
            ca.subject()
        );
    }
    if let Some(k) = &got.key {
        let _ = writeln!(
            io.out,
            "% Key pair {k} imported (mode 0600); the trustpoint uses it with `rsakeypair {k}`"
        );
    }
    if let Some(c) = &got.cert {
        let _ = writeln!(
            io.out,
            "% The router certificate (SN: {}) of {tp} was imported: {}",
            c.serial_hex(),
            c.subject()
        );
    }
    if got.crl {
        let _ = writeln!(io.out, "% The CRL of {tp} was imported");
    }
    if got.ca.is_some() || got.cert.is_some() {
        let _ = writeln!(
            io.out,
            "% The certificates as the running configuration holds them:"
        );
        let _ = write!(
            io.out,
            "{}",
            chain_block(tp, got.cert.as_ref(), got.ca.as_ref())
        );
    }
    Ok(())
}

/// `crypto pki certificate chain TP` with its hex blocks, as IOS prints it.
pub fn chain_block(tp: &str, cert: Option<&Cert>, ca: Option<&Cert>) -> String {
    let mut s = format!("crypto pki certificate chain {tp}\n");
    for (c, head) in [(cert, "certificate"), (ca, "certificate ca")] {
        if let Some(c) = c {
            s += &format!(" {head} {}\n", c.serial_hex());
            for l in ios_hex_lines(c.der(), "  ") {
                s += &l;
                s.push('\n');
            }
            s += "  \tquit\n";
        }
    }
    s
}

/// One certificate as `show crypto pki certificates` prints it.
fn show_cert(c: &Cert, ca: bool, trustpoints: &str) -> String {
    let rdns = |dn: String| -> String {
        dn.split(',')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                format!("    {}={v}\n", k.to_ascii_lowercase())
            })
            .collect()
    };
    let (nb, na) = c.validity();
    let now = SystemTime::now();
    let status = if now > na {
        "Expired"
    } else if now < nb {
        "Pending"
    } else {
        "Available"
    };
    let mut s = String::new();
    s += if ca {
        "CA Certificate\n"
    } else {
        "Certificate\n"
    };
    s += &format!("  Status: {status}\n");
    s += &format!("  Certificate Serial Number (hex): {}\n", c.serial_hex());
    s += &format!(
        "  Certificate Usage: {}\n",
        if ca { "Signature" } else { "General Purpose" }
    );
    s += "  Issuer: \n";
    s += &rdns(c.issuer());
    s += "  Subject:\n";
    if !ca {
        if let Some(n) = c.san_dns().first() {
            s += &format!("    Name: {n}\n");
        }
        if let Some(a) = c.san_ipv4().first() {
            s += &format!("    IP Address: {a}\n");
        }
    }
    s += &rdns(c.subject());
    s += "  Validity Date: \n";
    s += &format!("    start date: {}\n", ios_time(nb));
    s += &format!("    end   date: {}\n", ios_time(na));
    s += &format!("  Associated Trustpoints: {trustpoints} \n\n");
    s
}

/// `show crypto pki certificates`: the key store's trustpoints, and the chains of
/// `config` if given (a certificate in both is shown once).
pub fn show_certificates(store: &KeyStore, config: Option<&Path>, io: &mut Io<'_>) -> ExitCode {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut out = String::new();
    let mut add = |c: &Cert, ca: bool, tp: &str, out: &mut String| {
        if !seen.iter().any(|d| d == c.der()) {
            seen.push(c.der().to_vec());
            *out += &show_cert(c, ca, tp);
        }
    };
    if let Some(path) = config {
        let parsed = match load_config(path, &InterfaceMap::default()) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(io.err, "espgw: {e}");
                return ExitCode::FAILURE;
            }
        };
        for chain in &parsed.config.pki.chains {
            for cc in &chain.certificates {
                match Cert::from_der(&cc.der) {
                    Ok(c) => add(&c, cc.ca, &chain.trustpoint, &mut out),
                    Err(e) => {
                        let _ = writeln!(
                            io.err,
                            "espgw: {}:{}: certificate {}: {e}",
                            path.display(),
                            cc.line,
                            cc.serial
                        );
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    let mut tps: Vec<String> = std::fs::read_dir(store.dir().join("trustpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    tps.sort();
    for tp in tps {
        match store.trustpoint(&tp) {
            Ok(f) => {
                if let Some(c) = &f.cert {
                    add(c, false, &tp, &mut out);
                }
                if let Some(c) = &f.ca {
                    add(c, true, &tp, &mut out);
                }
            }
            Err(e) => {
                let _ = writeln!(io.err, "espgw: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = io.out.write_all(out.as_bytes());
    ExitCode::SUCCESS
}

/// One key as `show crypto key mypubkey rsa` prints it (public half only).
fn show_key(label: &str, k: &PublicKey, generated: Option<SystemTime>) -> String {
    let mut s = String::new();
    if let Some(t) = generated {
        s += &format!("% Key pair was generated at: {}\n", ios_time(t));
    }
    s += &format!("Key name: {label}\n");
    s += "Key type: RSA KEYS\n";
    s += " Storage Device: not specified\n";
    s += " Usage: General Purpose Key\n";
    s += " Key is not exportable.\n";
    s += " Key Data:\n";
    let der = k
        .to_public_key_der()
        .map(|d| d.to_vec())
        .unwrap_or_default();
    for l in ios_hex_lines(&der, "  ") {
        s += &l;
        s.push('\n');
    }
    s
}

/// `show crypto key mypubkey rsa`: every key pair of the store, public halves.
pub fn show_mypubkey(store: &KeyStore, io: &mut Io<'_>) -> ExitCode {
    let mut ok = true;
    for label in store.labels() {
        match store.public_key(&label) {
            Ok(k) => {
                let p = store.dir().join("keys").join(format!("{label}.key"));
                let t = std::fs::metadata(p).and_then(|m| m.modified()).ok();
                let _ = io.out.write_all(show_key(&label, &k, t).as_bytes());
            }
            Err(e) => {
                let _ = writeln!(io.err, "espgw: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests;
