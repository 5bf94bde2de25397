//! The client's side of Transaction Mode (Easy VPN client; the tests' peer of [`Server`]):
//! answer the XAUTH REQUEST with user name and password, ACK the status SET, then pull Mode
//! Config (REQUEST → REPLY) or ACK a pushed SET.
//!
//! [`Server`]: super::Server

use super::attributes::*;
use super::TxnMessage;
use crate::ike::crypto::{Random, Secret};
use crate::ike::IkeError;
use crate::isakmp::{cfg_type, AttrPayload};
use std::net::Ipv4Addr;

/// What Mode Config gave the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModeConfig {
    pub address: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub nbns: Vec<Ipv4Addr>,
    pub banner: Option<String>,
    pub domain: Option<String>,
    pub save_password: Option<bool>,
    pub pfs: Option<bool>,
    pub split_include: Vec<SplitNet>,
    pub version: Option<String>,
}

impl ModeConfig {
    fn take(&mut self, attrs: &[CfgAttr]) {
        for a in attrs {
            match a {
                CfgAttr::Ip4Address(Some(x)) => self.address = Some(*x),
                CfgAttr::Ip4Netmask(Some(x)) => self.netmask = Some(*x),
                CfgAttr::Ip4Dns(Some(x)) => self.dns.push(*x),
                CfgAttr::Ip4Nbns(Some(x)) => self.nbns.push(*x),
                CfgAttr::Banner(Some(x)) => self.banner = Some(x.clone()),
                CfgAttr::DefaultDomain(Some(x)) => self.domain = Some(x.clone()),
                CfgAttr::SavePassword(Some(x)) => self.save_password = Some(*x != 0),
                CfgAttr::Pfs(Some(x)) => self.pfs = Some(*x != 0),
                // Once each: a strongSwan server with the unity plugin and a pool's
                // `split_include` sends the same network in both forms.
                CfgAttr::SplitInclude(n) => {
                    for n in n {
                        if !self.split_include.contains(n) {
                            self.split_include.push(*n);
                        }
                    }
                }
                CfgAttr::ApplicationVersion(Some(v)) => self.version = Some(v.clone()),
                _ => {}
            }
        }
    }
}

/// The client's state; the name is what it waits for.
pub enum ClientState {
    /// Waiting for the server's XAUTH REQUEST (IOS: `IKE_P1_COMPLETE`).
    AwaitXauthRequest,
    /// Sent the REPLY, waiting for the status SET (`IKE_XAUTH_REPLY_SENT`).
    AwaitXauthStatus,
    /// Sent the Mode Config REQUEST (`IKE_CONFIG_MODE_REQ_SENT`).
    ConfigRequestSent { mid: u32 },
    /// Configured (`IKE_P1_COMPLETE`).
    Configured,
    /// XAUTH refused or the server misbehaved (`IKE_DEST_SA`).
    Failed,
}

impl ClientState {
    pub fn ios(&self) -> &'static str {
        match self {
            ClientState::AwaitXauthRequest | ClientState::Configured => "IKE_P1_COMPLETE",
            ClientState::AwaitXauthStatus => "IKE_XAUTH_REPLY_SENT",
            ClientState::ConfigRequestSent { .. } => "IKE_CONFIG_MODE_REQ_SENT",
            ClientState::Failed => "IKE_DEST_SA",
        }
    }
}

/// One Transaction Mode, client side.
pub struct Client {
    pub state: ClientState,
    pub user: String,
    password: Secret,
    pub config: ModeConfig,
    /// Wrong-password REQUESTs answered (each with the same password, as vpnc does once).
    pub attempts: u32,
}

impl Client {
    pub fn new(user: &str, password: Secret) -> Client {
        Client {
            state: ClientState::AwaitXauthRequest,
            user: user.to_string(),
            password,
            config: ModeConfig::default(),
            attempts: 0,
        }
    }

