//! The Easy VPN client scenario: each identity is an espgw Easy VPN Remote
//! (`crypto ipsec client ezvpn`, no inside network, so it protects its Mode Config address
//! as vpnc does) with the group's key, its own XAUTH user and its own outside address:
//! Aggressive Mode PSK (ID_KEY_ID = group), XAUTH, Mode Config, Quick Mode. Done when
//! `show crypto ipsec client ezvpn` would say IPSEC_ACTIVE: the result is the Mode Config
//! address and the SPIs of its SA pair.

use super::fleet::{Progress, SaUp, Scenario};
use espgw_control::config::model::InterfaceMap;
use espgw_control::config::parse::parse_config;
use espgw_control::ike::crypto::RandRng;
use espgw_control::ike::ios::ike_config;
use espgw_control::ike::Endpoint;
use std::net::Ipv4Addr;
use std::time::Instant;

/// What every client shares; the user is `user` or, with `numbered`, `user` + index.
#[derive(clap::Args, Clone, Debug)]
pub struct EzvpnArgs {
    /// The Easy VPN server.
    #[arg(long)]
    pub server: Ipv4Addr,
    /// Group name (ID_KEY_ID) and key (the phase-1 PSK).
    #[arg(long, default_value = "loadgroup")]
    pub group: String,
    #[arg(long, default_value = "loadkey")]
    pub key: String,
    /// XAUTH user and password.
    #[arg(long, default_value = "load")]
    pub user: String,
    #[arg(long, default_value = "loadpw")]
    pub password: String,
    /// Client i logs in as USER<i> (users load1 … loadN) instead of USER.
    #[arg(long)]
    pub numbered_users: bool,
    /// ISAKMP policy: `encr`, `hash`, DH group.
    #[arg(long, default_value = "aes")]
    pub encr: String,
    #[arg(long, default_value = "sha")]
    pub hash: String,
    #[arg(long, default_value_t = 2)]
    pub dh_group: u32,
    /// IOS transform set.
    #[arg(long, default_value = "esp-aes esp-sha-hmac")]
    pub transform: String,
}

pub struct EzvpnScenario {
    pub args: EzvpnArgs,
}

impl EzvpnScenario {
    /// The IOS configuration of client `i` at `local`.
    pub fn config_text(&self, i: usize, local: Ipv4Addr) -> String {
        let a = &self.args;
        let user = if a.numbered_users {
            format!("{}{}", a.user, i + 1)
        } else {
            a.user.clone()
        };
        format!(
            "hostname LOAD{i}
crypto isakmp policy 10
 encr {encr}
 hash {hash}
 authentication pre-share
 group {dh}
crypto ipsec transform-set ts {ts}
crypto ipsec client ezvpn ez
 connect auto
 group {group} key {key}
 mode network-extension
 peer {server}
 username {user} password {pw}
interface Ethernet1/0
 ip address {local} 255.255.255.255
 crypto ipsec client ezvpn ez
end
",
            encr = a.encr,
            hash = a.hash,
            dh = a.dh_group,
            ts = a.transform,
            group = a.group,
            key = a.key,
            server = a.server,
            pw = a.password,
        )
    }
}

impl Scenario for EzvpnScenario {
    fn endpoint(&self, i: usize, local: Ipv4Addr) -> Result<Endpoint, String> {
        let text = self.config_text(i, local);
        let p = parse_config(&text, &InterfaceMap::default())
            .map_err(|e| format!("client {i}: {e}"))?;
        let cfg = ike_config(&p.config, false).map_err(|e| format!("client {i}: {e}"))?;
        let rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
        Ok(Endpoint::new(cfg, Box::new(RandRng(rng))))
    }

    fn start(&self, ep: &mut Endpoint, now: Instant) {
        ep.ezvpn_start(now);
    }

    fn progress(&self, ep: &Endpoint, sas: &[SaUp], failures: &[String]) -> Progress {
        let Some(st) = ep.ezvpn_status().into_iter().next() else {
            return Progress::Failed("no Easy VPN tunnel".into());
        };
        if st.active {
            let addr = st.config.as_ref().and_then(|c| c.address);
            let (Some(addr), Some(sa)) = (addr, sas.last()) else {
                return Progress::Pending;
            };
            return Progress::Done(serde_json::json!({
                "address": addr.to_string(),
                "inbound_spi": sa.inbound_spi,
                "outbound_spi": sa.outbound_spi,
                "local_proxy": sa.local.to_string(),
                "remote_proxy": sa.remote.to_string(),
            }));
        }
        if st.state == "IDLE" || !failures.is_empty() {
            return Progress::Failed(format!(
                "{} ({}) {}",
                st.state,
                st.last_event,
                failures.join("; ")
            ));
        }
        Progress::Pending
    }
}
