//! espgw-dataplane: XDP classifiers + AF_XDP poll-mode workers.
//!
//! It reads the same IOS configuration as espgw-control (`--config`, with the
//! same `--interface-map`): the interface with a crypto map is the outside,
//! the other addressed interface the inside, and the applied crypto maps'
//! ACLs are the classifier's rules (re-read when the file changes). SAs come
//! from control through the shared-memory database (`--sadb`). Without a
//! configuration, `--inside`/`--outside` name the interfaces and the rules
//! come from `--acl` (tests, static setups) and a policy file (`--policy`,
//! see `espgw_dataplane::xdp::acl`). `--config FILE --write-policy PATH`
//! writes the configuration's rules in that file's form and exits (for
//! dataplanes started without the configuration).
//!
//! ## The crypto log (stderr, i.e. the unit's journal)
//!
//! The drops an operator troubleshoots a tunnel with are logged with IOS's
//! messages, in IOS's text (formats and sampling in
//! `espgw_dataplane::worker::syslog`):
//!
//! - `%CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has invalid spi
//!   for destaddr=D, prot=50, spi=0xHEX(DEC), srcaddr=S`: ESP (raw or in UDP
//!   4500) for an SPI we have no inbound SA for: the peer still uses an SA
//!   we deleted (rekey, `clear crypto sa`, a restarted peer) or someone
//!   sends us junk. Counted as `drop_no_sa`.
//! - `%CRYPTO-4-PKT_REPLAY_ERR: decrypt: replay check failed connection id=N,
//!   sequence number=Q`: a duplicate, or a packet left of the anti-replay
//!   window, on the inbound SA whose `conn id` `show crypto ipsec sa`
//!   prints; a replay attack or heavy reordering. `drop_replay`,
//!   `drop_out_of_window`, the SA's replay drops.
//! - `%CRYPTO-4-RECVD_PKT_MAC_ERR: decrypt: mac verify failed for connection
//!   id=N`: the ICV did not verify: corruption on the path, forgery, or
//!   keys out of step with the peer. `drop_auth`, the SA's auth drops.
//! - `%CRYPTO-4-RECVD_PKT_NOT_IPSEC: Rec'd packet not an IPSEC packet. (ip)
//!   vrf/dest_addr= /D, src_addr= S, prot= P`: a clear packet arrived on the
//!   outside that the crypto ACL says must be encrypted; the outside
//!   classifier dropped it (`drop_clear_protected`): a peer that lost its
//!   SAs and sends in clear, or spoofing from outside.
//!
//! Rate: the first of each type is printed within one turn of the main loop
//! (200 ms), then at most one line per type every 10 s, with the latest
//! event's values; the exact numbers are the counters (`--stats`, the SA
//! database).
#![forbid(unsafe_code)]

