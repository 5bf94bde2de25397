//! The Easy VPN server's side of Transaction Mode: XAUTH, then Mode Config.
//!
//! IOS states (as `debug crypto isakmp` names them): after phase 1 the server sends the
//! XAUTH REQUEST and waits in `IKE_XAUTH_REQ_SENT`; the REPLY passes it through
//! `IKE_XAUTH_REPLY_ATTR`; a wrong password sends a new REQUEST (back to
//! `IKE_XAUTH_REQ_SENT`) until the attempts are spent; the status SET waits in
//! `IKE_XAUTH_SET_SENT`; the ACK brings it back to `IKE_P1_COMPLETE`, where it waits for the
//! client's Mode Config REQUEST (respond) — passing through `IKE_CONFIG_AUTHOR_AAA_AWAIT` —
//! or sends its own SET and waits in `IKE_CONFIG_MODE_SET_SENT` (initiate).

use super::attributes::*;
use super::{cfg_type_name, TxnMessage};
use crate::ike::crypto::Random;
use crate::ike::pool::{PoolError, Pools};
use crate::ike::remote::{AddressMode, ClientGroup, RemoteAccessConfig};
use crate::ike::IkeError;
use crate::isakmp::{cfg_type, AttrPayload};
use std::net::Ipv4Addr;

/// What the server needs from the endpoint while it handles a message.
pub struct ServerCtx<'a> {
    pub cfg: &'a RemoteAccessConfig,
    pub group: &'a ClientGroup,
    pub pools: &'a mut Pools,
    /// The lease owner: the phase-1 SA's initiator cookie.
    pub owner: [u8; 8],
    pub rng: &'a mut dyn Random,
    /// The client's public address (for the log lines).
    pub peer: Ipv4Addr,
    /// The APPLICATION_VERSION we answer.
    pub version: &'a str,
}

/// What the server asks the endpoint to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOut {
    Send {
        mid: u32,
        attr: AttrPayload,
    },
    /// A `debug crypto isakmp` line (without the `ISAKMP (0:conn):` prefix).
    Debug(String),
    /// A system message (`%CRYPTO-…`).
    Syslog(crate::ike::SyslogMessage),
    /// `Old State = from  New State = to`.
    Transition {
        from: &'static str,
        to: &'static str,
    },
    Authenticated {
        user: String,
    },
    /// The client has its address (Mode Config finished).
    Configured {
        addr: Ipv4Addr,
    },
    /// Transaction Mode is over (the client is configured): no more deadline.
    Done,
    /// The exchange failed: the endpoint deletes the phase-1 SA (the lease is already back).
    Failed {
        reason: String,
        why: crate::ike::FailReason,
    },
}

/// Sent the XAUTH REQUEST `mid`, waiting for the REPLY.
pub struct XauthReqSent {
    pub mid: u32,
    pub attempt: u32,
}
/// Sent the XAUTH status SET, waiting for the ACK.
pub struct XauthSetSent {
    pub mid: u32,
    pub ok: bool,
}
/// XAUTH done (or not required): waiting for the client's Mode Config REQUEST.
pub struct AwaitConfigRequest;
/// Pushed the Mode Config SET, waiting for the ACK.
pub struct ConfigSetSent {
    pub mid: u32,
    pub addr: Option<Ipv4Addr>,
}
/// The client is configured.
pub struct Configured;

/// The server's state; the name is what it waits in.
pub enum ServerState {
    XauthReqSent(XauthReqSent),
    XauthSetSent(XauthSetSent),
    AwaitConfigRequest(AwaitConfigRequest),
    ConfigSetSent(ConfigSetSent),
    Configured(Configured),
    Failed,
}

impl ServerState {
    /// The IOS state name.
    pub fn ios(&self) -> &'static str {
        match self {
            ServerState::XauthReqSent(_) => "IKE_XAUTH_REQ_SENT",
            ServerState::XauthSetSent(_) => "IKE_XAUTH_SET_SENT",
            ServerState::AwaitConfigRequest(_) | ServerState::Configured(_) => "IKE_P1_COMPLETE",
            ServerState::ConfigSetSent(_) => "IKE_CONFIG_MODE_SET_SENT",
            ServerState::Failed => "IKE_DEST_SA",
        }
    }
}

/// One client's Transaction Mode, server side.
pub struct Server {
    pub state: ServerState,
    /// The authenticated user.
    pub user: Option<String>,
    /// The leased address, while leased.
    pub addr: Option<Ipv4Addr>,
    pub pool: Option<String>,
}

