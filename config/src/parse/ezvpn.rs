//! The Easy VPN client lines of the parser: `crypto ipsec client ezvpn NAME` with its
//! sub-lines (`connect auto|manual`, `group G key K`, `mode network-extension|client`,
//! `peer A`, `username U password P`), and `crypto ipsec client ezvpn NAME [inside]` under
//! an interface. IOS's other sub-lines (`xauth userid mode`, `acl`, `backup`, …) are
//! skipped with a warning.

use super::*;

/// Sub-commands of `crypto ipsec client ezvpn` (for unindented pastes).
pub(super) const EZVPN_COMMANDS: &[&str] = &[
    "connect",
    "group",
    "mode",
    "peer",
    "username",
    "xauth",
    "acl",
    "backup",
    "flow",
    "local-address",
    "nat",
];

impl Parser<'_> {
    /// `crypto ipsec client ezvpn NAME` opens the block (`t` after `client`).
    pub(super) fn ezvpn_head(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        t.cmd("crypto ipsec client");
        t.expect("ezvpn")?;
        t.cmd("crypto ipsec client ezvpn");
        let name = t.next("a tunnel name")?.to_string();
        t.end()?;
        self.cfg
            .ezvpn_clients
            .entry(name.clone())
            .or_insert_with(|| EzvpnClient::new(&name, no));
        self.mode = Mode::Ezvpn(name);
        Ok(())
    }

    /// A sub-line of `crypto ipsec client ezvpn NAME`.
    pub(super) fn ezvpn_line(
        &mut self,
        no: usize,
        name: &str,
        t: &mut Toks<'_>,
        text: &str,
    ) -> R<()> {
        let negate = t.eat("no");
        let Some(kw) = t.peek().map(str::to_ascii_lowercase) else {
            return Ok(());
        };
        t.pos += 1;
        let c = self
            .cfg
            .ezvpn_clients
            .get_mut(name)
            .expect("ezvpn client created with its mode");
        match kw.as_str() {
            "connect" => {
                t.cmd("connect");
                c.connect = if negate {
                    EzvpnConnect::Auto
                } else {
                    match t.choice(&["auto", "manual", "acl"], "auto|manual")? {
                        0 => EzvpnConnect::Auto,
                        1 => EzvpnConnect::Manual,
                        _ => {
                            return Err(ConfigErrorKind::Unsupported {
                                command: "connect".into(),
                                what: "connect acl (traffic-triggered ezvpn)".into(),
                            })
                        }
                    }
                };
                t.end()
            }
            "group" => {
                t.cmd("group");
                if negate {
                    c.group = None;
                    return Ok(());
                }
                let g = t.next("a group name")?.to_string();
                t.expect("key")?;
                if t.peek() == Some("0") && t.toks.len() > t.pos + 1 {
                    t.pos += 1;
                }
                if t.peek().is_none() {
                    return Err(t.syntax("a group key"));
                }
                let key = t.rest();
                c.group = Some((g, PresharedKey::new(key.into_bytes())));
                Ok(())
            }
            "mode" => {
                t.cmd("mode");
                let m = if negate {
                    EzvpnMode::NetworkExtension
                } else {
                    match t.choice(
                        &["network-extension", "client", "network-plus"],
                        "client|network-extension|network-plus",
                    )? {
                        0 => EzvpnMode::NetworkExtension,
                        1 => {
                            return Err(ConfigErrorKind::Unsupported {
                                command: "mode".into(),
                                what: "mode client (needs NAT of the inside network; use mode network-extension)".into(),
                            })
                        }
                        _ => {
                            return Err(ConfigErrorKind::Unsupported {
                                command: "mode".into(),
                                what: "mode network-plus".into(),
                            })
                        }
                    }
                };
                t.end()?;
                c.mode = m;
                Ok(())
            }
            "peer" => {
                t.cmd("peer");
                let a = t.ipv4("an IPv4 address")?;
                if t.eat("default") {
                    // `peer A default`: the primary peer, listed first.
                }
                t.end()?;
                if negate {
                    c.peers.retain(|p| *p != a);
                } else if !c.peers.contains(&a) {
                    c.peers.push(a);
                }
                Ok(())
            }
            "username" => {
                t.cmd("username");
                if negate {
                    c.xauth = None;
                    return Ok(());
                }
                let u = t.next("a user name")?.to_string();
                t.expect("password")?;
                if t.eat("7") {
                    return Err(ConfigErrorKind::Unsupported {
                        command: "username".into(),
                        what: "a type 7 password (write it in clear)".into(),
                    });
                }
                if t.peek() == Some("0") && t.toks.len() > t.pos + 1 {
                    t.pos += 1;
                }
                if t.peek().is_none() {
                    return Err(t.syntax("a password"));
                }
                let p = t.rest();
                c.xauth = Some((u, PresharedKey::new(p.into_bytes())));
                Ok(())
            }
            _ => {
                self.warn(no, format!("skipped (not used by espgw): {text}"));
                Ok(())
            }
        }
    }

    /// `crypto ipsec client ezvpn NAME [inside]` under interface `idx` (`t` after `ezvpn`).
    pub(super) fn interface_ezvpn(
        &mut self,
        no: usize,
        idx: usize,
        negate: bool,
        t: &mut Toks<'_>,
    ) -> R<()> {
        t.cmd("crypto ipsec client ezvpn");
        let name = t.next("a tunnel name")?.to_string();
        let inside = t.eat("inside");
        if !inside {
            t.eat("outside");
        }
        t.end()?;
        let iface = self.cfg.interfaces[idx].name.clone();
        self.ezvpn_iface_refs
            .push((no, name.clone(), iface, inside, negate));
        Ok(())
    }

    /// After the last line: interfaces to their clients, and what a client must have.
    pub(super) fn ezvpn_finish(&mut self) {
        for (no, name, iface, inside, negate) in std::mem::take(&mut self.ezvpn_iface_refs) {
            let Some(c) = self.cfg.ezvpn_clients.get_mut(&name) else {
                self.error(
                    no,
                    ConfigErrorKind::Unresolved {
                        command: "crypto ipsec client ezvpn".into(),
                        what: "ezvpn client",
                        name,
                    },
                );
                continue;
            };
            let list = if inside {
                &mut c.inside
            } else {
                &mut c.outside
            };
            list.retain(|i| !i.eq_ignore_ascii_case(&iface));
            if !negate {
                list.push(iface);
            }
        }
        let mut errs = Vec::new();
        for c in self.cfg.ezvpn_clients.values() {
            let what = format!("crypto ipsec client ezvpn {}", c.name);
            let mut missing = Vec::new();
            if c.group.is_none() {
                missing.push("group G key K");
            }
            if c.peers.is_empty() {
                missing.push("peer A");
            }
            if !missing.is_empty() {
                errs.push((
                    c.line,
                    ConfigErrorKind::Invalid {
                        command: what.clone(),
                        reason: format!("needs {}", missing.join(" and ")),
                    },
                ));
            }
            if c.outside.len() > 1 {
                errs.push((
                    c.line,
                    ConfigErrorKind::Invalid {
                        command: what.clone(),
                        reason: format!(
                            "applied to more than one outside interface ({})",
                            c.outside.join(", ")
                        ),
                    },
                ));
            }
            if c.mode == EzvpnMode::NetworkExtension && !c.outside.is_empty() && c.inside.is_empty()
            {
                self.warnings.push(ConfigWarning {
                    line: c.line,
                    message: format!("{what}: no inside interface; network-extension mode has no network to protect"),
                });
            }
        }
        for (l, k) in errs {
            self.error(l, k);
        }
    }
}
