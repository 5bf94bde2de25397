//! The two-espgw tunnel of xdp_esp.rs for other test files: static SAs
//! written straight into each router's SA database, both dataplanes
//! started, tshark keys for the wire. Include it with
//! `#[path = "xdp_support/tunnel.rs"] mod tunnel;` next to `mod xdp_support;`.
#![allow(dead_code)]

use crate::xdp_support::{wait_for, Proc, Topology};
use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::sadb::{
    AuthKey, Direction, EncKey, Ipv4Prefix, MapName, Mode, ProxyIdentity, SaDb, SaDbWriter,
    SaRecord, SlotId,
};
use espgw_lab::judge::{EspAuth, EspEncr, EspSaKeys};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");
pub const R1_OUT: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
pub const R2_OUT: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);

pub fn net(a: [u8; 4], len: u8) -> Ipv4Prefix {
    Ipv4Prefix::new(Ipv4Addr::from(a), len)
}

pub struct Sa {
    pub spi: u32,
    pub enc: Vec<u8>,
    pub auth: Vec<u8>,
}

pub fn random_key(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

#[allow(clippy::too_many_arguments)]
pub fn record(
    sa: &Sa,
    dir: Direction,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    proxy: ProxyIdentity,
    t: Transform,
    natt: bool,
) -> SaRecord {
    let port = if natt { 4500 } else { 500 };
    SaRecord {
        spi: sa.spi,
        direction: dir,
        mode: Mode::Tunnel,
        local: SocketAddrV4::new(local, port),
        peer: SocketAddrV4::new(peer, port),
        udp_encap: natt,
        esn: false,
        proxy,
        transform: t.id(),
        enc_key: EncKey::new(&sa.enc).unwrap(),
        auth_key: AuthKey::new(&sa.auth).unwrap(),
        lifetime_secs: 3600,
        lifetime_kb: 4_608_000,
        replay_window: 64,
        crypto_map: MapName::new("MYMAP").unwrap(),
        crypto_map_seq: 10,
        conn_id: 1,
        created_at: 1,
    }
}

pub fn tshark_names(t: &Transform) -> (EspEncr, EspAuth) {
    let name = t.ios_name();
    if name.contains("gcm") {
        (EspEncr::AesGcm16, EspAuth::Null)
    } else if name.contains("3des") {
        (EspEncr::TripleDesCbc, EspAuth::HmacMd5_96)
    } else {
        (EspEncr::AesCbc, EspAuth::HmacSha1_96)
    }
}

pub struct Router {
    pub db: SaDbWriter,
    pub records: Vec<SaRecord>,
    pub db_path: PathBuf,
    pub stats: PathBuf,
    pub out_slot: SlotId,
    pub dp: Option<Proc>,
    pub node: &'static str,
    pub acl: String,
    /// More espgw-dataplane arguments.
    pub extra: Vec<String>,
}

impl Router {
    pub fn start(&mut self, t: &Topology) {
        let _ = std::fs::remove_file(&self.stats);
        let mut args: Vec<&str> = vec![
            BIN,
            "--inside",
            "in0",
            "--outside",
            "out0",
            "--cores",
            "0,1",
            "--sadb",
            self.db_path.to_str().unwrap(),
            "--acl",
            &self.acl,
            "--stats",
            self.stats.to_str().unwrap(),
        ];
        args.extend(self.extra.iter().map(String::as_str));
        let dp = t.spawn(self.node, &args, &format!("dataplane-{}.log", self.node));
        self.dp = Some(dp);
        let stats = self.stats.clone();
        wait_for("dataplane stats", Duration::from_secs(10), || {
            crate::xdp_support::stats(&stats)
        });
    }

    pub fn stats(&self) -> serde_json::Value {
        crate::xdp_support::stats(&self.stats).unwrap()
    }

    pub fn log(&self) -> String {
        self.dp.as_ref().map(|p| p.log_text()).unwrap_or_default()
    }
}

/// Sets up the lab, both SA databases and both dataplanes.
/// `install`: put the SAs into the regions before the dataplanes start (else
/// they are only prepared in `Router::records`).
pub fn tunnel(
    tag: &str,
    transform: &str,
    natt: bool,
    install: bool,
) -> (Topology, Router, Router, Vec<EspSaKeys>, Transform) {
    tunnel_on(Topology::with_wire(tag, 2), transform, natt, install)
}

pub fn tunnel_on(
    lab: Topology,
    transform: &str,
    natt: bool,
    install: bool,
) -> (Topology, Router, Router, Vec<EspSaKeys>, Transform) {
    tunnel_with(lab, transform, natt, install, &[])
}

/// [`tunnel_on`] with more espgw-dataplane arguments for both routers.
pub fn tunnel_with(
    lab: Topology,
    transform: &str,
    natt: bool,
    install: bool,
    extra: &[&str],
) -> (Topology, Router, Router, Vec<EspSaKeys>, Transform) {
    let t = Transform::parse(transform).unwrap();
    let a = Sa {
        spi: 0x1000_0000 | rand::random::<u16>() as u32,
        enc: random_key(t.enc_key_len()),
        auth: random_key(t.auth_key_len()),
    };
    let b = Sa {
        spi: 0x2000_0000 | rand::random::<u16>() as u32,
        enc: random_key(t.enc_key_len()),
        auth: random_key(t.auth_key_len()),
    };
    let p1 = ProxyIdentity {
        local: net([10, 1, 1, 0], 24),
        remote: net([10, 1, 2, 0], 24),
        protocol: 0,
        local_port: 0,
        remote_port: 0,
    };
    let p2 = ProxyIdentity {
        local: p1.remote,
        remote: p1.local,
        ..p1
    };
    let mk = |name: &str, out: SaRecord, inb: SaRecord, node: &'static str, acl: &str| {
        let path = lab.dir.join(format!("{name}.sadb"));
        let mut db = SaDb::create(&path, 64).unwrap();
        let out_slot = if install {
            let s = db.install(&out).unwrap();
            db.install(&inb).unwrap();
            s
        } else {
            SlotId(0)
        };
        Router {
            db,
            records: vec![out, inb],
            db_path: path,
            stats: lab.dir.join(format!("{name}-stats.json")),
            out_slot,
            dp: None,
            node,
            acl: acl.to_string(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
        }
    };
    let mut r1 = mk(
        "r1",
        record(&a, Direction::Outbound, R1_OUT, R2_OUT, p1, t, natt),
        record(&b, Direction::Inbound, R1_OUT, R2_OUT, p1, t, natt),
        "r1",
        "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map MYMAP",
    );
    let mut r2 = mk(
        "r2",
        record(&b, Direction::Outbound, R2_OUT, R1_OUT, p2, t, natt),
        record(&a, Direction::Inbound, R2_OUT, R1_OUT, p2, t, natt),
        "r2",
        "permit ip 10.1.2.0/24 10.1.1.0/24 policy 10 map MYMAP",
    );
    r1.start(&lab);
    r2.start(&lab);
    let (encr, auth) = tshark_names(&t);
    let keys = vec![
        EspSaKeys {
            spi: a.spi,
            src: R1_OUT.to_string(),
            dst: R2_OUT.to_string(),
            encr,
            enc_key: a.enc.clone(),
            auth,
            auth_key: a.auth.clone(),
        },
        EspSaKeys {
            spi: b.spi,
            src: R2_OUT.to_string(),
            dst: R1_OUT.to_string(),
            encr,
            enc_key: b.enc.clone(),
            auth,
            auth_key: b.auth.clone(),
        },
    ];
    (lab, r1, r2, keys, t)
}

pub fn ping(lab: &Topology, n: u32) -> usize {
    let out = lab.exec_output(
        "hA",
        &[
            "ping",
            "-c",
            &n.to_string(),
            "-i",
            "0.1",
            "-W",
            "1",
            "10.1.2.2",
        ],
    );
    crate::xdp_support::received(&out)
}

pub fn warm_up(lab: &Topology) {
    for _ in 0..20 {
        let out = lab.exec_output("hA", &["ping", "-c", "1", "-W", "1", "10.1.2.2"]);
        if out.status.success() {
            return;
        }
    }
    panic!("no reply through the tunnel after 20 tries");
}

/// tcpdump on the wire namespace's side of the R1–R2 link (an espgw router's
/// own taps miss AF_XDP traffic), once it listens: the process and its pcap.
pub fn capture_wire(lab: &Topology) -> (Proc, PathBuf) {
    capture_wire_buffered(lab, 0)
}

/// [`capture_wire`] with a capture buffer of `kib` KiB (0: tcpdump's default).
pub fn capture_wire_buffered(lab: &Topology, kib: u32) -> (Proc, PathBuf) {
    let pcap = lab.dir.join("wire.pcap");
    let kib = kib.to_string();
    let mut args = vec!["tcpdump", "--immediate-mode", "-U", "-n", "-i", "w1"];
    if kib != "0" {
        args.extend(["-B", kib.as_str()]);
    }
    args.extend(["-w", pcap.to_str().unwrap()]);
    let cap = lab.spawn("wire", &args, "tcpdump.log");
    wait_for("tcpdump", Duration::from_secs(5), || {
        cap.log_text().contains("listening").then_some(())
    });
    (cap, pcap)
}