fn new_mid(rng: &mut dyn Random) -> u32 {
    loop {
        let m = rng.u32();
        if m != 0 {
            return m;
        }
    }
}

fn new_id(rng: &mut dyn Random) -> u16 {
    rng.u32() as u16
}

fn payload(cfg: u8, identifier: u16, attrs: &[CfgAttr]) -> AttrPayload {
    AttrPayload {
        cfg_type: cfg,
        identifier,
        attrs: attrs.iter().map(CfgAttr::to_attr).collect(),
    }
}

impl Server {
    /// Phase 1 is complete: XAUTH if the crypto map wants it, otherwise Mode Config.
    pub fn start(ctx: &mut ServerCtx) -> (Server, Vec<ServerOut>) {
        let mut s = Server {
            state: ServerState::Failed,
            user: None,
            addr: None,
            pool: ctx.group.pool.clone(),
        };
        let mut out = Vec::new();
        let next = if ctx.cfg.xauth {
            s.xauth_request(ctx, 1, &mut out)
        } else {
            s.after_xauth(ctx, &mut out)
        };
        s.enter("IKE_P1_COMPLETE", next, &mut out);
        (s, out)
    }

    fn enter(&mut self, from: &'static str, next: ServerState, out: &mut Vec<ServerOut>) {
        let to = next.ios();
        if from != to {
            out.push(ServerOut::Transition { from, to });
        }
        self.state = next;
    }

    fn xauth_request(
        &mut self,
        ctx: &mut ServerCtx,
        attempt: u32,
        out: &mut Vec<ServerOut>,
    ) -> ServerState {
        let mid = new_mid(ctx.rng);
        let identifier = new_id(ctx.rng);
        let mut attrs = vec![
            CfgAttr::XauthType(Some(XAUTH_TYPE_GENERIC)),
            CfgAttr::XauthUserName(None),
            CfgAttr::XauthPassword(None),
        ];
        let msg = if attempt == 1 {
            "Enter Username and Password."
        } else {
            "Authentication failed. Enter Username and Password."
        };
        attrs.push(CfgAttr::XauthMessage(Some(msg.into())));
        out.push(ServerOut::Debug(format!(
            "sending XAUTH REQUEST (attempt {attempt} of {}), message ID = {mid}",
            ctx.cfg.xauth_attempts
        )));
        out.push(ServerOut::Send {
            mid,
            attr: payload(cfg_type::REQUEST, identifier, &attrs),
        });
        ServerState::XauthReqSent(XauthReqSent { mid, attempt })
    }

    /// XAUTH is over (or not required): respond mode waits, initiate mode pushes.
    fn after_xauth(&mut self, ctx: &mut ServerCtx, out: &mut Vec<ServerOut>) -> ServerState {
        match ctx.cfg.address {
            AddressMode::Respond => ServerState::AwaitConfigRequest(AwaitConfigRequest),
            AddressMode::Initiate => {
                let Some(values) = self.values(ctx, None, out) else {
                    return ServerState::Failed;
                };
                let mid = new_mid(ctx.rng);
                let identifier = new_id(ctx.rng);
                out.push(ServerOut::Debug(format!(
                    "sending Config Mode SET, message ID = {mid}"
                )));
                out.push(ServerOut::Send {
                    mid,
                    attr: payload(cfg_type::SET, identifier, &values),
                });
                ServerState::ConfigSetSent(ConfigSetSent {
                    mid,
                    addr: self.addr,
                })
            }
        }
    }

