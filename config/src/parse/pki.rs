//! The public-key lines: `crypto pki trustpoint`, `crypto pki certificate chain` (with its
//! `certificate [ca] SERIAL` hex blocks ended by `quit`), `crypto pki certificate map`,
//! `crypto key pubkey-chain rsa` (`addressed-key` / `named-key`, `key-string` … `quit`),
//! and `crypto isakmp identity`. The model is in [`crate::pki`].

use super::*;
use crate::pki::*;

/// Where inside a public-key block the parser is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PkiMode {
    /// `crypto pki trustpoint` (index into `trustpoints`).
    Trustpoint(usize),
    /// `crypto pki certificate chain` (index into `chains`); `open`: the certificate whose
    /// hex lines are being read; `skip`: a hex line was in error, the rest of its block is
    /// skipped (the certificate is dropped, the error said why).
    Chain {
        chain: usize,
        open: Option<usize>,
        skip: bool,
    },
    /// `crypto pki certificate map` (index into `certificate_maps`).
    CertMap(usize),
    /// `crypto key pubkey-chain rsa`; `key`: the key being described, `hex`: whether its
    /// `key-string` block is open.
    PubkeyChain { key: Option<usize>, hex: bool },
}

/// A token made only of hex digits (a line of a hex block).
fn is_hex_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Commands of the public-key sub-modes, recognised on unindented lines too.
pub(super) fn is_submode_command(mode: &PkiMode, first: &str) -> bool {
    match mode {
        PkiMode::Trustpoint(_) => matches!(
            first,
            "enrollment"
                | "subject-name"
                | "revocation-check"
                | "rsakeypair"
                | "fqdn"
                | "ip-address"
                | "serial-number"
                | "subject-alt-name"
        ),
        PkiMode::Chain { open, skip, .. } => {
            matches!(first, "certificate" | "quit")
                || ((open.is_some() || *skip) && is_hex_token(first))
        }
        PkiMode::CertMap(_) => {
            matches!(first, "subject-name" | "issuer-name" | "alt-subject-name")
        }
        PkiMode::PubkeyChain { hex, .. } => {
            matches!(
                first,
                "addressed-key" | "named-key" | "address" | "key-string" | "quit"
            ) || (*hex && is_hex_token(first))
        }
    }
}

/// Whether a global line opens a public-key block.
pub(super) fn opens_block(l: &[&str]) -> bool {
    matches!(
        l,
        ["crypto", "pki", "trustpoint", ..]
            | ["crypto", "pki", "certificate", ..]
            | ["crypto", "key", "pubkey-chain", ..]
    )
}

/// Decodes the hex tokens of one line of a hex block.
fn hex_line(t: &mut Toks<'_>) -> R<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(tok) = t.peek() {
        if !is_hex_token(tok) || tok.len() % 2 != 0 {
            return Err(t.syntax("hex digits in pairs"));
        }
        for pair in tok.as_bytes().chunks(2) {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            out.push(u8::from_str_radix(s, 16).map_err(|_| t.syntax("hex digits"))?);
        }
        t.pos += 1;
    }
    Ok(out)
}

/// `encryption` | `signature` | nothing.
fn key_usage(t: &mut Toks<'_>) -> R<KeyUsage> {
    let u = if t.peek().is_none() {
        KeyUsage::General
    } else {
        match t.choice(&["encryption", "signature"], "encryption|signature")? {
            0 => KeyUsage::Encryption,
            _ => KeyUsage::Signature,
        }
    };
    t.end()?;
    Ok(u)
}

/// A certificate-map value as IOS compares it: lower case, no blanks around `=` and `,`.
fn normalize_name(s: &str) -> String {
    let mut out = String::new();
    for part in s.split(',') {
        if !out.is_empty() {
            out.push(',');
        }
        let norm: Vec<String> = part
            .split('=')
            .map(|x| x.trim().to_ascii_lowercase())
            .collect();
        out.push_str(&norm.join("="));
    }
    out
}

