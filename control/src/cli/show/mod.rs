//! The IOS screens: `show crypto map`, `show crypto isakmp policy`, `show crypto isakmp sa`
//! and `show crypto ipsec sa`, laid out as IOS lays them out (column positions and labels
//! are what operators grep for; see `reference/ios-show-formats.md`). Pure functions from
//! the views the daemon fills to text; every screen ends with a newline. The screens of
//! issue 16 are in submodules: [`peers`] (`show crypto isakmp peers`, `show crypto engine
//! connections active`), [`policy`] (`show crypto isakmp default policy`, `show crypto
//! ipsec transform-set`), [`session`] (`show crypto session detail`) and [`detail`]
//! (`show crypto ipsec sa detail`).

mod detail;
pub mod logging;
mod peers;
mod policy;
pub mod running;
mod session;

pub use detail::{ipsec_sa_detail, select_blocks};
pub use peers::{engine_connections, isakmp_peers};
pub use policy::{isakmp_default_policy, transform_sets};
pub use session::crypto_session_detail;

use std::fmt::Write as _;

use super::api::{
    CryptoMapView, CryptoSessionView, DataplaneCounterView, EspSaView, IpsecSaView, IsakmpSaView,
    Response,
};
use crate::config::model::{DhGroup, IkeAuth, IkeEncryption, IkeHash, IsakmpPolicy, ProxyId};
use std::net::Ipv4Addr;

/// `0x8EAB0B22(2393574178)`: how IOS prints an SPI (one rule, shared with the data
/// plane's crypto log messages).
pub use espgw_sadb::ios_spi as spi;

// ---------------------------------------------------------------------------------------
// show crypto map
// ---------------------------------------------------------------------------------------

