//! `show crypto ipsec client ezvpn` (IOS Easy VPN Remote): the view the daemon fills and
//! the screen, laid out as IOS prints it.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// One Easy VPN client tunnel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EzvpnView {
    pub name: String,
    pub inside: Vec<String>,
    pub outside: String,
    /// `IPSEC_ACTIVE`, `CONNECT_REQUIRED`, `XAUTH_REQ` …
    pub state: String,
    pub last_event: String,
    pub peer: Ipv4Addr,
    pub address: Option<Ipv4Addr>,
    pub mask: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub wins: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub save_password: Option<bool>,
    /// Split include: (address, mask).
    pub split: Vec<(Ipv4Addr, Ipv4Addr)>,
}

impl EzvpnView {
    pub fn from_status(s: &crate::ike::endpoint::EzvpnStatus) -> EzvpnView {
        let mc = s.config.clone().unwrap_or_default();
        EzvpnView {
            name: s.name.clone(),
            inside: s.inside.clone(),
            outside: s.outside.clone(),
            state: s.state.to_string(),
            last_event: s.last_event.to_string(),
            peer: s.peer,
            address: mc.address,
            mask: mc.netmask,
            dns: mc.dns.clone(),
            wins: mc.nbns.clone(),
            domain: mc.domain.clone(),
            save_password: mc.save_password,
            split: mc.split_include.iter().map(|n| (n.addr, n.mask)).collect(),
        }
    }
}

/// The screen: "Easy VPN Remote Phase", then one block per tunnel.
pub fn ezvpn_screen(tunnels: &[EzvpnView]) -> String {
    let mut o = String::from("Easy VPN Remote Phase: 8\n\n");
    for t in tunnels {
        let _ = writeln!(o, "Tunnel name : {}", t.name);
        let _ = writeln!(o, "Inside interface list: {}", t.inside.join(", "));
        let _ = writeln!(o, "Outside interface: {}", t.outside);
        let _ = writeln!(o, "Current State: {}", t.state);
        let _ = writeln!(o, "Last Event: {}", t.last_event);
        if let Some(a) = t.address {
            let _ = writeln!(o, "Address: {a}");
        }
        if let Some(m) = t.mask {
            let _ = writeln!(o, "Mask: {m}");
        }
        for (i, d) in t.dns.iter().enumerate() {
            let which = if i == 0 { "Primary" } else { "Secondary" };
            let _ = writeln!(o, "DNS {which}: {d}");
        }
        for (i, d) in t.wins.iter().enumerate() {
            let which = if i == 0 { "Primary" } else { "Secondary" };
            let _ = writeln!(o, "NBMS/WINS {which}: {d}");
        }
        if let Some(d) = &t.domain {
            let _ = writeln!(o, "Default Domain: {d}");
        }
        if let Some(s) = t.save_password {
            let _ = writeln!(
                o,
                "Save Password: {}",
                if s { "Allowed" } else { "Disallowed" }
            );
        }
        if !t.split.is_empty() {
            let _ = writeln!(o, "Split Tunnel List: {}", t.split.len());
            for (a, m) in &t.split {
                let _ = writeln!(o, "       Address    : {a}");
                let _ = writeln!(o, "       Mask       : {m}");
                let _ = writeln!(o, "       Protocol   : 0x0");
                let _ = writeln!(o, "       Source Port: 0");
                let _ = writeln!(o, "       Dest Port  : 0");
            }
        }
        let _ = writeln!(o, "Current EzVPN Peer: {}", t.peer);
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn golden_ipsec_active_network_extension() {
        let v = [EzvpnView {
            name: "ez".into(),
            inside: vec!["Ethernet0/0".into()],
            outside: "Ethernet1/0".into(),
            state: "IPSEC_ACTIVE".into(),
            last_event: "IPSEC_ACTIVE".into(),
            peer: ip("172.16.172.10"),
            address: Some(ip("10.99.0.10")),
            mask: None,
            dns: vec![ip("10.1.1.53"), ip("10.1.1.54")],
            wins: vec![ip("10.1.1.55")],
            domain: Some("example.com".into()),
            save_password: Some(true),
            split: vec![(ip("10.1.1.0"), ip("255.255.255.0"))],
        }];
        let want = "\
Easy VPN Remote Phase: 8

Tunnel name : ez
Inside interface list: Ethernet0/0
Outside interface: Ethernet1/0
Current State: IPSEC_ACTIVE
Last Event: IPSEC_ACTIVE
Address: 10.99.0.10
DNS Primary: 10.1.1.53
DNS Secondary: 10.1.1.54
NBMS/WINS Primary: 10.1.1.55
Default Domain: example.com
Save Password: Allowed
Split Tunnel List: 1
       Address    : 10.1.1.0
       Mask       : 255.255.255.0
       Protocol   : 0x0
       Source Port: 0
       Dest Port  : 0
Current EzVPN Peer: 172.16.172.10

";
        assert_eq!(ezvpn_screen(&v), want);
    }

    #[test]
    fn connect_required_before_connect() {
        let v = [EzvpnView {
            name: "ez".into(),
            inside: vec!["Ethernet0/0".into()],
            outside: "Ethernet1/0".into(),
            state: "CONNECT_REQUIRED".into(),
            last_event: "CONFIG".into(),
            peer: ip("172.16.172.10"),
            address: None,
            mask: None,
            dns: vec![],
            wins: vec![],
            domain: None,
            save_password: None,
            split: vec![],
        }];
        let s = ezvpn_screen(&v);
        assert!(s.contains("Current State: CONNECT_REQUIRED\nLast Event: CONFIG\nCurrent EzVPN Peer: 172.16.172.10\n"), "{s}");
    }
}