impl Parser<'_> {
    /// `crypto pki …` and `crypto key …` (the cursor is on `pki` or `key`).
    pub(super) fn pki_global(&mut self, no: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        if t.eat("key") {
            t.cmd("crypto key");
            if t.eat("pubkey-chain") {
                t.cmd("crypto key pubkey-chain");
                t.expect("rsa")?;
                t.end()?;
                self.mode = Mode::Pki(PkiMode::PubkeyChain {
                    key: None,
                    hex: false,
                });
                return Ok(());
            }
            if t.peek_is("generate") || t.peek_is("zeroize") || t.peek_is("import") {
                return Err(ConfigErrorKind::Invalid {
                    command: format!("crypto key {}", t.peek().unwrap_or("")),
                    reason: "an exec command, not configuration: run `espgw crypto key generate rsa …` (keys live in the key store, never in the configuration)".into(),
                });
            }
            self.foreign(no, t, text);
            return Ok(());
        }
        t.expect("pki")?;
        t.cmd("crypto pki");
        if t.eat("trustpoint") {
            t.cmd("crypto pki trustpoint");
            let name = t.next("a trustpoint name")?;
            t.end()?;
            let tps = &mut self.cfg.pki.trustpoints;
            let idx = match tps.iter().position(|tp| tp.name == name) {
                Some(i) => i,
                None => {
                    tps.push(Trustpoint::new(name, no));
                    tps.len() - 1
                }
            };
            self.mode = Mode::Pki(PkiMode::Trustpoint(idx));
            Ok(())
        } else if t.eat("certificate") {
            if t.eat("chain") {
                t.cmd("crypto pki certificate chain");
                let name = t.next("a trustpoint name")?.to_string();
                t.end()?;
                let chains = &mut self.cfg.pki.chains;
                let idx = match chains.iter().position(|c| c.trustpoint == name) {
                    Some(i) => i,
                    None => {
                        chains.push(CertificateChain {
                            trustpoint: name,
                            certificates: Vec::new(),
                            line: no,
                        });
                        chains.len() - 1
                    }
                };
                self.mode = Mode::Pki(PkiMode::Chain {
                    chain: idx,
                    open: None,
                    skip: false,
                });
                Ok(())
            } else if t.eat("map") {
                t.cmd("crypto pki certificate map");
                let name = t.next("a map name")?.to_string();
                let seq = t.number("a sequence number 1-65535", 1, 65535)? as u32;
                t.end()?;
                let maps = &mut self.cfg.pki.certificate_maps;
                let idx = match maps.iter().position(|m| m.name == name && m.seq == seq) {
                    Some(i) => i,
                    None => {
                        maps.push(CertificateMap {
                            name,
                            seq,
                            rules: Vec::new(),
                            line: no,
                        });
                        maps.len() - 1
                    }
                };
                self.mode = Mode::Pki(PkiMode::CertMap(idx));
                Ok(())
            } else {
                Err(t.syntax("chain|map"))
            }
        } else {
            self.foreign(no, t, text);
            Ok(())
        }
    }

    /// `crypto isakmp identity address|dn|hostname` (the cursor is after `identity`).
    pub(super) fn isakmp_identity(&mut self, t: &mut Toks<'_>) -> R<()> {
        let id = match t.choice(&["address", "dn", "hostname"], "address|dn|hostname")? {
            0 => IsakmpIdentity::Address,
            1 => IsakmpIdentity::Dn,
            _ => IsakmpIdentity::Hostname,
        };
        t.end()?;
        self.cfg.pki.identity = id;
        Ok(())
    }

    /// A line inside a public-key block.
    pub(super) fn pki_sub_line(
        &mut self,
        no: usize,
        mode: &PkiMode,
        t: &mut Toks<'_>,
        text: &str,
    ) -> R<()> {
        match mode {
            PkiMode::Trustpoint(idx) => self.trustpoint_line(no, *idx, t, text),
            PkiMode::Chain { chain, open, skip } => self.chain_line(no, *chain, *open, *skip, t),
            PkiMode::CertMap(idx) => self.cert_map_line(*idx, t),
            PkiMode::PubkeyChain { key, hex } => self.pubkey_line(no, *key, *hex, t),
        }
    }

    fn trustpoint_line(&mut self, no: usize, idx: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        let first = t.peek().unwrap_or("").to_ascii_lowercase();
        t.cmd(first.clone());
        t.pos += 1;
        let tp = &mut self.cfg.pki.trustpoints[idx];
        match first.as_str() {
            "enrollment" => {
                if t.eat("terminal") {
                    t.eat("pem");
                    t.end()?;
                    tp.enrollment_terminal = true;
                    Ok(())
                } else if t.peek().is_some() {
                    Err(ConfigErrorKind::Unsupported {
                        command: "enrollment".into(),
                        what: format!(
                            "enrollment {} (espgw enrolls by terminal: `espgw crypto pki import`)",
                            t.rest()
                        ),
                    })
                } else {
                    Err(t.syntax("terminal"))
                }
            }
            "subject-name" => {
                let s = t.rest();
                if s.is_empty() {
                    return Err(t.syntax("an X.500 name"));
                }
                tp.subject_name = Some(s);
                Ok(())
            }
            "revocation-check" => {
                let r = match t.choice(&["none", "crl"], "none|crl")? {
                    0 => RevocationCheck::None,
                    _ => RevocationCheck::Crl,
                };
                t.end()?;
                tp.revocation_check = r;
                Ok(())
            }
            "rsakeypair" => {
                let label = t.next("a key label")?.to_string();
                if t.peek().is_some() {
                    t.number("a modulus size 512-4096", 512, 4096)?;
                }
                t.end()?;
                tp.rsakeypair = Some(label);
                Ok(())
            }
            "fqdn" => {
                let name = t.next("a fully qualified domain name")?.to_string();
                t.end()?;
                tp.fqdn = Some(name);
                Ok(())
            }
            "ip-address" => {
                let a = t.ipv4("an IPv4 address")?;
                t.end()?;
                tp.ip_address = Some(a);
                Ok(())
            }
            _ => {
                self.warn(no, format!("skipped (not used by espgw): {text}"));
                Ok(())
            }
        }
    }

    fn chain_line(
        &mut self,
        no: usize,
        chain: usize,
        open: Option<usize>,
        skip: bool,
        t: &mut Toks<'_>,
    ) -> R<()> {
        let closed = Mode::Pki(PkiMode::Chain {
            chain,
            open: None,
            skip: false,
        });
        let c = &mut self.cfg.pki.chains[chain];
        if t.eat("quit") {
            t.cmd("quit");
            t.end()?;
            self.mode = closed;
            return Ok(());
        }
        if t.eat("certificate") {
            t.cmd("certificate");
            let ca = t.eat("ca");
            let serial = t.next("a serial number (hex)")?;
            if !is_hex_token(serial) {
                t.pos -= 1;
                return Err(t.syntax("a serial number (hex)"));
            }
            t.end()?;
            c.certificates.push(ChainCertificate {
                serial: serial.to_ascii_uppercase(),
                ca,
                der: Vec::new(),
                line: no,
            });
            let open = Some(c.certificates.len() - 1);
            self.mode = Mode::Pki(PkiMode::Chain {
                chain,
                open,
                skip: false,
            });
            return Ok(());
        }
        if skip && t.peek().is_some_and(is_hex_token) {
            return Ok(());
        }
        let Some(i) = open else {
            t.cmd(format!("crypto pki certificate chain {}", c.trustpoint));
            return Err(t.syntax("certificate [ca] SERIAL"));
        };
        let cert = &mut c.certificates[i];
        t.cmd(format!(
            "certificate {}{}",
            if cert.ca { "ca " } else { "" },
            cert.serial
        ));
        match hex_line(t) {
            Ok(bytes) => {
                c.certificates[i].der.extend_from_slice(&bytes);
                Ok(())
            }
            Err(e) => {
                c.certificates.remove(i);
                self.mode = Mode::Pki(PkiMode::Chain {
                    chain,
                    open: None,
                    skip: true,
                });
                Err(e)
            }
        }
    }

    fn cert_map_line(&mut self, idx: usize, t: &mut Toks<'_>) -> R<()> {
        let field = t.choice(
            &["subject-name", "issuer-name", "alt-subject-name"],
            "subject-name|issuer-name|alt-subject-name",
        )?;
        let field = [
            CertField::SubjectName,
            CertField::IssuerName,
            CertField::AltSubjectName,
        ][field];
        t.cmd(["subject-name", "issuer-name", "alt-subject-name"][field as usize]);
        let op = [
            CertMatchOp::Eq,
            CertMatchOp::Ne,
            CertMatchOp::Co,
            CertMatchOp::Nc,
        ][t.choice(&["eq", "ne", "co", "nc"], "eq|ne|co|nc")?];
        let value = t.rest();
        if value.is_empty() {
            return Err(t.syntax("a value to compare"));
        }
        self.cfg.pki.certificate_maps[idx].rules.push(CertMapRule {
            field,
            op,
            value: normalize_name(&value),
        });
        Ok(())
    }

    fn pubkey_line(&mut self, no: usize, key: Option<usize>, hex: bool, t: &mut Toks<'_>) -> R<()> {
        let first = t.peek().unwrap_or("").to_ascii_lowercase();
        let set = |p: &mut Self, key, hex| p.mode = Mode::Pki(PkiMode::PubkeyChain { key, hex });
        match first.as_str() {
            "quit" => {
                t.cmd("quit");
                t.pos += 1;
                t.end()?;
                set(self, key, false);
                Ok(())
            }
            "addressed-key" | "named-key" => {
                t.cmd(first.clone());
                t.pos += 1;
                let name = if first == "addressed-key" {
                    PubkeyName::Addressed(t.ipv4("an IPv4 address")?)
                } else {
                    PubkeyName::Named(t.next("a key name")?.to_string())
                };
                let usage = key_usage(t)?;
                let keys = &mut self.cfg.pki.pubkeys;
                keys.retain(|k| !(k.name == name && k.usage == usage));
                keys.push(PeerPublicKey {
                    name,
                    usage,
                    address: None,
                    der: Vec::new(),
                    line: no,
                });
                let k = Some(keys.len() - 1);
                set(self, k, false);
                Ok(())
            }
            "address" if !hex => {
                t.cmd("address");
                t.pos += 1;
                let a = t.ipv4("an IPv4 address")?;
                t.end()?;
                let Some(k) = key else {
                    return Err(t.syntax("addressed-key|named-key first"));
                };
                self.cfg.pki.pubkeys[k].address = Some(a);
                Ok(())
            }
            "key-string" => {
                t.cmd("key-string");
                t.pos += 1;
                t.end()?;
                let Some(k) = key else {
                    return Err(t.syntax("addressed-key|named-key first"));
                };
                self.cfg.pki.pubkeys[k].der.clear();
                set(self, key, true);
                Ok(())
            }
            _ if hex => {
                t.cmd("key-string");
                let Some(k) = key else {
                    return Ok(());
                };
                match hex_line(t) {
                    Ok(bytes) => {
                        self.cfg.pki.pubkeys[k].der.extend_from_slice(&bytes);
                        Ok(())
                    }
                    Err(e) => {
                        // The key is dropped; the rest of its block is skipped.
                        self.cfg.pki.pubkeys.remove(k);
                        set(self, None, true);
                        Err(e)
                    }
                }
            }
            _ => {
                t.cmd("crypto key pubkey-chain rsa");
                Err(t.syntax("addressed-key|named-key|address|key-string|quit"))
            }
        }
    }

    /// After the last line: every chain's trustpoint is defined, every certificate and key
    /// block is one DER SEQUENCE, a trustpoint has at most one CA and one own certificate.
    pub(super) fn pki_finish(&mut self) {
        let mut errs = Vec::new();
        let pki = &self.cfg.pki;
        for c in &pki.chains {
            if pki.trustpoint(&c.trustpoint).is_none() {
                errs.push(ConfigError {
                    line: c.line,
                    kind: ConfigErrorKind::Unresolved {
                        command: "crypto pki certificate chain".into(),
                        what: "trustpoint",
                        name: c.trustpoint.clone(),
                    },
                });
            }
            for (ca, what) in [(true, "CA certificate"), (false, "router certificate")] {
                if let Some(second) = c.certificates.iter().filter(|x| x.ca == ca).nth(1) {
                    errs.push(ConfigError {
                        line: second.line,
                        kind: ConfigErrorKind::Invalid {
                            command: "certificate".into(),
                            reason: format!("trustpoint {} already has a {what}", c.trustpoint),
                        },
                    });
                }
            }
            for cert in &c.certificates {
                if let Err(reason) = check_der_sequence(&cert.der) {
                    errs.push(ConfigError {
                        line: cert.line,
                        kind: ConfigErrorKind::Invalid {
                            command: format!(
                                "certificate {}{}",
                                if cert.ca { "ca " } else { "" },
                                cert.serial
                            ),
                            reason,
                        },
                    });
                }
            }
        }
        for k in &pki.pubkeys {
            let name = match &k.name {
                PubkeyName::Addressed(a) => format!("addressed-key {a}"),
                PubkeyName::Named(n) => format!("named-key {n}"),
            };
            if let PubkeyName::Named(_) = k.name {
                if k.address.is_none() {
                    self.warnings.push(ConfigWarning {
                        line: k.line,
                        message: format!(
                            "{name} has no `address`: espgw finds rsa-encr peers' keys by address"
                        ),
                    });
                }
            }
            if let Err(reason) = check_der_sequence(&k.der) {
                errs.push(ConfigError {
                    line: k.line,
                    kind: ConfigErrorKind::Invalid {
                        command: name,
                        reason: format!("key-string: {reason}"),
                    },
                });
            }
        }
        self.errors.extend(errs);
    }
}

#[cfg(test)]
mod tests;