/// `show crypto map`.
pub fn crypto_map(maps: &[CryptoMapView]) -> String {
    let mut out = String::new();
    let mut first = true;
    for map in maps {
        for e in &map.entries {
            if !first {
                out.push('\n');
            }
            first = false;
            let _ = writeln!(out, "Crypto Map \"{}\" {} ipsec-isakmp", map.name, e.seq);
            for p in &e.peers {
                let _ = writeln!(out, "        Peer = {p}");
            }
            match &e.acl {
                Some(acl) => {
                    // IOS prints numbered and named extended lists alike.
                    let _ = writeln!(out, "        Extended IP access list {}", acl.name);
                    for l in &acl.lines {
                        let _ = writeln!(out, "            access-list {} {}", acl.name, l);
                    }
                }
                None => out.push_str("        No matching address list set.\n"),
            }
            if let Some(p) = e.current_peer {
                let _ = writeln!(out, "        Current peer: {p}");
            }
            let _ = writeln!(
                out,
                "        Security association lifetime: {} kilobytes/{} seconds",
                e.lifetime.kilobytes, e.lifetime.seconds
            );
            match e.pfs {
                None => out.push_str("        PFS (Y/N): N\n"),
                Some(g) => {
                    out.push_str("        PFS (Y/N): Y\n");
                    let _ = writeln!(out, "        DH group:  group{}", g.number());
                }
            }
            out.push_str("        Transform sets={ ");
            for t in &e.transform_sets {
                let _ = write!(out, "{t}, ");
            }
            out.push_str("}\n");
        }
        if !map.entries.is_empty() {
            let _ = writeln!(out, "        Interfaces using crypto map {}:", map.name);
            for i in &map.interfaces {
                let _ = writeln!(out, "                {i}");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// show crypto isakmp policy
// ---------------------------------------------------------------------------------------

fn encryption_name(e: IkeEncryption) -> String {
    match e {
        IkeEncryption::Des => "DES - Data Encryption Standard (56 bit keys).".into(),
        IkeEncryption::TripleDes => "Three key triple DES".into(),
        IkeEncryption::Aes(k) => {
            format!(
                "AES - Advanced Encryption Standard ({} bit keys).",
                k.bits()
            )
        }
    }
}

fn hash_name(h: IkeHash) -> &'static str {
    match h {
        IkeHash::Md5 => "Message Digest 5",
        IkeHash::Sha => "Secure Hash Standard",
        IkeHash::Sha256 => "Secure Hash Standard 2 (256 bit)",
    }
}

fn auth_name(a: IkeAuth) -> &'static str {
    match a {
        IkeAuth::PreShare => "Pre-Shared Key",
        IkeAuth::RsaSig => "Rivest-Shamir-Adleman Signature",
        IkeAuth::RsaEncr => "Rivest-Shamir-Adleman Encryption",
    }
}

fn group_name(g: DhGroup) -> String {
    format!("#{} ({} bit)", g.number(), g.modulus_bits())
}

pub(super) fn policy_body(out: &mut String, p: &IsakmpPolicy) {
    let _ = writeln!(
        out,
        "        encryption algorithm:   {}",
        encryption_name(p.encryption)
    );
    let _ = writeln!(out, "        hash algorithm:         {}", hash_name(p.hash));
    let _ = writeln!(out, "        authentication method:  {}", auth_name(p.auth));
    let _ = writeln!(
        out,
        "        Diffie-Hellman group:   {}",
        group_name(p.group)
    );
    let _ = writeln!(
        out,
        "        lifetime:               {} seconds, no volume limit",
        p.lifetime_secs
    );
}

/// `show crypto isakmp policy`: the configured policies by priority, then the default suite.
pub fn isakmp_policy(policies: &[IsakmpPolicy], default_suite: &IsakmpPolicy) -> String {
    let mut out = String::from("Global IKE policy\n");
    for p in policies {
        let _ = writeln!(out, "Protection suite of priority {}", p.priority);
        policy_body(&mut out, p);
    }
    out.push_str("Default protection suite\n");
    policy_body(&mut out, default_suite);
    out
}

// ---------------------------------------------------------------------------------------
// show crypto isakmp sa
// ---------------------------------------------------------------------------------------

/// `show crypto isakmp sa`.
pub fn isakmp_sa(sas: &[IsakmpSaView]) -> String {
    let mut out = String::from("IPv4 Crypto ISAKMP SA\n");
    out.push_str("dst             src             state          conn-id status\n");
    for sa in sas {
        let row = format!(
            "{:<15} {:<15} {:<14} {:>7} {}",
            sa.dst.to_string(),
            sa.src.to_string(),
            sa.state.ios_name(),
            sa.conn_id,
            sa.status.ios_name()
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------
// show crypto ipsec sa
// ---------------------------------------------------------------------------------------

fn esp_sa(out: &mut String, sa: &EspSaView) {
    let _ = writeln!(out, "      spi: {}", spi(sa.spi));
    let _ = writeln!(out, "        transform: {} ,", sa.transform);
    let _ = writeln!(
        out,
        "        in use settings ={{{}{}, }}",
        sa.mode.ios_name(),
        if sa.udp_encap { " UDP-Encaps" } else { "" }
    );
    let _ = writeln!(
        out,
        "        conn id: {}, flow_id: SW:{}, crypto map: {}",
        sa.conn_id, sa.flow_id, sa.crypto_map
    );
    let _ = writeln!(
        out,
        "        sa timing: remaining key lifetime (k/sec): ({}/{})",
        sa.remaining_kb, sa.remaining_secs
    );
    let _ = writeln!(out, "        IV size: {} bytes", sa.iv_size);
    let _ = writeln!(
        out,
        "        replay detection support: {}",
        if sa.replay_detection { "Y" } else { "N" }
    );
    let _ = writeln!(out, "        Status: {}", sa.status.ios_name());
    out.push('\n');
}

/// One block; with `errors`, the failure counters of `detail` replace `#send errors`.
pub(super) fn ipsec_block_with(
    out: &mut String,
    v: &IpsecSaView,
    errors: Option<&super::views::IpsecErrorCounters>,
) {
    out.push_str("   protected vrf: (none)\n");
    let id = |p: &crate::config::model::ProxyId| {
        format!("{}/{}/{}/{}", p.addr, p.mask, p.protocol, p.port)
    };
    let _ = writeln!(
        out,
        "   local  ident (addr/mask/prot/port): ({})",
        id(&v.local_ident)
    );
    let _ = writeln!(
        out,
        "   remote ident (addr/mask/prot/port): ({})",
        id(&v.remote_ident)
    );
    let _ = writeln!(
        out,
        "   current_peer {} port {}",
        v.current_peer, v.current_peer_port
    );
    out.push_str("     PERMIT, flags={");
    for f in &v.flags {
        let _ = write!(out, "{f},");
    }
    out.push_str("}\n");
    let c = &v.counters;
    let _ = writeln!(
        out,
        "    #pkts encaps: {}, #pkts encrypt: {}, #pkts digest: {}",
        c.encaps, c.encrypt, c.digest
    );
    let _ = writeln!(
        out,
        "    #pkts decaps: {}, #pkts decrypt: {}, #pkts verify: {}",
        c.decaps, c.decrypt, c.verify
    );
    out.push_str("    #pkts compressed: 0, #pkts decompressed: 0\n");
    out.push_str("    #pkts not compressed: 0, #pkts compr. failed: 0\n");
    out.push_str("    #pkts not decompressed: 0, #pkts decompress failed: 0\n");
    match errors {
        None => {
            let _ = writeln!(
                out,
                "    #send errors {}, #recv errors {}",
                c.send_errors, c.recv_errors
            );
        }
        Some(e) => detail::error_lines(out, e),
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "     local crypto endpt.: {}, remote crypto endpt.: {}",
        v.local_addr, v.current_peer
    );
    let _ = writeln!(
        out,
        "     path mtu {}, ip mtu {}, ip mtu idb {}",
        v.path_mtu, v.ip_mtu, v.ip_mtu_idb
    );
    let _ = writeln!(
        out,
        "     current outbound spi: {}",
        spi(v.current_outbound_spi)
    );
    out.push('\n');
    for (dir, esp) in [("inbound", &v.inbound_esp), ("outbound", &v.outbound_esp)] {
        if dir == "outbound" {
            out.push('\n'); // after "inbound pcp sas:"
        }
        let _ = writeln!(out, "     {dir} esp sas:");
        for sa in esp {
            esp_sa(out, sa);
        }
        if esp.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "     {dir} ah sas:\n");
        let _ = writeln!(out, "     {dir} pcp sas:");
    }
}

/// `show crypto ipsec sa`: blocks grouped under their interface and crypto map tag.
pub fn ipsec_sa(views: &[IpsecSaView]) -> String {
    ipsec_sa_with(views.iter().map(|v| (v, None)))
}

/// The blocks under their interface headers, each with its `detail` counters or none.
pub(super) fn ipsec_sa_with<'a>(
    views: impl Iterator<
        Item = (
            &'a IpsecSaView,
            Option<&'a super::views::IpsecErrorCounters>,
        ),
    >,
) -> String {
    let mut out = String::new();
    let mut prev: Option<(&str, &str, std::net::Ipv4Addr)> = None;
    for (v, errors) in views {
        let key = (v.interface.as_str(), v.map_tag.as_str(), v.local_addr);
        if prev != Some(key) {
            if prev.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "interface: {}", v.interface);
            let _ = writeln!(
                out,
                "    Crypto map tag: {}, local addr {}",
                v.map_tag, v.local_addr
            );
            prev = Some(key);
        }
        out.push('\n');
        ipsec_block_with(&mut out, v, errors);
    }
    out
}

/// Text for a response: `Ok(stdout text)` or `Err(stderr text)`. Debug lines get their
/// newline; `Done` with an empty message prints nothing.
pub fn render(response: &Response) -> Result<String, String> {
    match response {
        Response::IsakmpSas { sas } => Ok(isakmp_sa(sas)),
        Response::IpsecSas { sas } => Ok(ipsec_sa(sas)),
        Response::CryptoMaps { maps } => Ok(crypto_map(maps)),
        Response::IsakmpPolicies {
            policies,
            default_suite,
        } => Ok(isakmp_policy(policies, default_suite)),
        Response::Done { message } if message.is_empty() => Ok(String::new()),
        Response::Done { message } => Ok(format!("{message}\n")),
        Response::DebugLine { line } => Ok(format!("{line}\n")),
        Response::DataplaneCounters { counters } => Ok(dataplane(counters)),
        Response::CryptoSessions { sessions } => Ok(crypto_session(sessions)),
        Response::Ezvpn { tunnels } => Ok(super::ezvpn::ezvpn_screen(tunnels)),
        Response::IpsecSasDetail { sas } => Ok(ipsec_sa_detail(sas)),
        Response::IsakmpPeers { peers } => Ok(isakmp_peers(peers)),
        Response::DefaultIsakmpPolicy { policies } => Ok(isakmp_default_policy(policies)),
        Response::EngineConnections { connections } => Ok(engine_connections(connections)),
        Response::TransformSets { sets } => Ok(transform_sets(sets)),
        Response::CryptoSessionsDetail { sessions } => Ok(crypto_session_detail(sessions)),
        Response::Logging { view } => Ok(logging::show_logging(view)),
        Response::RunningConfig { lines } => Ok(running::running_config(lines)),
        Response::Error { message } => Err(format!("{message}\n")),
    }
}

/// `show crypto session` as IOS prints it for Easy VPN clients.
pub fn crypto_session(sessions: &[CryptoSessionView]) -> String {
    let mut s = String::from("Crypto session current status\n\n");
    for c in sessions {
        let _ = writeln!(s, "Interface: {}", c.interface);
        if let Some(u) = &c.username {
            let _ = writeln!(s, "Username: {u}");
        }
        let _ = writeln!(s, "Group: {}", c.group);
        if let Some(a) = c.assigned {
            let _ = writeln!(s, "Assigned address: {a}");
        }
        let _ = writeln!(s, "Session status: {}", c.status);
        let _ = writeln!(s, "Peer: {} port {}", c.peer, c.peer_port);
        let _ = writeln!(
            s,
            "  IKEv1 SA: local {}/{} remote {}/{} Active",
            c.local, c.peer_port, c.peer, c.peer_port
        );
        for (l, r, n) in &c.flows {
            let _ = writeln!(
                s,
                "  IPSEC FLOW: permit ip {} {}",
                flow_ident(l),
                flow_ident(r)
            );
            let _ = writeln!(s, "        Active SAs: {n}, origin: dynamic crypto map");
        }
        s.push('\n');
    }
    s
}

/// `host A`, `any` or `A/MASK` as IOS prints a flow's side.
fn flow_ident(p: &ProxyId) -> String {
    if p.mask == Ipv4Addr::BROADCAST {
        format!("host {}", p.addr)
    } else if p.mask == Ipv4Addr::UNSPECIFIED {
        "any".to_string()
    } else {
        format!("{}/{}", p.addr, p.mask)
    }
}

/// `show crypto dataplane` (espgw's own screen): the counters the data plane keeps in the
/// SA database, one a line, name then value: every packet it dropped, by reason, then the
/// sa_request events. Drops of an SA's packets are also on that SA in `show crypto ipsec
/// sa` (`#send errors`, `#recv errors`).
pub fn dataplane(counters: &[DataplaneCounterView]) -> String {
    let mut s = String::from("Data plane counters (packets; since the SA database was created):\n");
    for c in counters {
        s += &format!("    {:<28}{:>20}\n", c.name, c.value);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::api::{EspSaStatus, IpsecCounters, IsakmpSaState, IsakmpSaStatus};
    use crate::config::model::{InterfaceMap, IpsecMode, ProxyId};
    use crate::config::parse_config;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    const SLIDES_R1: &str = crate::config::slides::SLIDES_R1;

    fn slides_config() -> crate::config::Config {
        parse_config(SLIDES_R1, &InterfaceMap::parse("Ethernet1/0=out0").unwrap())
            .unwrap()
            .config
    }

    #[test]
    fn crypto_map_of_the_slides_config() {
        let cfg = slides_config();
        let views = CryptoMapView::from_config(&cfg, |_, _| None);
        let got = crypto_map(&views);
        assert_eq!(got, include_str!("../golden/crypto_map.txt"));
        // The slide's lines, word for word (the slide wraps the access-list line and drops
        // the indentation; compare line contents).
        let slide = [
            "Crypto Map \"vpn\" 10 ipsec-isakmp",
            "Peer = 172.16.172.20",
            "Extended IP access list 101",
            "access-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255",
            "Current peer: 172.16.172.20",
            "Security association lifetime: 4608000 kilobytes/3600 seconds",
            "PFS (Y/N): N",
            "Transform sets={ myset, }",
            "Interfaces using crypto map vpn:",
            "Ethernet1/0",
        ];
        let lines: Vec<&str> = got.lines().map(str::trim).collect();
        assert_eq!(lines, slide);
    }

    #[test]
    fn crypto_map_with_pfs_several_sets_and_current_peer() {
        let text = "\
crypto ipsec transform-set a esp-aes esp-sha-hmac
crypto ipsec transform-set b esp-3des esp-md5-hmac
crypto map m 10 ipsec-isakmp
 set peer 192.0.2.1
 set peer 192.0.2.2
 set transform-set a b
 set pfs group14
 set security-association lifetime seconds 120
 match address CRY
crypto map m 20 ipsec-isakmp
 set peer 192.0.2.3
 set transform-set b
ip access-list extended CRY
 permit tcp host 10.0.0.1 any eq www
interface out0
 ip address 192.0.2.100 255.255.255.0
 crypto map m
";
        let cfg = parse_config(text, &InterfaceMap::default()).unwrap().config;
        let views =
            CryptoMapView::from_config(&cfg, |m, s| (m == "m" && s == 10).then(|| ip("192.0.2.2")));
        let want = "\
Crypto Map \"m\" 10 ipsec-isakmp
        Peer = 192.0.2.1
        Peer = 192.0.2.2
        Extended IP access list CRY
            access-list CRY permit tcp host 10.0.0.1 any eq www
        Current peer: 192.0.2.2
        Security association lifetime: 4608000 kilobytes/120 seconds
        PFS (Y/N): Y
        DH group:  group14
        Transform sets={ a, b, }

Crypto Map \"m\" 20 ipsec-isakmp
        Peer = 192.0.2.3
        No matching address list set.
        Current peer: 192.0.2.3
        Security association lifetime: 4608000 kilobytes/3600 seconds
        PFS (Y/N): N
        Transform sets={ b, }
        Interfaces using crypto map m:
                out0
";
        assert_eq!(crypto_map(&views), want);
    }

    #[test]
    fn isakmp_policy_golden() {
        let p = IsakmpPolicy {
            priority: 1,
            encryption: IkeEncryption::TripleDes,
            hash: IkeHash::Md5,
            auth: IkeAuth::PreShare,
            group: DhGroup::Group1,
            lifetime_secs: 86400,
        };
        assert_eq!(
            isakmp_policy(&[p], &IsakmpPolicy::default_suite()),
            include_str!("../golden/isakmp_policy.txt")
        );
    }

    #[test]
    fn isakmp_policy_of_the_slides_config_says_sha_and_group_1() {
        let cfg = slides_config();
        let Response::IsakmpPolicies {
            policies,
            default_suite,
        } = Response::isakmp_policies(&cfg)
        else {
            unreachable!()
        };
        let got = isakmp_policy(&policies, &default_suite);
        assert!(got.contains(
            "Protection suite of priority 1\n        encryption algorithm:   Three key triple DES\n        hash algorithm:         Secure Hash Standard\n        authentication method:  Pre-Shared Key\n        Diffie-Hellman group:   #1 (768 bit)\n"
        ), "{got}");
    }

    #[test]
    fn isakmp_policy_names() {
        let p = IsakmpPolicy {
            priority: 5,
            encryption: IkeEncryption::Aes(crate::config::AesKeySize::K256),
            hash: IkeHash::Sha256,
            auth: IkeAuth::RsaEncr,
            group: DhGroup::Group14,
            lifetime_secs: 3600,
        };
        let got = isakmp_policy(&[p], &IsakmpPolicy::default_suite());
        for l in [
            "        encryption algorithm:   AES - Advanced Encryption Standard (256 bit keys).",
            "        hash algorithm:         Secure Hash Standard 2 (256 bit)",
            "        authentication method:  Rivest-Shamir-Adleman Encryption",
            "        Diffie-Hellman group:   #14 (2048 bit)",
            "        lifetime:               3600 seconds, no volume limit",
        ] {
            assert!(got.lines().any(|g| g == l), "{l:?} not in\n{got}");
        }
    }

    #[test]
    fn crypto_session_screen() {
        let s = [CryptoSessionView {
            interface: "Ethernet1/0".into(),
            username: Some("alice".into()),
            group: "vpngroup".into(),
            assigned: Some(ip("10.99.0.10")),
            status: "UP-ACTIVE".into(),
            peer: ip("172.16.172.20"),
            peer_port: 4500,
            local: ip("172.16.172.10"),
            conn_id: 1001,
            flows: vec![(
                ProxyId::subnet(ip("10.1.1.0"), ip("255.255.255.0")),
                ProxyId::host(ip("10.99.0.10")),
                2,
            )],
        }];
        assert_eq!(
            crypto_session(&s),
            "Crypto session current status\n\n\
             Interface: Ethernet1/0\n\
             Username: alice\n\
             Group: vpngroup\n\
             Assigned address: 10.99.0.10\n\
             Session status: UP-ACTIVE\n\
             Peer: 172.16.172.20 port 4500\n\
             \x20 IKEv1 SA: local 172.16.172.10/4500 remote 172.16.172.20/4500 Active\n\
             \x20 IPSEC FLOW: permit ip 10.1.1.0/255.255.255.0 host 10.99.0.10\n\
             \x20       Active SAs: 2, origin: dynamic crypto map\n\n"
        );
    }

    #[test]
    fn isakmp_sa_golden() {
        let sas = [IsakmpSaView {
            dst: ip("172.16.172.20"),
            src: ip("172.16.172.10"),
            state: IsakmpSaState::QmIdle,
            conn_id: 1001,
            status: IsakmpSaStatus::Active,
        }];
        assert_eq!(isakmp_sa(&sas), include_str!("../golden/isakmp_sa.txt"));
    }

    #[test]
    fn isakmp_sa_columns_hold_for_long_values() {
        let sas = [
            IsakmpSaView {
                dst: ip("255.255.255.255"),
                src: ip("1.2.3.4"),
                state: IsakmpSaState::AgInitExch,
                conn_id: 1002,
                status: IsakmpSaStatus::ActiveDeleted,
            },
            IsakmpSaView {
                dst: ip("10.0.0.1"),
                src: ip("10.0.0.2"),
                state: IsakmpSaState::MmNoState,
                conn_id: 1003,
                status: IsakmpSaStatus::Inactive,
            },
        ];
        let got = isakmp_sa(&sas);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(
            lines[2],
            "255.255.255.255 1.2.3.4         AG_INIT_EXCH      1002 ACTIVE (deleted)"
        );
        assert_eq!(
            lines[3],
            "10.0.0.1        10.0.0.2        MM_NO_STATE       1003"
        );
        // conn-id is right-aligned under its header.
        let header_end = lines[1].find("conn-id").unwrap() + "conn-id".len();
        assert_eq!(&lines[3][header_end - 4..header_end], "1003");
    }

    fn slides_ipsec_view() -> IpsecSaView {
        let esp = |spi, conn_id, flow_id| EspSaView {
            spi,
            transform: "esp-3des esp-md5-hmac".into(),
            mode: IpsecMode::Tunnel,
            udp_encap: false,
            conn_id,
            flow_id,
            crypto_map: "vpn".into(),
            remaining_kb: 4608000,
            remaining_secs: 3542,
            iv_size: 8,
            replay_detection: true,
            status: EspSaStatus::Active,
        };
        let id = |a: &str| ProxyId {
            addr: ip(a),
            mask: ip("255.255.255.0"),
            protocol: 0,
            port: 0,
        };
        IpsecSaView {
            interface: "Ethernet1/0".into(),
            map_tag: "vpn".into(),
            map_seq: 10,
            local_addr: ip("172.16.172.10"),
            local_ident: id("10.1.1.0"),
            remote_ident: id("10.1.2.0"),
            current_peer: ip("172.16.172.20"),
            current_peer_port: 500,
            flags: vec!["origin_is_acl".into()],
            counters: IpsecCounters {
                encaps: 4,
                encrypt: 4,
                digest: 4,
                decaps: 4,
                decrypt: 4,
                verify: 4,
                send_errors: 1,
                recv_errors: 0,
            },
            path_mtu: 1500,
            ip_mtu: 1500,
            ip_mtu_idb: "Ethernet1/0".into(),
            current_outbound_spi: 0xEB84DC85,
            inbound_esp: vec![esp(0x8EAB0B22, 2029, 29)],
            outbound_esp: vec![esp(0xEB84DC85, 2030, 30)],
        }
    }

    #[test]
    fn ipsec_sa_golden() {
        assert_eq!(
            ipsec_sa(&[slides_ipsec_view()]),
            include_str!("../golden/ipsec_sa.txt")
        );
    }

    #[test]
    fn ipsec_sa_nat_t_and_no_sa() {
        let mut v = slides_ipsec_view();
        v.current_peer_port = 4500;
        for sa in v.inbound_esp.iter_mut().chain(v.outbound_esp.iter_mut()) {
            sa.udp_encap = true;
        }
        let got = ipsec_sa(&[v.clone()]);
        assert!(got.contains("   current_peer 172.16.172.20 port 4500\n"));
        assert_eq!(
            got.matches("        in use settings ={Tunnel UDP-Encaps, }\n")
                .count(),
            2
        );

        // Before negotiation: no SAs, spi 0x0(0), the section headers still there.
        let mut idle = slides_ipsec_view();
        idle.inbound_esp.clear();
        idle.outbound_esp.clear();
        idle.current_outbound_spi = 0;
        idle.counters = IpsecCounters::default();
        let got = ipsec_sa(&[idle.clone(), idle]);
        assert!(got.contains("     current outbound spi: 0x0(0)\n"));
        assert!(got.contains("     inbound esp sas:\n\n     inbound ah sas:\n"));
        assert!(got.contains("     outbound esp sas:\n\n     outbound ah sas:\n"));
        // One interface header for two blocks of the same map.
        assert_eq!(got.matches("interface: Ethernet1/0\n").count(), 1);
        assert_eq!(got.matches("   protected vrf: (none)\n").count(), 2);
    }

    #[test]
    fn spi_format() {
        assert_eq!(spi(0x8EAB0B22), "0x8EAB0B22(2393574178)");
        assert_eq!(spi(0x100), "0x100(256)");
        assert_eq!(spi(0), "0x0(0)");
    }

    #[test]
    fn render_messages() {
        assert_eq!(
            render(&Response::done("Crypto ISAKMP debugging is on")).unwrap(),
            "Crypto ISAKMP debugging is on\n"
        );
        assert_eq!(render(&Response::done("")).unwrap(), "");
        assert_eq!(render(&Response::error("% no")).unwrap_err(), "% no\n");
    }
}

#[cfg(test)]
mod tests_ops;
