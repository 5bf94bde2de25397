//! Transaction Mode, sans-IO: the server and the client against each other, every message
//! sealed by one side's [`TxnCrypto`] and opened by the other's (the keys of one phase-1
//! SA), the state names checked against IOS's.

use super::*;
use crate::ike::config::Phase1Mode;
use crate::ike::crypto::{DhGroup, EncAlg, HashAlg, Random};
use crate::ike::endpoint::phase1::Negotiated;
use crate::ike::pool::Pools;
use crate::ike::remote::{AddressMode, ClientGroup, RemoteAccessConfig, UserSecret};
use attributes::SplitNet;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

struct SeqRng(u32);
impl Random for SeqRng {
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *x = (self.0 >> 16) as u8;
        }
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn keys(enc: EncAlg) -> IsakmpKeys {
    let z = |n: usize, b: u8| Zeroizing::new(vec![b; n]);
    IsakmpKeys {
        neg: Negotiated {
            enc,
            hash: HashAlg::Sha1,
            group: DhGroup::Modp1024,
            lifetime: 86400,
            auth: Default::default(),
        },
        skeyid: z(20, 1),
        d: z(20, 2),
        a: z(20, 3),
        ka: z(enc.key_len(), 4),
        iv: vec![5; enc.block_len()],
    }
}

fn sa(initiator: bool) -> P1Sa {
    let a: SocketAddr = "172.16.172.10:500".parse().unwrap();
    let b: SocketAddr = "198.51.100.7:500".parse().unwrap();
    let (l, r) = if initiator { (b, a) } else { (a, b) };
    let mut s = P1Sa::new(
        Instant::now(),
        1001,
        initiator,
        Phase1Mode::Aggressive,
        l,
        r,
    );
    s.icookie = [0x11; 8];
    s.rcookie = [0x22; 8];
    s
}

fn group() -> ClientGroup {
    ClientGroup {
        name: "vpngroup".into(),
        key: Zeroizing::new(b"grouPkey".to_vec()),
        pool: Some("ezpool".into()),
        dns: vec![ip("10.1.1.53")],
        wins: vec![ip("10.1.1.55")],
        domain: Some("example.com".into()),
        split_include: vec![SplitNet::network(ip("10.1.1.0"), ip("255.255.255.0"))],
        pfs: true,
        save_password: true,
        banner: Some("Welcome".into()),
        max_users: None,
    }
}

fn ra(address: AddressMode, pool: (&str, &str)) -> RemoteAccessConfig {
    let mut groups = BTreeMap::new();
    groups.insert("vpngroup".into(), group());
    let mut users = BTreeMap::new();
    users.insert(
        "alice".into(),
        UserSecret::Clear(Zeroizing::new(b"wonderland".to_vec())),
    );
    let mut pools = BTreeMap::new();
    pools.insert("ezpool".into(), vec![(ip(pool.0), ip(pool.1))]);
    RemoteAccessConfig {
        groups,
        users,
        pools,
        xauth: true,
        address,
        dynamic: vec![],
        xauth_timeout: Duration::from_secs(60),
        xauth_attempts: 3,
    }
}

fn pools_of(c: &RemoteAccessConfig) -> Pools {
    Pools::new(c.pools.iter().map(|(n, r)| (n.as_str(), &r[..])))
}

/// The server's context for a client whose lease owner is `[owner; 8]`.
fn ctx<'a>(
    cfg: &'a RemoteAccessConfig,
    g: &'a ClientGroup,
    pools: &'a mut Pools,
    owner: u8,
    rng: &'a mut SeqRng,
) -> ServerCtx<'a> {
    ServerCtx {
        cfg,
        group: g,
        pools,
        owner: [owner; 8],
        rng,
        peer: ip("198.51.100.7"),
        version: "espgw",
    }
}