use clap::Parser;
use espgw_config::{load_config, InterfaceMap};
use espgw_dataplane::esp::DropReason;
use espgw_dataplane::ios::DataplanePolicy;
use espgw_dataplane::sa_rules::RuntimeEntry;
use espgw_dataplane::sadb::{SaDb, SaDbReader};
use espgw_dataplane::sys::xsk::{stop_on_signals, XskConfig};
use espgw_dataplane::worker::fib::Fib;
use espgw_dataplane::worker::netlink::Netlink;
use espgw_dataplane::worker::sa::SaSource;
use espgw_dataplane::worker::syslog::{CryptoEvent, CryptoLog, EventKind};
use espgw_dataplane::worker::{Counter, Published, Worker, WorkerConfig, WorkerStats};
use espgw_dataplane::xdp::acl::{self, AclRule};
use espgw_dataplane::xdp::classify::AclSet;
use espgw_dataplane::xdp::local_addrs::LocalAddrSync;
use espgw_dataplane::xdp::maps::CounterIndex;
use espgw_dataplane::xdp::{Classifier, ModeRequest, Side, XdpError};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Parser, Debug)]
#[command(
    name = "espgw-dataplane",
    about = "espgw dataplane: XDP classifiers and AF_XDP workers"
)]
struct Args {
    /// The IOS configuration espgw-control runs (interfaces and crypto ACLs
    /// are taken from it; re-read when it changes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// IOS-to-Linux interface names, as for espgw-control: `Ethernet0/0=in0,Ethernet1/0=out0`.
    #[arg(long, default_value = "")]
    interface_map: String,
    /// Inside (protected, private) interface; from --config when not given.
    #[arg(long)]
    inside: Option<String>,
    /// Outside (public) interface; from --config when not given.
    #[arg(long)]
    outside: Option<String>,
    /// Cores for the workers, e.g. 0,1 (one worker per core; at most one per queue).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    cores: Vec<usize>,
    /// Workers one tunnel's inbound ESP spreads over: the worker whose queue receives
    /// it keeps a slice of each batch and hands the rest to the next N-1 workers to
    /// decrypt; the replay window is still committed in arrival order, so it need not
    /// be widened (1: each worker decrypts what it receives; at most the worker count).
    #[arg(long, default_value_t = 1)]
    fanout: usize,
    /// A crypto-ACL rule: `permit|deny PROTO SRC DST [sport A-B] [dport A-B] [policy SEQ] [map NAME]` (repeatable; before the policy file's rules).
    #[arg(long = "acl")]
    acl: Vec<String>,
    /// Policy file (one rule a line, see --write-policy); re-read when it changes.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Write the crypto ACL rules of --config to this policy file and exit.
    #[arg(long, requires = "config")]
    write_policy: Option<PathBuf>,
    /// XDP attach mode.
    #[arg(long, default_value = "auto", value_parser = ["auto", "driver", "skb"])]
    xdp_mode: String,
    /// Keep workers spinning instead of blocking when idle.
    #[arg(long)]
    busy_poll: bool,
    /// Frames per receive batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Force AF_XDP copy mode.
    #[arg(long)]
    force_copy: bool,
    /// UMEM frames per socket.
    #[arg(long, default_value_t = 2048)]
    frames: u32,
    /// AF_XDP ring size (RX, TX, fill, completion); smaller rings queue less
    /// under overload (less delay for TCP), larger ones absorb bursts.
    #[arg(long, default_value_t = 1024)]
    ring: u32,
    /// Write counters as JSON here (every 200 ms and at exit).
    #[arg(long)]
    stats: Option<PathBuf>,
    /// On SIGTERM/SIGINT leave the classifiers attached (interesting traffic
    /// is dropped, not leaked in clear, until a new dataplane starts).
    #[arg(long)]
    keep_xdp: bool,
    /// Remove the classifiers from both interfaces (after a crash) and exit.
    #[arg(long)]
    detach: bool,
    /// The shared-memory SA database written by espgw-control.
    #[arg(long, default_value = espgw_dataplane::sadb::DEFAULT_PATH)]
    sadb: PathBuf,
    /// Smallest inbound anti-replay window (packets): the receiving window is
    /// local (RFC 4303 §3.4.3) and must cover the reordering of one SA's
    /// packets across several workers and queues at both ends (at 100 kpps a
    /// worker woken 10 ms late is 1000 packets behind). 16384 costs 4 KiB a
    /// SA (RFC 6479 bitmap).
    #[arg(long, default_value_t = 16384)]
    min_replay_window: u32,
    /// No ESP: forward steered traffic in clear (lab checks of the AF_XDP path only).
    /// The outside still drops traffic arriving in clear that the crypto ACL
    /// (mirrored) says must be protected, as in production, unless
    /// --no-inbound-check.
    #[arg(long)]
    no_esp: bool,
    /// With --no-esp only: let clear traffic that the crypto ACL protects in
    /// through the outside (lab peers that forward in clear both ways, whose
    /// answers come back unencrypted). Never in production: there anyone
    /// outside could inject packets "from" the remote protected networks.
    #[arg(long, requires = "no_esp")]
    no_inbound_check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espgw-dataplane: {e}");
            ExitCode::FAILURE
        }
    }
}

fn mode(s: &str) -> ModeRequest {
    match s {
        "driver" => ModeRequest::Driver,
        "skb" => ModeRequest::Skb,
        _ => ModeRequest::Auto,
    }
}

