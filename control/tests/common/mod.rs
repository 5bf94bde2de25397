//! Shared pieces of the interop tests: espgw-control as R1 in the lab, strongSwan as R2.

#![allow(dead_code)]

pub mod rsa;

use espgw_control::cli::api::{Client, Request, Response};
use espgw_lab::{EspSaKeys, Ikev1Keys, Lab, LabProcess, Node};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// An IOS configuration for R1 facing strongSwan.
pub struct IosConf {
    /// `encr` of the policy (`3des` or `aes 128`).
    pub encr: &'static str,
    /// `hash md5|sha`.
    pub hash: &'static str,
    pub group: u32,
    /// Transform set line after the name.
    pub transform: &'static str,
    pub pfs: Option<u32>,
    pub psk: &'static str,
    pub lifetime_secs: Option<u32>,
    pub keepalive: Option<(u32, u32)>,
    /// `lifetime` of the ISAKMP policy.
    pub isakmp_lifetime: Option<u32>,
}

impl IosConf {
    pub fn text(&self) -> String {
        let mut s = String::new();
        s += "hostname R1\n!\ncrypto isakmp policy 10\n";
        s += &format!(
            " encr {}\n hash {}\n authentication pre-share\n group {}\n",
            self.encr, self.hash, self.group
        );
        if let Some(l) = self.isakmp_lifetime {
            s += &format!(" lifetime {l}\n");
        }
        s += &format!("crypto isakmp key {} address 172.16.172.20\n", self.psk);
        if let Some((i, r)) = self.keepalive {
            s += &format!("crypto isakmp keepalive {i} {r} periodic\n");
        }
        s += &format!(
            "!\ncrypto ipsec transform-set myset {}\n mode tunnel\n!\n",
            self.transform
        );
        s += "crypto map vpn 10 ipsec-isakmp\n set peer 172.16.172.20\n set transform-set myset\n match address 101\n";
        if let Some(g) = self.pfs {
            s += &format!(" set pfs group{g}\n");
        }
        if let Some(l) = self.lifetime_secs {
            s += &format!(" set security-association lifetime seconds {l}\n");
        }
        s += "!\ninterface Ethernet0/0\n ip address 10.1.1.1 255.255.255.0\n!\n";
        s += "interface Ethernet1/0\n ip address 172.16.172.10 255.255.255.240\n crypto map vpn\n!\n";
        s += "access-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n!\nend\n";
        s
    }
}