/// One client against the server over encrypted Transaction Mode messages.
struct Pair {
    k: IsakmpKeys,
    server_sa: P1Sa,
    client_sa: P1Sa,
    server_crypto: TxnCrypto,
    client_crypto: TxnCrypto,
    server: Server,
    client: Client,
    rng: SeqRng,
    outs: Vec<ServerOut>,
    /// Bytes on the wire, in order (server's and client's).
    wire: Vec<Vec<u8>>,
}

impl Pair {
    fn start(
        cfg: &RemoteAccessConfig,
        pools: &mut Pools,
        password: &str,
        enc: EncAlg,
        owner: u8,
    ) -> Pair {
        let mut rng = SeqRng(owner as u32);
        let g = group();
        let mut ctx = ctx(cfg, &g, pools, owner, &mut rng);
        let (server, outs) = Server::start(&mut ctx);
        let mut p = Pair {
            k: keys(enc),
            server_sa: sa(false),
            client_sa: sa(true),
            server_crypto: TxnCrypto::default(),
            client_crypto: TxnCrypto::default(),
            server,
            client: Client::new("alice", Zeroizing::new(password.as_bytes().to_vec())),
            rng,
            outs: Vec::new(),
            wire: Vec::new(),
        };
        p.server_sends(cfg, pools, outs, owner);
        p
    }

    /// Delivers the server's messages to the client and the client's answers back, until
    /// neither has anything to send.
    fn server_sends(
        &mut self,
        cfg: &RemoteAccessConfig,
        pools: &mut Pools,
        outs: Vec<ServerOut>,
        owner: u8,
    ) {
        let mut queue = outs;
        while !queue.is_empty() {
            let mut to_server = Vec::new();
            for o in queue.drain(..) {
                if let ServerOut::Send { mid, attr } = &o {
                    let bytes = self
                        .server_crypto
                        .seal(&self.k, &self.server_sa, *mid, attr);
                    self.wire.push(bytes.clone());
                    let hdr = HeaderRepr::parse(&Header::new_checked(&bytes[..]).unwrap()).unwrap();
                    let m = self.client_crypto.open(&self.k, &hdr, &bytes).unwrap();
                    assert_eq!(&m.attr, attr);
                    for (mid, a) in self.client.handle(&mut self.rng, &m).unwrap() {
                        let b = self.client_crypto.seal(&self.k, &self.client_sa, mid, &a);
                        self.wire.push(b.clone());
                        to_server.push(b);
                    }
                }
                self.outs.push(o);
            }
            for b in to_server {
                let hdr = HeaderRepr::parse(&Header::new_checked(&b[..]).unwrap()).unwrap();
                assert_eq!(hdr.exchange, ExchangeType::Transaction);
                let m = self.server_crypto.open(&self.k, &hdr, &b).unwrap();
                let g = group();
                let mut ctx = ctx(cfg, &g, pools, owner, &mut self.rng);
                let o = self.server.handle(&mut ctx, &m).unwrap();
                queue.extend(o);
            }
        }
    }