    /// The Mode Config REQUEST (what vpnc asks for).
    fn request(&mut self, rng: &mut dyn Random) -> (u32, AttrPayload) {
        let mid = loop {
            let m = rng.u32();
            if m != 0 {
                break m;
            }
        };
        let attrs = [
            CfgAttr::Ip4Address(None),
            CfgAttr::Ip4Netmask(None),
            CfgAttr::Ip4Dns(None),
            CfgAttr::Ip4Nbns(None),
            CfgAttr::Banner(None),
            CfgAttr::DefaultDomain(None),
            CfgAttr::SavePassword(None),
            CfgAttr::SplitInclude(vec![]),
            CfgAttr::Pfs(None),
            CfgAttr::ApplicationVersion(Some("espgw-ezvpn".into())),
        ];
        self.state = ClientState::ConfigRequestSent { mid };
        (
            mid,
            AttrPayload {
                cfg_type: cfg_type::REQUEST,
                identifier: rng.u32() as u16,
                attrs: attrs.iter().map(CfgAttr::to_attr).collect(),
            },
        )
    }

    /// A message from the server; returns what to send (message ID, payload).
    pub fn handle(
        &mut self,
        rng: &mut dyn Random,
        m: &TxnMessage,
    ) -> Result<Vec<(u32, AttrPayload)>, IkeError> {
        let attrs = CfgAttr::parse_list(&m.attr.attrs)
            .map_err(|_| IkeError::Peer("malformed Transaction Mode attribute"))?;
        let reply = |t: u8, attrs: Vec<CfgAttr>| AttrPayload {
            cfg_type: t,
            identifier: m.attr.identifier,
            attrs: attrs.iter().map(CfgAttr::to_attr).collect(),
        };
        match (&self.state, m.attr.cfg_type) {
            (ClientState::AwaitXauthRequest | ClientState::AwaitXauthStatus, cfg_type::REQUEST) => {
                let mut out = Vec::new();
                for a in &attrs {
                    match a {
                        CfgAttr::XauthType(t) => out.push(CfgAttr::XauthType(*t)),
                        CfgAttr::XauthUserName(_) => {
                            out.push(CfgAttr::XauthUserName(Some(self.user.clone())))
                        }
                        CfgAttr::XauthPassword(_) => {
                            out.push(CfgAttr::XauthPassword(Some(Password::new(&self.password))))
                        }
                        _ => {}
                    }
                }
                self.attempts += 1;
                self.state = ClientState::AwaitXauthStatus;
                Ok(vec![(m.mid, reply(cfg_type::REPLY, out))])
            }
            (ClientState::AwaitXauthStatus, cfg_type::SET) => {
                let ok = attrs
                    .iter()
                    .any(|a| *a == CfgAttr::XauthStatus(Some(XAUTH_STATUS_OK)));
                let ack = (
                    m.mid,
                    reply(
                        cfg_type::ACK,
                        vec![CfgAttr::XauthStatus(Some(if ok {
                            XAUTH_STATUS_OK
                        } else {
                            XAUTH_STATUS_FAIL
                        }))],
                    ),
                );
                if !ok {
                    self.state = ClientState::Failed;
                    return Ok(vec![ack]);
                }
                let req = self.request(rng);
                Ok(vec![ack, req])
            }
            (ClientState::ConfigRequestSent { mid }, cfg_type::REPLY) if *mid == m.mid => {
                self.config.take(&attrs);
                self.state = ClientState::Configured;
                Ok(vec![])
            }
            // Initiate mode: the server pushes.
            (
                ClientState::AwaitXauthRequest | ClientState::ConfigRequestSent { .. },
                cfg_type::SET,
            ) => {
                self.config.take(&attrs);
                self.state = ClientState::Configured;
                let ack = AttrPayload {
                    cfg_type: cfg_type::ACK,
                    identifier: m.attr.identifier,
                    attrs: attrs
                        .iter()
                        .filter(|a| !matches!(a, CfgAttr::Unknown(_)))
                        .map(CfgAttr::empty)
                        .collect(),
                };
                Ok(vec![(m.mid, ack)])
            }
            _ => Err(IkeError::Peer("unexpected Transaction Mode message")),
        }
    }

    /// Without XAUTH the client starts Mode Config itself.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn start_without_xauth(&mut self, rng: &mut dyn Random) -> (u32, AttrPayload) {
        self.request(rng)
    }

    pub fn is_configured(&self) -> bool {
        matches!(self.state, ClientState::Configured)
    }
}
