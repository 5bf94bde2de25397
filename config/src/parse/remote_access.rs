//! The remote-access lines of the parser (Easy VPN server): `aaa …`, `username …`,
//! `ip local pool …`, `crypto isakmp client configuration group G` and its sub-lines
//! (with the delimited, possibly multi-line `banner`), `crypto isakmp xauth timeout`,
//! `crypto dynamic-map NAME SEQ`, `crypto map NAME client …`, `crypto map NAME isakmp
//! authorization list …` and `crypto map NAME SEQ ipsec-isakmp dynamic DYN`.
//!
//! IOS accepts the `aaa authentication|authorization` lines only after `aaa new-model`;
//! so does espgw. The only AAA method espgw has is `local` (the `username` lines).

use super::*;

/// Sub-commands of `crypto isakmp client configuration group` (for unindented pastes).
pub(super) const GROUP_COMMANDS: &[&str] = &[
    "key",
    "pool",
    "dns",
    "wins",
    "domain",
    "acl",
    "pfs",
    "save-password",
    "banner",
    "max-users",
    "netmask",
    "include-local-lan",
    "firewall",
    "backup-gateway",
    "split-dns",
    "max-logins",
];

/// A group banner being read: the group and the delimiter that ends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BannerInProgress {
    pub group: String,
    pub delim: char,
    pub text: String,
}