    /// A Transaction Mode message from the client.
    pub fn handle(
        &mut self,
        ctx: &mut ServerCtx,
        m: &TxnMessage,
    ) -> Result<Vec<ServerOut>, IkeError> {
        let attrs = CfgAttr::parse_list(&m.attr.attrs)
            .map_err(|_| IkeError::Peer("malformed Transaction Mode attribute"))?;
        let mut out = vec![ServerOut::Debug(format!(
            "processing transaction payload from {}. message ID = {}, type {}",
            ctx.peer,
            m.mid,
            cfg_type_name(m.attr.cfg_type)
        ))];
        let from = self.state.ios();
        let state = std::mem::replace(&mut self.state, ServerState::Failed);
        let next = match (state, m.attr.cfg_type) {
            (ServerState::XauthReqSent(s), cfg_type::REPLY) if s.mid == m.mid => {
                out.push(ServerOut::Transition {
                    from,
                    to: "IKE_XAUTH_REPLY_ATTR",
                });
                self.on_xauth_reply(ctx, s, &attrs, &mut out)
            }
            (ServerState::XauthSetSent(s), cfg_type::ACK) if s.mid == m.mid => {
                if s.ok {
                    out.push(ServerOut::Debug("XAUTH ACK Processed".into()));
                    let from = "IKE_XAUTH_SET_SENT";
                    let next = self.after_xauth(ctx, &mut out);
                    // The transition from SET_SENT is printed by `enter` below.
                    self.enter(from, next, &mut out);
                    return Ok(out);
                }
                out.push(ServerOut::Failed {
                    reason: "XAUTH failed".into(),
                    why: crate::ike::FailReason::XauthFailed,
                });
                ServerState::Failed
            }
            (ServerState::AwaitConfigRequest(_), cfg_type::REQUEST) => {
                out.push(ServerOut::Transition {
                    from,
                    to: "IKE_CONFIG_AUTHOR_AAA_AWAIT",
                });
                match self.values(ctx, Some(&attrs), &mut out) {
                    Some(values) => {
                        out.push(ServerOut::Debug(format!(
                            "responding to Config Mode REQUEST, message ID = {}",
                            m.mid
                        )));
                        out.push(ServerOut::Send {
                            mid: m.mid,
                            attr: payload(cfg_type::REPLY, m.attr.identifier, &values),
                        });
                        if let Some(addr) = self.addr {
                            out.push(ServerOut::Configured { addr });
                        }
                        out.push(ServerOut::Transition {
                            from: "IKE_CONFIG_AUTHOR_AAA_AWAIT",
                            to: "IKE_P1_COMPLETE",
                        });
                        out.push(ServerOut::Done);
                        self.state = ServerState::Configured(Configured);
                        return Ok(out);
                    }
                    None => ServerState::Failed,
                }
            }
            (ServerState::ConfigSetSent(s), cfg_type::ACK) if s.mid == m.mid => {
                out.push(ServerOut::Debug("Config Mode ACK processed".into()));
                if let Some(addr) = s.addr {
                    out.push(ServerOut::Configured { addr });
                }
                out.push(ServerOut::Done);
                ServerState::Configured(Configured)
            }
            (st, _) => {
                self.state = st;
                return Err(IkeError::Peer("unexpected Transaction Mode message"));
            }
        };
        let from = match &next {
            ServerState::XauthReqSent(_) | ServerState::XauthSetSent(_) => "IKE_XAUTH_REPLY_ATTR",
            _ => from,
        };
        self.enter(from, next, &mut out);
        Ok(out)
    }

    fn on_xauth_reply(
        &mut self,
        ctx: &mut ServerCtx,
        s: XauthReqSent,
        attrs: &[CfgAttr],
        out: &mut Vec<ServerOut>,
    ) -> ServerState {
        let mut user = None;
        let mut password = None;
        for a in attrs {
            match a {
                CfgAttr::XauthUserName(Some(u)) => user = Some(u.clone()),
                CfgAttr::XauthPassword(Some(p)) => password = Some(p.clone()),
                _ => {}
            }
        }
        let user = user.unwrap_or_default();
        let ok = match (&password, ctx.cfg.users.get(&user)) {
            (Some(p), Some(secret)) => secret.verify(p.expose()),
            _ => false,
        };
        if ok {
            out.push(ServerOut::Debug(format!(
                "XAUTH: user {user} authenticated"
            )));
            out.push(ServerOut::Authenticated { user: user.clone() });
            self.user = Some(user);
        } else {
            out.push(ServerOut::Debug(format!(
                "XAUTH: authentication of user {user} failed (attempt {} of {})",
                s.attempt, ctx.cfg.xauth_attempts
            )));
            out.push(ServerOut::Syslog(crate::ike::SyslogMessage::crypto(
                crate::ike::syslog::INFORMATIONAL,
                "IKMP_AUTH_FAIL",
                format!("Authentication method 65001 failed with host {}", ctx.peer),
            )));
            if s.attempt < ctx.cfg.xauth_attempts {
                return self.xauth_request(ctx, s.attempt + 1, out);
            }
        }
        let mid = new_mid(ctx.rng);
        let identifier = new_id(ctx.rng);
        let status = if ok {
            XAUTH_STATUS_OK
        } else {
            XAUTH_STATUS_FAIL
        };
        out.push(ServerOut::Debug(format!(
            "sending XAUTH SET status {}, message ID = {mid}",
            if ok { "OK" } else { "FAIL" }
        )));
        out.push(ServerOut::Send {
            mid,
            attr: payload(
                cfg_type::SET,
                identifier,
                &[CfgAttr::XauthStatus(Some(status))],
            ),
        });
        ServerState::XauthSetSent(XauthSetSent { mid, ok })
    }