    fn transitions(&self) -> Vec<(&'static str, &'static str)> {
        self.outs
            .iter()
            .filter_map(|o| match o {
                ServerOut::Transition { from, to } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    fn failed(&self) -> bool {
        self.outs
            .iter()
            .any(|o| matches!(o, ServerOut::Failed { .. }))
    }
}

#[test]
fn xauth_then_mode_config_pull() {
    let cfg = ra(AddressMode::Respond, ("10.99.0.10", "10.99.0.20"));
    let mut pools = pools_of(&cfg);
    for enc in [EncAlg::Des3, EncAlg::Aes(128), EncAlg::Aes(256)] {
        let p = Pair::start(&cfg, &mut pools, "wonderland", enc, 1);
        assert!(p.server.is_configured() && p.client.is_configured());
        assert_eq!(p.server.user.as_deref(), Some("alice"));
        let mc = &p.client.config;
        assert_eq!(mc.address, Some(ip("10.99.0.10")));
        assert_eq!(mc.netmask, Some(ip("255.255.255.255")));
        assert_eq!(mc.dns, vec![ip("10.1.1.53")]);
        assert_eq!(mc.nbns, vec![ip("10.1.1.55")]);
        assert_eq!(mc.banner.as_deref(), Some("Welcome"));
        assert_eq!(mc.domain.as_deref(), Some("example.com"));
        assert_eq!(mc.save_password, Some(true));
        assert_eq!(mc.pfs, Some(true));
        assert_eq!(
            mc.split_include,
            vec![SplitNet::network(ip("10.1.1.0"), ip("255.255.255.0"))]
        );
        assert_eq!(mc.version.as_deref(), Some("espgw"));
        assert_eq!(
            p.transitions(),
            vec![
                ("IKE_P1_COMPLETE", "IKE_XAUTH_REQ_SENT"),
                ("IKE_XAUTH_REQ_SENT", "IKE_XAUTH_REPLY_ATTR"),
                ("IKE_XAUTH_REPLY_ATTR", "IKE_XAUTH_SET_SENT"),
                ("IKE_XAUTH_SET_SENT", "IKE_P1_COMPLETE"),
                ("IKE_P1_COMPLETE", "IKE_CONFIG_AUTHOR_AAA_AWAIT"),
                ("IKE_CONFIG_AUTHOR_AAA_AWAIT", "IKE_P1_COMPLETE"),
            ]
        );
        // REQUEST, REPLY, SET, ACK, (Mode Config) REQUEST, REPLY.
        assert_eq!(p.wire.len(), 6);
        let mids: Vec<u32> = p
            .wire
            .iter()
            .map(|b| u32::from_be_bytes(b[20..24].try_into().unwrap()))
            .collect();
        assert_eq!(mids[0], mids[1]);
        assert_eq!(mids[2], mids[3]);
        assert_eq!(mids[4], mids[5]);
        assert!(mids[0] != mids[2] && mids[2] != mids[4]);
        // The same owner (a retransmitted request) keeps its one address.
        assert_eq!(pools.leased(), 1);
    }
}

#[test]
fn wrong_password_is_asked_again_then_refused() {
    let cfg = ra(AddressMode::Respond, ("10.99.0.10", "10.99.0.20"));
    let mut pools = pools_of(&cfg);
    let p = Pair::start(&cfg, &mut pools, "rabbit", EncAlg::Aes(128), 2);
    assert!(p.failed());
    assert!(!p.client.is_configured());
    assert_eq!(p.client.attempts, 3, "IOS asks three times");
    let fails = p
        .outs
        .iter()
        .filter(|o| matches!(o, ServerOut::Syslog(s) if s.to_string() == "%CRYPTO-6-IKMP_AUTH_FAIL: Authentication method 65001 failed with host 198.51.100.7"))
        .count();
    assert_eq!(fails, 3);
    // Request (x3 with replies), SET FAIL, ACK; no Mode Config.
    assert_eq!(p.wire.len(), 8);
    assert_eq!(
        pools.leased(),
        0,
        "no address for a client that failed XAUTH"
    );
    assert!(p.server.user.is_none());
    let t = p.transitions();
    assert_eq!(t[0], ("IKE_P1_COMPLETE", "IKE_XAUTH_REQ_SENT"));
    assert_eq!(t[2], ("IKE_XAUTH_REPLY_ATTR", "IKE_XAUTH_REQ_SENT"));
    assert_eq!(*t.last().unwrap(), ("IKE_XAUTH_SET_SENT", "IKE_DEST_SA"));
}

#[test]
fn unknown_user_is_refused_like_a_wrong_password() {
    let mut cfg = ra(AddressMode::Respond, ("10.99.0.10", "10.99.0.20"));
    cfg.users.clear();
    let mut pools = pools_of(&cfg);
    let p = Pair::start(&cfg, &mut pools, "wonderland", EncAlg::Aes(128), 3);
    assert!(p.failed() && pools.leased() == 0);
}

#[test]
fn exhausted_pool_fails_the_second_client_cleanly() {
    let cfg = ra(AddressMode::Respond, ("10.99.0.10", "10.99.0.10"));
    let mut pools = pools_of(&cfg);
    let mut first = Pair::start(&cfg, &mut pools, "wonderland", EncAlg::Aes(128), 4);
    assert_eq!(first.client.config.address, Some(ip("10.99.0.10")));
    let second = Pair::start(&cfg, &mut pools, "wonderland", EncAlg::Aes(128), 5);
    assert!(second.failed());
    assert!(second.outs.iter().any(|o| matches!(o, ServerOut::Syslog(m) if m.to_string()
        == "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Config mode failed with peer at 198.51.100.7")));
    assert!(second.server.addr.is_none());
    assert_eq!(pools.leased(), 1);
    // The first client goes: its address is back and the next client gets it.
    assert_eq!(
        first.server.release(&mut pools, [4; 8]),
        Some(ip("10.99.0.10"))
    );
    assert_eq!(pools.leased(), 0);
    let third = Pair::start(&cfg, &mut pools, "wonderland", EncAlg::Aes(128), 6);
    assert_eq!(third.client.config.address, Some(ip("10.99.0.10")));
}

#[test]
fn mode_config_initiate_pushes_a_set() {
    let mut cfg = ra(AddressMode::Initiate, ("10.99.0.10", "10.99.0.20"));
    cfg.xauth = false;
    let mut pools = pools_of(&cfg);
    let p = Pair::start(&cfg, &mut pools, "", EncAlg::Des3, 7);
    assert!(p.server.is_configured() && p.client.is_configured());
    assert_eq!(p.client.config.address, Some(ip("10.99.0.10")));
    assert_eq!(
        p.transitions(),
        vec![
            ("IKE_P1_COMPLETE", "IKE_CONFIG_MODE_SET_SENT"),
            ("IKE_CONFIG_MODE_SET_SENT", "IKE_P1_COMPLETE"),
        ]
    );
    assert_eq!(p.wire.len(), 2);
}

#[test]
fn iv_chain_per_message_id_and_no_move_on_failure() {
    let k = keys(EncAlg::Aes(128));
    let (s, c) = (sa(false), sa(true));
    let mut tx = TxnCrypto::default();
    let mut rx = TxnCrypto::default();
    let a = AttrPayload {
        cfg_type: cfg_type::REQUEST,
        identifier: 7,
        attrs: vec![],
    };
    let m1 = tx.seal(&k, &s, 0x1234, &a);
    // The first message of an ID uses hash(last phase-1 block | M-ID).
    let iv0 = k.phase2_iv(0x1234);
    let mut pt = m1[HEADER_LEN..].to_vec();
    k.neg.enc.cbc_decrypt(&k.ka, &iv0, &mut pt);
    assert_eq!(
        pt[0],
        PayloadType::Attr.code(),
        "HASH's next payload is ATTR"
    );
    // A tampered copy fails its HASH and leaves the IV where it was.
    let mut bad = m1.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    let hdr = HeaderRepr::parse(&Header::new_checked(&m1[..]).unwrap()).unwrap();
    assert!(rx.open(&k, &hdr, &bad).is_err());
    assert_eq!(rx.open(&k, &hdr, &m1).unwrap().attr, a);
    // The answer (same ID) continues from the last block of m1, in both directions.
    let m2 = rx.seal(&k, &c, 0x1234, &a);
    let mut pt2 = m2[HEADER_LEN..].to_vec();
    k.neg.enc.cbc_decrypt(&k.ka, &m1[m1.len() - 16..], &mut pt2);
    assert_eq!(pt2[0], PayloadType::Attr.code());
    let hdr2 = HeaderRepr::parse(&Header::new_checked(&m2[..]).unwrap()).unwrap();
    assert_eq!(tx.open(&k, &hdr2, &m2).unwrap().attr, a);
    // Another ID starts its own chain.
    let m3 = tx.seal(&k, &s, 0x5678, &a);
    let hdr3 = HeaderRepr::parse(&Header::new_checked(&m3[..]).unwrap()).unwrap();
    assert_eq!(rx.open(&k, &hdr3, &m3).unwrap().mid, 0x5678);
    // A message in the clear is refused.
    let mut clear = hdr3;
    clear.flags = 0;
    assert!(rx.open(&k, &clear, &m3).is_err());
}

#[test]
fn hash_covers_the_attribute_payload_as_rfc2409_5_7() {
    // HASH = prf(SKEYID_a, M-ID | ATTR payload with its generic header), checked with an
    // independent HMAC-SHA1 computation.
    use hmac::{Hmac, KeyInit, Mac};
    let k = keys(EncAlg::Aes(128));
    let a = AttrPayload {
        cfg_type: cfg_type::SET,
        identifier: 0x0102,
        attrs: vec![attributes::CfgAttr::XauthStatus(Some(1)).to_attr()],
    };
    let mut tx = TxnCrypto::default();
    let m = tx.seal(&k, &sa(false), 0xdeadbeef, &a);
    let mut pt = m[HEADER_LEN..].to_vec();
    k.neg
        .enc
        .cbc_decrypt(&k.ka, &k.phase2_iv(0xdeadbeef), &mut pt);
    let hash_len = u16::from_be_bytes([pt[2], pt[3]]) as usize - 4;
    let attr_start = 4 + hash_len;
    let attr_len = u16::from_be_bytes([pt[attr_start + 2], pt[attr_start + 3]]) as usize;
    // ATTR: generic header, type SET, reserved, identifier, one TV attribute.
    assert_eq!(
        &pt[attr_start..attr_start + attr_len],
        &[0, 0, 0, 12, 3, 0, 1, 2, 0xc0, 0x8f, 0, 1]
    );
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&k.a).unwrap();
    mac.update(&0xdeadbeefu32.to_be_bytes());
    mac.update(&pt[attr_start..attr_start + attr_len]);
    assert_eq!(&pt[4..4 + hash_len], &mac.finalize().into_bytes()[..]);
}

#[test]
fn mode_config_pull_without_xauth() {
    // No `client authentication list`: the server waits, the client asks.
    let mut cfg = ra(AddressMode::Respond, ("10.99.0.10", "10.99.0.20"));
    cfg.xauth = false;
    let mut pools = pools_of(&cfg);
    let mut p = Pair::start(&cfg, &mut pools, "", EncAlg::Aes(128), 8);
    assert!(p.wire.is_empty() && p.transitions().is_empty());
    assert_eq!(p.server.state.ios(), "IKE_P1_COMPLETE");
    assert_eq!(p.client.state.ios(), "IKE_P1_COMPLETE");
    let (mid, req) = p.client.start_without_xauth(&mut p.rng);
    assert_eq!(p.client.state.ios(), "IKE_CONFIG_MODE_REQ_SENT");
    let b = p.client_crypto.seal(&p.k, &p.client_sa, mid, &req);
    let hdr = HeaderRepr::parse(&Header::new_checked(&b[..]).unwrap()).unwrap();
    let m = p.server_crypto.open(&p.k, &hdr, &b).unwrap();
    let g = group();
    let mut ctx = ctx(&cfg, &g, &mut pools, 8, &mut p.rng);
    let outs = p.server.handle(&mut ctx, &m).unwrap();
    assert!(outs.contains(&ServerOut::Configured {
        addr: ip("10.99.0.10")
    }));
    let reply = outs
        .iter()
        .find_map(|o| match o {
            ServerOut::Send { mid, attr } => Some((*mid, attr.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(reply.0, mid);
    assert_eq!(
        reply.1.identifier, req.identifier,
        "the REPLY answers the REQUEST's identifier"
    );
    let b = p.server_crypto.seal(&p.k, &p.server_sa, reply.0, &reply.1);
    let hdr = HeaderRepr::parse(&Header::new_checked(&b[..]).unwrap()).unwrap();
    let m = p.client_crypto.open(&p.k, &hdr, &b).unwrap();
    assert!(p.client.handle(&mut p.rng, &m).unwrap().is_empty());
    assert!(p.client.is_configured());
    assert_eq!(p.client.config.address, Some(ip("10.99.0.10")));
}