/// espgw-control running in R1's namespace.
pub struct Espgw {
    pub proc: LabProcess,
    pub socket: PathBuf,
    pub keylog: PathBuf,
    /// The IOS configuration it runs (espgw-dataplane reads the same file).
    pub config: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl Espgw {
    pub fn start(lab: &Lab, conf: &IosConf, aggressive: bool) -> Espgw {
        Espgw::start_with(lab, conf, aggressive, None)
    }

    /// With the SA database at `sadb`.
    pub fn start_full(lab: &Lab, conf: &IosConf, sadb: &std::path::Path) -> Espgw {
        Espgw::start_inner(lab, conf, false, Some(sadb))
    }

    /// `sadb`: path of the shared-memory SA database (None: `--no-sadb`).
    pub fn start_with(
        lab: &Lab,
        conf: &IosConf,
        aggressive: bool,
        sadb: Option<&std::path::Path>,
    ) -> Espgw {
        Espgw::start_inner(lab, conf, aggressive, sadb)
    }

    fn start_inner(
        lab: &Lab,
        conf: &IosConf,
        aggressive: bool,
        sadb: Option<&std::path::Path>,
    ) -> Espgw {
        let mut text = conf.text();
        if aggressive {
            // Aggressive Mode the IOS way: a `crypto isakmp peer` block.
            text = text.replace(
                "!\ncrypto ipsec transform-set",
                &format!(
                    "crypto isakmp peer address 172.16.172.20\n set aggressive-mode password {}\n \
                     set aggressive-mode client-endpoint ipv4-address 172.16.172.10\n!\ncrypto ipsec transform-set",
                    conf.psk
                ),
            );
            assert!(text.contains("set aggressive-mode password"));
        }
        let sadb_args: Vec<&str> = match sadb {
            Some(p) => vec!["--sadb", p.to_str().unwrap()],
            None => vec!["--no-sadb"],
        };
        Espgw::start_text(lab, &text, &sadb_args)
    }

    /// espgw-control with configuration `text` and `extra` arguments (`--no-sadb`,
    /// `--key-store DIR` …).
    pub fn start_text(lab: &Lab, text: &str, extra: &[&str]) -> Espgw {
        let dir = lab.dir();
        let cfg = dir.join("r1-espgw.conf");
        std::fs::write(&cfg, text).unwrap();
        let socket = dir.join("espgw-control.sock");
        let keylog = dir.join("espgw-keylog.txt");
        let bin = env!("CARGO_BIN_EXE_espgw-control");
        let mut args = vec![
            bin,
            "--config",
            cfg.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "--keylog",
            keylog.to_str().unwrap(),
            "--interface-map",
            "Ethernet0/0=in0,Ethernet1/0=out0",
            "--debug",
            "isakmp,ipsec",
        ];
        args.extend_from_slice(extra);
        let proc = lab.spawn(Node::R1, &args).expect("spawn espgw-control");
        let t0 = Instant::now();
        while !socket.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "espgw-control did not start:\n{}",
                proc.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Espgw {
            proc,
            socket,
            keylog,
            config: cfg,
            rt,
        }
    }

    pub fn request(&self, r: Request) -> Response {
        self.rt.block_on(async {
            let mut c = Client::connect(&self.socket)
                .await
                .expect("connect control socket");
            c.request(&r).await.expect("request")
        })
    }

    /// Runs the operator CLI `espgw --socket S ARGS…` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "espgw {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `#pkts encaps` and `#pkts decaps` summed over `show crypto ipsec sa`.
    pub fn ipsec_packet_counts(&self) -> (u64, u64) {
        espgw_lab::espgw::packet_counts(&self.cli(&["show", "crypto", "ipsec", "sa"]))
    }

    /// `espgw --socket S ARGS…` whatever its exit status (commands that must fail).
    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_espgw"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run espgw")
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// (inbound spi, outbound spi) pairs from `show crypto ipsec sa`.
    pub fn spis(&self) -> Vec<(u32, u32)> {
        match self.request(Request::ShowIpsecSa) {
            Response::IpsecSas { sas } => sas
                .iter()
                .flat_map(|v| {
                    v.inbound_esp
                        .iter()
                        .zip(v.outbound_esp.iter())
                        .map(|(i, o)| (i.spi, o.spi))
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    pub fn wait_spis(&self, n: usize, timeout: Duration) -> Vec<(u32, u32)> {
        let t0 = Instant::now();
        loop {
            let s = self.spis();
            if s.len() >= n {
                return s;
            }
            assert!(
                t0.elapsed() < timeout,
                "no IPsec SAs on espgw after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// tshark's verdict on `pcap` with the keys of espgw's key log.
    pub fn judge(&self, pcap: &std::path::Path) -> espgw_lab::Verdicts {
        let (keys, ike) = self.keys();
        espgw_lab::judge(pcap, &keys, &ike).expect("tshark")
    }

    /// Keys from the key log, as the tshark judge takes them (the lab's parser of the
    /// key-log format, so every transform tshark knows comes through).
    pub fn keys(&self) -> (Vec<EspSaKeys>, Vec<Ikev1Keys>) {
        let text = std::fs::read_to_string(&self.keylog).unwrap_or_default();
        espgw_lab::judge::parse_keylog(&text)
    }
}

/// Starts the negotiation from espgw (`Initiate vpn 10`) or from strongSwan and waits (30 s)
/// until strongSwan has the IKE and CHILD SA; panics with both logs otherwise.
pub fn establish(
    espgw: &Espgw,
    swan: &espgw_lab::StrongSwan,
    espgw_initiates: bool,
) -> espgw_lab::IkeSaInfo {
    if espgw_initiates {
        match espgw.request(Request::Initiate {
            map: "vpn".into(),
            seq: 10,
        }) {
            Response::Done { .. } => {}
            other => panic!("initiate: {other:?}"),
        }
    } else {
        swan.initiate().unwrap_or_else(|e| {
            panic!(
                "swanctl initiate: {e}\n{}\n--- espgw ---\n{}",
                swan.log(),
                espgw.log()
            )
        });
    }
    swan.wait_established(Duration::from_secs(30))
        .unwrap_or_else(|e| {
            panic!(
                "strongSwan not established: {e}\n--- charon ---\n{}\n--- espgw ---\n{}",
                swan.log(),
                espgw.log()
            )
        })
}

/// espgw-dataplane on R1 with espgw-control's configuration and SA database `db`; waits
/// until it writes its statistics file.
pub fn start_dataplane(lab: &Lab, espgw: &Espgw, db: &std::path::Path) -> LabProcess {
    let dp_bin = dataplane_bin();
    let stats = lab.dir().join("r1-stats.json");
    let dp = lab
        .spawn(
            Node::R1,
            &[
                dp_bin.to_str().unwrap(),
                // The same configuration as espgw-control: the interface with the crypto
                // map is the outside, the other the inside.
                "--config",
                espgw.config.to_str().unwrap(),
                "--interface-map",
                "Ethernet0/0=in0,Ethernet1/0=out0",
                "--sadb",
                db.to_str().unwrap(),
                "--stats",
                stats.to_str().unwrap(),
            ],
        )
        .expect("dataplane");
    lab.wait_for("dataplane stats", Duration::from_secs(15), || {
        stats.exists()
    })
    .unwrap_or_else(|e| panic!("dataplane: {e}\n{}", dp.log()));
    dp
}

/// espgw-control and espgw from this package, espgw-dataplane (re)built by
/// [`dataplane_bin`] so a stale binary is never tested.
pub fn bins() -> espgw_lab::EspgwBins {
    espgw_lab::EspgwBins {
        control: PathBuf::from(env!("CARGO_BIN_EXE_espgw-control")),
        cli: PathBuf::from(env!("CARGO_BIN_EXE_espgw")),
        dataplane: dataplane_bin(),
    }
}

/// The espgw-dataplane binary (another package of the workspace): (re)built so it is never
/// stale (a no-op when it is up to date).
pub fn dataplane_bin() -> PathBuf {
    workspace_bin("espgw-dataplane", "espgw-dataplane")
}

/// Binary `bin` of workspace package `package`, (re)built with this test's profile.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>
    let path = dir.join(bin);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", package, "--bin", bin]);
    if dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    let st = cmd
        .status()
        .unwrap_or_else(|e| panic!("cargo build {package}: {e}"));
    assert!(st.success(), "building {bin} failed");
    path
}

/// Lines of `tcpdump -r PCAP -n FILTER` (outer headers only).
pub fn pcap_count(pcap: &std::path::Path, filter: &str) -> u64 {
    let out = std::process::Command::new("tcpdump")
        .args(["-r"])
        .arg(pcap)
        .args(["-n", filter])
        .output()
        .expect("tcpdump -r");
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

/// `tx.dropped` of `node`'s out0: frames the router sent that its veth could not hand to
/// the wire (the peer's queue was full on a loaded machine), so a capture on the wire
/// never saw them and a wire count must allow for them.
pub fn outside_tx_dropped(lab: &Lab, node: Node) -> u64 {
    let out = lab
        .run(node, &["ip", "-s", "-j", "link", "show", "out0"])
        .expect("ip -s link show out0");
    let j: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
    j[0]["stats64"]["tx"]["dropped"].as_u64().unwrap_or(0)
}

/// Polls `f` every 100 ms for up to `limit`; whether it held (checked once more at the end).
pub fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Whether one ping from `from` to `to` is answered (1 s each try) within `limit`: the
/// first interesting packet of a tunnel, which may have to wait for the negotiation.
pub fn ping_through(lab: &Lab, from: Node, to: &str, limit: Duration) -> bool {
    let once = ["ping", "-n", "-q", "-c", "1", "-W", "1", to];
    wait(limit, || {
        lab.exec(from, &once).is_ok_and(|o| o.status.success())
    })
}

/// Whether espgw-control's log shows `what` within `timeout`.
pub fn wait_log(espgw: &Espgw, what: &str, timeout: Duration) -> bool {
    wait(timeout, || espgw.log().contains(what))
}

/// `n` pings from `from` (behind `near`) to `to` (behind `far`), each counted exactly once
/// by both espgw routers' `show crypto ipsec sa`: the requests are `near`'s encaps and
/// `far`'s decaps, the replies `far`'s encaps and `near`'s decaps.
pub fn pings_counted_exactly(
    lab: &Lab,
    from: Node,
    to: &str,
    near: &espgw_lab::EspgwRouter,
    far: &espgw_lab::EspgwRouter,
    n: u32,
) {
    let (ne, nd) = near.ipsec_packet_counts().unwrap();
    let (fe, fd) = far.ipsec_packet_counts().unwrap();
    let p = lab.ping(from, to, n).expect("ping");
    assert_eq!(p.received, n, "{p:?}");
    std::thread::sleep(Duration::from_millis(300));
    let (ne2, nd2) = near.ipsec_packet_counts().unwrap();
    let (fe2, fd2) = far.ipsec_packet_counts().unwrap();
    let n = u64::from(n);
    assert_eq!(
        (ne2 - ne, fd2 - fd, fe2 - fe, nd2 - nd),
        (n, n, n, n),
        "{n} requests: near encaps, far decaps; {n} replies: far encaps, near decaps\n\
         near:\n{}\nfar:\n{}",
        near.cli(&["show", "crypto", "ipsec", "sa"]).unwrap(),
        far.cli(&["show", "crypto", "ipsec", "sa"]).unwrap()
    );
}