impl Parser<'_> {
    // ----------------------------------------------------------------------- AAA, users

    /// `aaa new-model`, `aaa authentication login L local`, `aaa authorization network L
    /// local`; other `aaa` lines are skipped with a warning.
    pub(super) fn aaa_line(&mut self, no: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        t.pos = 1;
        if t.eat("new-model") {
            t.cmd("aaa new-model");
            t.end()?;
            self.cfg.remote_access.aaa_new_model = true;
            return Ok(());
        }
        let (login, cmd) = if t.peek_is("authentication") && is_kw(t.toks.get(2), "login") {
            (true, "aaa authentication login")
        } else if t.peek_is("authorization") && is_kw(t.toks.get(2), "network") {
            (false, "aaa authorization network")
        } else {
            self.warn(no, format!("skipped (not used by espgw): {text}"));
            return Ok(());
        };
        t.pos = 3;
        t.cmd(cmd);
        if !self.cfg.remote_access.aaa_new_model {
            return Err(ConfigErrorKind::Invalid {
                command: cmd.into(),
                reason: "needs `aaa new-model` first".into(),
            });
        }
        let name = t.next("a list name or default")?.to_string();
        let mut methods = Vec::new();
        while let Some(m) = t.peek() {
            if m.eq_ignore_ascii_case("local") {
                t.pos += 1;
                methods.push(AaaMethod::Local);
            } else if [
                "group",
                "enable",
                "line",
                "none",
                "local-case",
                "if-authenticated",
            ]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(m))
            {
                return Err(ConfigErrorKind::Unsupported {
                    command: cmd.into(),
                    what: format!("method {m} (espgw authenticates against `local` only)"),
                });
            } else {
                return Err(t.syntax("local"));
            }
        }
        if methods.is_empty() {
            return Err(t.syntax("local"));
        }
        let list = AaaList {
            name: name.clone(),
            methods,
            line: no,
        };
        let ra = &mut self.cfg.remote_access;
        if login {
            ra.login_lists.insert(name, list);
        } else {
            ra.network_lists.insert(name, list);
        }
        Ok(())
    }

    /// `username NAME [privilege N] password [0] P | secret [0|5] S`.
    pub(super) fn username_line(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        t.pos = 1;
        t.cmd("username");
        let name = t.next("a user name")?.to_string();
        let mut privilege = None;
        if t.eat("privilege") {
            privilege = Some(t.number("a privilege level 0-15", 0, 15)? as u8);
        }
        let password = match t.choice(&["password", "secret"], "password|secret")? {
            0 => {
                if t.eat("7") {
                    return Err(ConfigErrorKind::Unsupported {
                        command: t.command.clone(),
                        what: "a type 7 password (write it in clear or as `secret 5`)".into(),
                    });
                }
                if t.peek() == Some("0") && t.toks.len() > t.pos + 1 {
                    t.pos += 1;
                }
                UserPassword::Clear(PresharedKey::new(t.rest().into_bytes()))
            }
            _ => {
                let ty = if t
                    .peek()
                    .is_some_and(|x| x.len() == 1 && t.toks.len() > t.pos + 1)
                {
                    t.next("0|5|8|9")?
                } else {
                    "0"
                };
                match ty {
                    "0" => UserPassword::Clear(PresharedKey::new(t.rest().into_bytes())),
                    "5" => {
                        let h = t.next("an MD5-crypt hash ($1$…)")?;
                        if !h.starts_with("$1$") || h.matches('$').count() != 3 {
                            t.pos -= 1;
                            return Err(t.syntax("an MD5-crypt hash ($1$SALT$HASH)"));
                        }
                        t.end()?;
                        UserPassword::Md5Crypt(h.to_string())
                    }
                    "8" | "9" | "4" => {
                        return Err(ConfigErrorKind::Unsupported {
                            command: t.command.clone(),
                            what: format!("a type {ty} secret (use type 5 or a clear secret)"),
                        })
                    }
                    _ => {
                        t.pos -= 1;
                        return Err(t.syntax("0|5"));
                    }
                }
            }
        };
        if matches!(&password, UserPassword::Clear(k) if k.is_empty()) {
            return Err(t.syntax("a password"));
        }
        self.cfg.remote_access.users.insert(
            name.clone(),
            LocalUser {
                name,
                password,
                privilege,
                line: no,
            },
        );
        Ok(())
    }

    /// `ip local pool NAME FIRST [LAST]`.
    pub(super) fn ip_local_pool(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        t.pos = 3;
        t.cmd("ip local pool");
        let name = t.next("a pool name")?.to_string();
        let first = t.ipv4("the first address")?;
        let last = if t.peek().is_some() {
            t.ipv4("the last address")?
        } else {
            first
        };
        t.end()?;
        if u32::from(last) < u32::from(first) {
            return Err(ConfigErrorKind::Invalid {
                command: t.command.clone(),
                reason: format!("{first} {last}: the last address comes before the first"),
            });
        }
        if u32::from(last) - u32::from(first) >= 1 << 20 {
            return Err(ConfigErrorKind::Invalid {
                command: t.command.clone(),
                reason: format!("{first} {last}: more than 1048576 addresses in one range"),
            });
        }
        let ra = &mut self.cfg.remote_access;
        for p in ra.pools.values() {
            for &(a, b) in &p.ranges {
                if u32::from(first) <= u32::from(b) && u32::from(a) <= u32::from(last) {
                    return Err(ConfigErrorKind::Invalid {
                        command: t.command.clone(),
                        reason: format!("{first} {last} overlaps pool {} ({a} {b})", p.name),
                    });
                }
            }
        }
        ra.pools
            .entry(name.clone())
            .or_insert_with(|| LocalPool {
                name,
                ranges: Vec::new(),
                line: no,
            })
            .ranges
            .push((first, last));
        Ok(())
    }

    // ----------------------------------------------------------------------- crypto isakmp

    /// `crypto isakmp client configuration group NAME` (t after `client`).
    pub(super) fn client_group_head(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        t.cmd("crypto isakmp client configuration group");
        t.expect("configuration")?;
        t.expect("group")?;
        let name = t.next("a group name")?.to_string();
        t.end()?;
        self.cfg
            .remote_access
            .groups
            .entry(name.clone())
            .or_insert_with(|| ClientGroup::new(&name, no));
        self.mode = Mode::ClientGroup(name);
        Ok(())
    }

    /// `crypto isakmp xauth timeout S` (t after `xauth`).
    pub(super) fn xauth_line(&mut self, no: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        if !t.eat("timeout") {
            self.warn(no, format!("skipped (not used by espgw): {text}"));
            return Ok(());
        }
        t.cmd("crypto isakmp xauth timeout");
        let s = t.number("seconds 5-90", 5, 90)? as u32;
        t.end()?;
        self.cfg.remote_access.xauth_timeout_secs = s;
        Ok(())
    }

    /// A sub-line of `crypto isakmp client configuration group NAME`.
    pub(super) fn client_group_line(
        &mut self,
        no: usize,
        group: &str,
        t: &mut Toks<'_>,
        text: &str,
    ) -> R<()> {
        let negate = t.eat("no");
        let kw = t.peek().unwrap_or("").to_ascii_lowercase();
        t.pos += 1;
        t.cmd(kw.clone());
        let g = self
            .cfg
            .remote_access
            .groups
            .get_mut(group)
            .expect("group created with its mode");
        match kw.as_str() {
            "key" => {
                if negate {
                    g.key = None;
                    return Ok(());
                }
                let mut k = t.next("a key")?;
                if (k == "0" || k == "6") && t.peek().is_some() {
                    if k == "6" {
                        return Err(ConfigErrorKind::Unsupported {
                            command: t.command.clone(),
                            what: "an encrypted (type 6) key".into(),
                        });
                    }
                    k = t.next("a key")?;
                }
                t.end()?;
                g.key = Some(PresharedKey::new(k.as_bytes()));
            }
            "pool" => {
                if negate {
                    g.pool = None;
                    return Ok(());
                }
                let name = t.next("a pool name")?.to_string();
                t.end()?;
                g.pool = Some(name.clone());
                self.group_refs.push(Reference {
                    line: no,
                    command: "pool",
                    what: "ip local pool",
                    name,
                });
            }
            "dns" | "wins" => {
                let mut v = Vec::new();
                while t.peek().is_some() {
                    v.push(t.ipv4("an IPv4 address")?);
                }
                if v.is_empty() && !negate {
                    return Err(t.syntax("an IPv4 address"));
                }
                if v.len() > 2 {
                    return Err(ConfigErrorKind::Invalid {
                        command: t.command.clone(),
                        reason: format!("at most 2 servers, got {}", v.len()),
                    });
                }
                let v = if negate { Vec::new() } else { v };
                if kw == "dns" {
                    g.dns = v;
                } else {
                    g.wins = v;
                }
            }
            "domain" => {
                if negate {
                    g.domain = None;
                    return Ok(());
                }
                let d = t.next("a domain name")?.to_string();
                t.end()?;
                g.domain = Some(d);
            }
            "acl" => {
                if negate {
                    g.acl = None;
                    return Ok(());
                }
                let name = t.next("an access list number or name")?.to_string();
                t.end()?;
                g.acl = Some(name.clone());
                self.acl_refs.push(Reference {
                    line: no,
                    command: "acl",
                    what: "access list",
                    name,
                });
            }
            "pfs" => {
                t.end()?;
                g.pfs = !negate;
            }
            "save-password" => {
                t.end()?;
                g.save_password = !negate;
            }
            "max-users" => {
                if negate {
                    g.max_users = None;
                    return Ok(());
                }
                let n = t.number("a number of users 1-5000", 1, 5000)? as u32;
                t.end()?;
                g.max_users = Some(n);
            }
            "banner" => {
                if negate {
                    g.banner = None;
                    return Ok(());
                }
                return self.banner_start(group, t);
            }
            _ => {
                self.warn(no, format!("skipped (not used by espgw): {text}"));
            }
        }
        Ok(())
    }

    /// `banner c TEXT c`, the delimiter `c` being the first character after `banner`
    /// (`^C` as IOS shows it counts as one delimiter); the text may span lines.
    fn banner_start(&mut self, group: &str, t: &mut Toks<'_>) -> R<()> {
        let rest = t.rest();
        if rest.is_empty() {
            return Err(t.syntax("a delimiter and the banner text"));
        }
        let (delim, body) = split_delim(&rest);
        let b = BannerInProgress {
            group: group.to_string(),
            delim,
            text: String::new(),
        };
        self.banner_text(b, body);
        Ok(())
    }

    /// Adds `line` to the banner; stores it when the delimiter ends it, otherwise keeps
    /// reading (the parser's mode).
    fn banner_text(&mut self, mut b: BannerInProgress, line: &str) {
        let end = find_delim(line, b.delim);
        let (part, done) = match end {
            Some(i) => (&line[..i], true),
            None => (line, false),
        };
        if !b.text.is_empty() || !part.is_empty() {
            if !b.text.is_empty() {
                b.text.push('\n');
            }
            b.text.push_str(part.trim_end());
        }
        if done {
            if let Some(g) = self.cfg.remote_access.groups.get_mut(&b.group) {
                g.banner = Some(b.text.trim().to_string());
            }
            self.mode = Mode::ClientGroup(b.group);
        } else {
            self.mode = Mode::Banner(b);
        }
    }

    /// A raw line while a banner is open.
    pub(super) fn banner_line(&mut self, b: BannerInProgress, raw: &str) {
        self.banner_text(b, raw.trim());
    }

    // ----------------------------------------------------------------------- maps

    /// `crypto dynamic-map NAME SEQ` (t after `dynamic-map`).
    pub(super) fn dynamic_map_head(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        t.cmd("crypto dynamic-map");
        let name = t.next("a dynamic map name")?.to_string();
        let seq = t.number("a sequence number 1-65535", 1, 65535)? as u32;
        t.end()?;
        self.cfg
            .remote_access
            .dynamic_maps
            .entry(name.clone())
            .or_insert_with(|| CryptoMap {
                name: name.clone(),
                entries: BTreeMap::new(),
                local_address_interface: None,
            })
            .entries
            .entry(seq)
            .or_insert_with(|| new_map_entry(seq, no));
        self.mode = Mode::DynamicMapEntry(name, seq);
        Ok(())
    }

    /// `crypto map NAME client authentication list L`, `crypto map NAME client
    /// configuration address respond|initiate`, `crypto map NAME isakmp authorization list
    /// L` (t after NAME). Returns false for other words (the caller skips the line).
    pub(super) fn crypto_map_client(&mut self, no: usize, name: &str, t: &mut Toks<'_>) -> R<bool> {
        enum Set {
            Authentication(String),
            Authorization(String),
            Address(ModeConfigAddress),
        }
        let set = if t.eat("client") {
            match t.choice(
                &["authentication", "configuration"],
                "authentication|configuration",
            )? {
                0 => {
                    t.cmd("crypto map client authentication list");
                    t.expect("list")?;
                    let l = t.next("a login list name")?.to_string();
                    t.end()?;
                    self.aaa_refs.push((
                        no,
                        "crypto map client authentication list",
                        true,
                        l.clone(),
                    ));
                    Set::Authentication(l)
                }
                _ => {
                    t.cmd("crypto map client configuration address");
                    t.expect("address")?;
                    let a = match t.choice(&["respond", "initiate"], "respond|initiate")? {
                        0 => ModeConfigAddress::Respond,
                        _ => ModeConfigAddress::Initiate,
                    };
                    t.end()?;
                    Set::Address(a)
                }
            }
        } else if t.eat("isakmp") {
            t.cmd("crypto map isakmp authorization list");
            t.expect("authorization")?;
            t.expect("list")?;
            let l = t.next("a network list name")?.to_string();
            t.end()?;
            self.aaa_refs
                .push((no, "crypto map isakmp authorization list", false, l.clone()));
            Set::Authorization(l)
        } else {
            return Ok(false);
        };
        self.map_entry_or_new(name);
        let c = self
            .cfg
            .remote_access
            .map_clients
            .entry(name.to_string())
            .or_insert_with(|| MapClientConfig {
                line: no,
                ..MapClientConfig::default()
            });
        match set {
            Set::Authentication(l) => c.authentication_list = Some(l),
            Set::Authorization(l) => c.authorization_list = Some(l),
            Set::Address(a) => c.address = Some(a),
        }
        Ok(true)
    }

    /// `crypto map NAME SEQ ipsec-isakmp dynamic DYN` (t after `dynamic`).
    pub(super) fn crypto_map_dynamic(
        &mut self,
        no: usize,
        name: &str,
        seq: u32,
        t: &mut Toks<'_>,
    ) -> R<()> {
        let dynamic = t.next("a dynamic map name")?.to_string();
        t.eat("discover");
        t.end()?;
        self.map_entry_or_new(name);
        let ra = &mut self.cfg.remote_access;
        ra.dynamic_refs.retain(|r| !(r.map == name && r.seq == seq));
        ra.dynamic_refs.push(DynamicMapRef {
            map: name.to_string(),
            seq,
            dynamic,
            line: no,
        });
        Ok(())
    }

    // ----------------------------------------------------------------------- checks

    /// References made by remote-access lines, checked after the last line.
    pub(super) fn check_remote_access(&mut self) {
        let refs = std::mem::take(&mut self.group_refs);
        for r in refs {
            if !self.cfg.remote_access.pools.contains_key(&r.name) {
                self.unresolved(r);
            }
        }
        for (line, command, login, name) in std::mem::take(&mut self.aaa_refs) {
            let ra = &self.cfg.remote_access;
            let found = if login {
                ra.login_lists.contains_key(&name)
            } else {
                ra.network_lists.contains_key(&name)
            };
            if !found {
                let what = if login {
                    "aaa authentication login list"
                } else {
                    "aaa authorization network list"
                };
                self.unresolved(Reference {
                    line,
                    command,
                    what,
                    name,
                });
            }
        }
        let dyn_refs = self.cfg.remote_access.dynamic_refs.clone();
        for r in dyn_refs {
            if !self.cfg.remote_access.dynamic_maps.contains_key(&r.dynamic) {
                self.unresolved(Reference {
                    line: r.line,
                    command: "crypto map",
                    what: "dynamic map",
                    name: r.dynamic,
                });
            }
        }
        let mut w = Vec::new();
        let ra = &self.cfg.remote_access;
        for g in ra.groups.values() {
            if g.key.is_none() {
                w.push(ConfigWarning {
                    line: g.line,
                    message: format!(
                        "crypto isakmp client configuration group {}: no key; its clients cannot authenticate",
                        g.name
                    ),
                });
            }
            if g.pool.is_none() {
                w.push(ConfigWarning {
                    line: g.line,
                    message: format!(
                        "crypto isakmp client configuration group {}: no pool; its clients get no address",
                        g.name
                    ),
                });
            }
        }
        for (map, c) in &ra.map_clients {
            if c.authentication_list.is_some() && ra.users.is_empty() {
                w.push(ConfigWarning {
                    line: c.line,
                    message: format!(
                        "crypto map {map} client authentication list: no username is configured; every XAUTH fails"
                    ),
                });
            }
        }
        self.warnings.extend(w);
    }
}

/// A new, empty crypto map entry (static or dynamic).
pub(super) fn new_map_entry(seq: u32, line: usize) -> CryptoMapEntry {
    CryptoMapEntry {
        seq,
        peers: Vec::new(),
        transform_sets: Vec::new(),
        match_address: None,
        pfs: None,
        lifetime: SaLifetimeOverride::default(),
        reverse_route: false,
        line,
    }
}

/// The banner's delimiter and the text after it. IOS shows Ctrl-C as `^C`; either that
/// two-character form or any single character delimits.
fn split_delim(s: &str) -> (char, &str) {
    if let Some(rest) = s.strip_prefix("^C") {
        return ('\u{3}', rest);
    }
    let mut chars = s.chars();
    let c = chars.next().unwrap_or('^');
    (c, chars.as_str())
}

/// Where the delimiter is in `line` (`^C` for Ctrl-C).
fn find_delim(line: &str, delim: char) -> Option<usize> {
    if delim == '\u{3}' {
        line.find("^C").or_else(|| line.find('\u{3}'))
    } else {
        line.find(delim)
    }
}