/// Where the classifier's rules come from, in this order: `--acl`, the
/// configuration's crypto maps, the policy file.
struct RuleSources<'a> {
    args: &'a Args,
    ifmap: InterfaceMap,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    /// The (inside, outside) interfaces in service.
    serving: Option<(String, String)>,
    /// Entries whose rules follow the SA database, as of the last load.
    runtime: Vec<RuntimeEntry>,
}

impl RuleSources<'_> {
    fn stamps(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let m = |p: &Option<PathBuf>| p.as_deref().and_then(mtime);
        (m(&self.args.config), m(&self.args.policy))
    }

    /// The configuration's view, if there is a configuration.
    fn config(&self) -> Result<Option<DataplanePolicy>, String> {
        let Some(path) = &self.args.config else {
            return Ok(None);
        };
        let parsed = load_config(path, &self.ifmap).map_err(|e| e.to_string())?;
        let p = DataplanePolicy::from_config(&parsed.config)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(p))
    }

    /// Every rule, read now.
    fn load(&mut self) -> Result<Vec<AclRule>, String> {
        self.stamps = self.stamps();
        let mut rules: Vec<AclRule> = self
            .args
            .acl
            .iter()
            .map(|r| r.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: acl::AclError| e.to_string())?;
        if let Some(c) = self.config()? {
            let now = c.pick(self.args.inside.as_deref(), self.args.outside.as_deref());
            if let (Some(serving), Ok(now)) = (&self.serving, now) {
                if *serving != now {
                    eprintln!(
                        "espgw-dataplane: the configuration now names inside {} and outside {}; still serving {} and {} until restarted",
                        now.0, now.1, serving.0, serving.1
                    );
                }
            }
            rules.extend(c.rules);
            self.runtime = c.runtime;
        }
        if let Some(p) = &self.args.policy {
            rules.extend(acl::read_policy_file(p).map_err(|e| e.to_string())?);
        }
        Ok(rules)
    }

    /// The rules again when a file changed since the last load.
    fn reload(&mut self) -> Option<Result<Vec<AclRule>, String>> {
        (self.stamps() != self.stamps).then(|| self.load())
    }
}

/// `--write-policy PATH`: the rules the classifiers would load from `config`, as a
/// policy file.
fn write_policy(
    config: &std::path::Path,
    ifmap: &InterfaceMap,
    out: &std::path::Path,
) -> Result<(), String> {
    let parsed = load_config(config, ifmap).map_err(|e| e.to_string())?;
    let rules = espgw_dataplane::ios::rules_from_config(&parsed.config)
        .map_err(|e| format!("{}: crypto ACL rules: {e}", config.display()))?;
    acl::write_policy_file(out, &rules)
        .map_err(|e| format!("--write-policy {}: {e}", out.display()))
}