    /// The Mode Config values: those asked for (`asked`) or all we have (a SET). Leases the
    /// address; None (and a `Failed`) if the pool has none.
    fn values(
        &mut self,
        ctx: &mut ServerCtx,
        asked: Option<&[CfgAttr]>,
        out: &mut Vec<ServerOut>,
    ) -> Option<Vec<CfgAttr>> {
        let wants = |code: u16| asked.is_none_or(|a| a.iter().any(|x| x.code() == code));
        let g = ctx.group;
        let mut v = Vec::new();
        if wants(code::INTERNAL_IP4_ADDRESS) {
            if let Some(pool) = &self.pool {
                match ctx.pools.lease(pool, ctx.owner) {
                    Ok(a) => {
                        out.push(ServerOut::Debug(format!(
                            "allocating address {a} from pool {pool}"
                        )));
                        self.addr = Some(a);
                        v.push(CfgAttr::Ip4Address(Some(a)));
                    }
                    Err(e) => {
                        let why = match &e {
                            PoolError::Exhausted(p) => format!("address pool {p} exhausted"),
                            PoolError::NoSuchPool(p) => format!("no address pool {p}"),
                        };
                        out.push(ServerOut::Debug(format!(
                            "Unable to allocate address: {why}"
                        )));
                        out.push(ServerOut::Syslog(crate::ike::SyslogMessage::crypto(
                            crate::ike::syslog::INFORMATIONAL,
                            "IKMP_MODE_FAILURE",
                            format!("Processing of Config mode failed with peer at {}", ctx.peer),
                        )));
                        out.push(ServerOut::Failed {
                            reason: why,
                            why: crate::ike::FailReason::PoolExhausted,
                        });
                        return None;
                    }
                }
            }
        }
        if wants(code::INTERNAL_IP4_NETMASK) && self.addr.is_some() {
            v.push(CfgAttr::Ip4Netmask(Some(Ipv4Addr::BROADCAST)));
        }
        if wants(code::INTERNAL_IP4_DNS) {
            v.extend(g.dns.iter().map(|a| CfgAttr::Ip4Dns(Some(*a))));
        }
        if wants(code::INTERNAL_IP4_NBNS) {
            v.extend(g.wins.iter().map(|a| CfgAttr::Ip4Nbns(Some(*a))));
        }
        if wants(code::UNITY_BANNER) {
            if let Some(b) = &g.banner {
                v.push(CfgAttr::Banner(Some(b.clone())));
            }
        }
        if wants(code::UNITY_DEF_DOMAIN) {
            if let Some(d) = &g.domain {
                v.push(CfgAttr::DefaultDomain(Some(d.clone())));
            }
        }
        if wants(code::UNITY_SAVE_PASSWD) {
            v.push(CfgAttr::SavePassword(Some(g.save_password as u16)));
        }
        if wants(code::UNITY_SPLIT_INCLUDE) && !g.split_include.is_empty() {
            v.push(CfgAttr::SplitInclude(g.split_include.clone()));
        }
        if wants(code::UNITY_PFS) {
            v.push(CfgAttr::Pfs(Some(g.pfs as u16)));
        }
        if asked.is_some() && wants(code::APPLICATION_VERSION) {
            v.push(CfgAttr::ApplicationVersion(Some(ctx.version.to_string())));
        }
        for a in &v {
            out.push(ServerOut::Debug(format!(
                "Config Mode attribute {}",
                a.debug_name()
            )));
        }
        Some(v)
    }

    /// Gives the address back (the SA is going).
    pub fn release(&mut self, pools: &mut Pools, owner: [u8; 8]) -> Option<Ipv4Addr> {
        let (Some(a), Some(p)) = (self.addr.take(), &self.pool) else {
            return None;
        };
        pools.release(p, a, owner);
        Some(a)
    }

    /// Waiting for the client (its XAUTH REPLY or ACK, or its Mode Config).
    pub fn is_configured(&self) -> bool {
        matches!(self.state, ServerState::Configured(_))
    }
}