fn run(args: Args) -> Result<(), String> {
    let ifmap =
        InterfaceMap::parse(&args.interface_map).map_err(|e| format!("--interface-map: {e}"))?;
    if let (Some(out), Some(config)) = (&args.write_policy, &args.config) {
        return write_policy(config, &ifmap, out);
    }
    let mut sources = RuleSources {
        args: &args,
        ifmap,
        stamps: (None, None),
        serving: None,
        runtime: Vec::new(),
    };
    let (inside_name, outside_name) = match sources.config()? {
        Some(p) => p
            .pick(args.inside.as_deref(), args.outside.as_deref())
            .map_err(|e| e.to_string())?,
        None => match (&args.inside, &args.outside) {
            (Some(i), Some(o)) => (i.clone(), o.clone()),
            _ => return Err("give --config, or both --inside and --outside".into()),
        },
    };
    if args.detach {
        for ifname in [&inside_name, &outside_name] {
            espgw_dataplane::xdp::detach_interface(ifname).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let stop_signal = stop_on_signals();
    let rules = sources.load()?;
    sources.serving = Some((inside_name.clone(), outside_name.clone()));

    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    let links = nl.links().map_err(|e| e.to_string())?;
    let find = |name: &str| {
        links
            .iter()
            .find(|l| l.name == name)
            .cloned()
            .ok_or_else(|| format!("no interface {name}"))
    };
    let inside = find(&inside_name)?;
    let outside = find(&outside_name)?;

    let mut cls_in = Classifier::load(Side::Inside).map_err(|e| e.to_string())?;
    let mut cls_out = Classifier::load(Side::Outside).map_err(|e| e.to_string())?;

    let in_queues = active_rx_queues(&inside.name, inside.ifindex, inside.rx_queues);
    let out_queues = active_rx_queues(&outside.name, outside.ifindex, outside.rx_queues);
    let nworkers = args
        .cores
        .len()
        .min(in_queues as usize)
        .min(out_queues as usize)
        .max(1);
    if nworkers < args.cores.len() {
        eprintln!(
            "espgw-dataplane: {} cores given but only {} queue(s) per interface: {nworkers} worker(s)",
            args.cores.len(),
            in_queues.min(out_queues)
        );
    }
    let fib = Fib::start().map_err(|e| e.to_string())?;
    // Compiled once for both classifiers and the workers.
    let acl_shared = Arc::new(Published::new(
        AclSet::new(rules.clone()).map_err(|e| e.to_string())?,
    ));
    let sa_source = match (args.no_esp, &args.sadb) {
        (true, _) => None,
        (false, path) => {
            // Control may not have created the region yet: wait for it.
            let mut warned = false;
            loop {
                match SaDb::open(path) {
                    Ok(r) => break Some(Arc::new(SaSource::new(r, args.min_replay_window))),
                    Err(e) => {
                        if stop_signal.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        if !warned {
                            eprintln!(
                                "espgw-dataplane: waiting for the SA database {}: {e}",
                                path.display()
                            );
                            warned = true;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        }
    };
    let xsk = XskConfig {
        frames_per_socket: args.frames,
        ring_size: args.ring,
        force_copy: args.force_copy,
        ..XskConfig::default()
    };
    let mut workers = Vec::new();
    let mut fanouts = espgw_dataplane::worker::fanout::mesh(nworkers, args.fanout).into_iter();
    for w in 0..nworkers {
        let queues = |n: u32| {
            (0..n)
                .filter(|q| *q as usize % nworkers == w)
                .collect::<Vec<u32>>()
        };
        let cfg = WorkerConfig {
            id: w,
            core: Some(args.cores[w]),
            inside: inside_name.clone(),
            inside_ifindex: inside.ifindex,
            inside_queues: queues(in_queues),
            outside: outside_name.clone(),
            outside_ifindex: outside.ifindex,
            outside_queues: queues(out_queues),
            batch: args.batch,
            busy_poll: args.busy_poll,
            xsk,
        };
        let mut worker = Worker::new(cfg, fib.reader()).map_err(|e| e.to_string())?;
        if let Some(src) = &sa_source {
            worker = worker.with_esp(src.clone(), acl_shared.clone());
            // A lone worker holds every inside queue: nobody else encrypts.
            if nworkers == 1 {
                worker = worker.sole_encryptor();
            }
        }
        if let Some(f) = fanouts.next().filter(|_| args.fanout > 1) {
            worker = worker.with_fanout(f);
        }
        for (side, queue, fd) in worker.sockets() {
            let cls = if side == Side::Inside {
                &mut cls_in
            } else {
                &mut cls_out
            };
            cls.register_xsk(queue, fd).map_err(|e| e.to_string())?;
        }
        workers.push(worker);
    }
    // The outside drops clear packets the same rules protect (mirrored).
    let install = |cls_in: &mut Classifier, cls_out: &mut Classifier, set: &AclSet| {
        cls_in.set_compiled_acl(&set.compiled)?;
        if args.no_inbound_check {
            cls_out.set_acl(&[]).map(|_| ())
        } else {
            cls_out.set_compiled_acl(&set.compiled)
        }
    };
    let acl_set = acl_shared.get();
    install(&mut cls_in, &mut cls_out, &acl_set).map_err(|e| e.to_string())?;
    eprintln!(
        "espgw-dataplane: crypto ACL compiled: {}",
        acl_set.compiled.shape()
    );
    // The router's own addresses: only IKE, NAT-T and ESP addressed to them
    // are exempt from the inbound check (none while there is none: fail
    // closed). Re-read below while running.
    let mut local_addrs = LocalAddrSync::new(outside.ifindex, &outside_name);
    for line in local_addrs.sync(&mut nl, &mut cls_out) {
        eprintln!("espgw-dataplane: {line}");
    }
    // Sockets registered and ACL in place: only now replace whatever runs there.
    cls_in
        .attach(&inside_name, mode(&args.xdp_mode))
        .map_err(|e| e.to_string())?;
    if let Err(e) = cls_out.attach(&outside_name, mode(&args.xdp_mode)) {
        let _ = cls_in.detach();
        return Err(e.to_string());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut stats = Vec::new();
    let mut threads = Vec::new();
    for w in workers {
        stats.push(w.stats());
        let stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("espgw-worker".into())
                .spawn(move || w.run(&stop))
                .map_err(|e| e.to_string())?,
        );
    }
    eprintln!(
        "espgw-dataplane: inside {} ({:?}), outside {} ({:?}), {} worker(s), {} ACL rule(s), {}",
        inside_name,
        cls_in.mode(),
        outside_name,
        cls_out.mode(),
        threads.len(),
        rules.len(),
        if sa_source.is_some() {
            "ESP on"
        } else {
            "no SA database: forwarding in clear"
        }
    );

    let mut crypto_log = CryptoLog::new();
    // The rules of the files, and the Easy VPN clients' rules from the SA database.
    let mut file_rules = rules.clone();
    let mut ez = SaRules::default();
    while !stop_signal.load(Ordering::SeqCst) {
        if let Some(s) = &args.stats {
            write_stats(s, &cls_in, &cls_out, &stats);
        }
        log_crypto_events(&mut crypto_log, &cls_out, &stats);
        // A changed configuration or policy file replaces the rules as a
        // whole; one that does not load keeps the rules in force.
        let reloaded = match sources.reload() {
            Some(Ok(all)) => {
                file_rules = all;
                true
            }
            Some(Err(e)) => {
                eprintln!("espgw-dataplane: crypto ACL not reloaded: {e}");
                false
            }
            None => false,
        };
        let ez_changed = sa_source
            .as_ref()
            .is_some_and(|src| ez.refresh(&sources.runtime, &src.db));
        if reloaded || ez_changed {
            let mut all = file_rules.clone();
            all.extend(ez.rules.iter().cloned());
            match AclSet::new(all)
                .map_err(XdpError::from)
                .and_then(|set| install(&mut cls_in, &mut cls_out, &set).map(|()| set))
            {
                Ok(set) => {
                    eprintln!(
                        "espgw-dataplane: crypto ACL reloaded, {} rule(s)",
                        set.rules.len()
                    );
                    acl_shared.set(set);
                }
                Err(e) => eprintln!("espgw-dataplane: crypto ACL not reloaded: {e}"),
            }
        }
        // Addresses added or removed (DHCP, ip addr) reach the outside's
        // exemptions within one turn.
        for line in local_addrs.sync(&mut nl, &mut cls_out) {
            eprintln!("espgw-dataplane: {line}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    if let Some(s) = &args.stats {
        write_stats(s, &cls_in, &cls_out, &stats);
    }
    drop(fib);
    if args.keep_xdp {
        eprintln!(
            "espgw-dataplane: classifiers left attached (fail closed until restart or --detach)"
        );
    } else {
        let _ = cls_in.detach();
        let _ = cls_out.detach();
    }
    eprintln!("espgw-dataplane: stopped");
    Ok(())
}

/// The rules of the entries known only at run time (Easy VPN), rebuilt from the SA
/// database when its generation moves (see `espgw_dataplane::sa_rules`).
#[derive(Default)]
struct SaRules {
    generation: Option<u64>,
    rules: Vec<AclRule>,
}

impl SaRules {
    /// Whether the rules changed.
    fn refresh(&mut self, entries: &[RuntimeEntry], db: &SaDbReader) -> bool {
        if entries.is_empty() && self.rules.is_empty() {
            return false;
        }
        let g = db.generation();
        if self.generation == Some(g) {
            return false;
        }
        let snap = match db.snapshot_all() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("espgw-dataplane: Easy VPN rules: SA database: {e}");
                return false;
            }
        };
        self.generation = Some(snap.generation);
        let rules = espgw_dataplane::sa_rules::rules_from_sas(entries, &snap.entries);
        if rules == self.rules {
            return false;
        }
        eprintln!(
            "espgw-dataplane: {} crypto ACL rule(s) from Easy VPN SAs",
            rules.len()
        );
        self.rules = rules;
        true
    }
}

/// Prints the IOS crypto messages due this turn (see the module comment):
/// the workers' latest invalid-SPI, replay and ICV-failure samples and the
/// outside classifier's per-CPU clear-packet samples go through the rate
/// limiter.
fn log_crypto_events(log: &mut CryptoLog, cls_out: &Classifier, workers: &[Arc<WorkerStats>]) {
    for (i, w) in workers.iter().enumerate() {
        for kind in [
            EventKind::InvalidSpi,
            EventKind::Replay,
            EventKind::MacError,
        ] {
            if let Some((generation, ev)) = w.events().read(kind) {
                log.observe(i, generation, ev);
            }
        }
    }
    if let Ok(samples) = cls_out.clear_drop_samples() {
        for (cpu, s) in samples.iter().enumerate() {
            let ev = CryptoEvent::NotIpsec {
                dst: s.dst(),
                src: s.src(),
                proto: s.proto,
            };
            log.observe(cpu, s.drops, ev);
        }
    }
    for ev in log.due(Instant::now()) {
        eprintln!("{ev}");
    }
}

/// The active RX queues of an interface (`ethtool -l` "current"), from sysfs
/// when sysfs shows our namespace's device; else every allocated queue.
fn active_rx_queues(name: &str, ifindex: u32, allocated: u32) -> u32 {
    let dir = PathBuf::from("/sys/class/net").join(name);
    let same = std::fs::read_to_string(dir.join("ifindex"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        == Some(ifindex);
    if !same {
        return allocated.max(1);
    }
    let n = std::fs::read_dir(dir.join("queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(0);
    if n == 0 {
        allocated.max(1)
    } else {
        n as u32
    }
}

fn mtime(p: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn write_stats(
    path: &std::path::Path,
    cls_in: &Classifier,
    cls_out: &Classifier,
    workers: &[Arc<WorkerStats>],
) {
    let mut s = String::from("{");
    for (name, cls) in [("inside", cls_in), ("outside", cls_out)] {
        let _ = write!(
            s,
            "\"{name}\":{{\"ifname\":\"{}\",\"mode\":\"{}\",\"xdp\":{{",
            cls.ifname(),
            cls.mode()
                .map(|m| format!("{m:?}"))
                .unwrap_or_else(|| "detached".into())
        );
        if let Ok(c) = cls.counters() {
            let items: Vec<String> = CounterIndex::ALL
                .iter()
                .zip(c.iter())
                .map(|(i, v)| {
                    format!(
                        "\"{}\":{{\"packets\":{},\"bytes\":{}}}",
                        i.name(),
                        v.packets,
                        v.bytes
                    )
                })
                .collect();
            s.push_str(&items.join(","));
        }
        s.push_str("}},");
    }
    s.push_str("\"workers\":[");
    let ws: Vec<String> = workers
        .iter()
        .map(|w| {
            let mut items: Vec<String> = Counter::ALL
                .iter()
                .map(|c| format!("\"{}\":{}", c.name(), w.get(*c)))
                .collect();
            items.extend(
                DropReason::ALL
                    .iter()
                    .map(|r| format!("\"{}\":{}", r.stats_key(), w.drops(*r))),
            );
            format!("{{{}}}", items.join(","))
        })
        .collect();
    s.push_str(&ws.join(","));
    s.push_str("]}\n");
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, s).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}
