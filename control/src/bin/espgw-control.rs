//! espgw-control: the IKEv1 daemon.
//!
//! ```text
//! espgw-control --config FILE [--socket PATH] [--keylog FILE] [--interface-map IOS=LINUX,…]
//!               [--sadb PATH | --no-sadb] [--aggressive] [--debug isakmp,ipsec]
//!               [--metrics ADDR:PORT [--dataplane-stats FILE]]
//! ```
//! Reads the IOS configuration, negotiates ISAKMP/IPsec SAs on UDP 500/4500 of the address
//! of the interface that carries the crypto map, installs IPsec SAs into the shared-memory
//! SA database, answers the `espgw` CLI on the control socket, and (opt-in) appends the
//! keys of every SA to a key log that tshark can use (format: `espgw_control::ike::keylog`).
//! The daemon's logic is `espgw_control::daemon`; this file parses the arguments and wires
//! the daemon to the UDP driver, the control socket, the SA database loop and the signals.
#![forbid(unsafe_code)]

use clap::Parser;
use espgw_control::cli::api;
use espgw_control::config::model::InterfaceMap;
use espgw_control::config::parse::parse_config;
use espgw_control::daemon::{ConfigSource, Daemon, SaSync, Sink};
use espgw_control::driver::Driver;
use espgw_control::ike::{self, crypto::RandRng, Endpoint};
use espgw_control::metrics;
use espgw_sadb::{self as sadb, SaDb};
use std::fs::OpenOptions;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Parser, Debug)]
#[command(name = "espgw-control", about = "espgw IKEv1 control plane")]
struct Args {
    /// IOS configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Control socket for the espgw CLI.
    #[arg(long, default_value = api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Append the keys of every ISAKMP and IPsec SA to FILE (mode 0600) for tshark.
    #[arg(long)]
    keylog: Option<PathBuf>,
    /// IOS interface names to Linux names: `Ethernet0/0=in0,Ethernet1/0=out0`.
    #[arg(long, default_value = "")]
    interface_map: String,
    /// Shared-memory SA database.
    #[arg(long, default_value = sadb::DEFAULT_PATH)]
    sadb: PathBuf,
    /// Do not use the SA database (negotiate only; for tests against a software peer).
    #[arg(long)]
    no_sadb: bool,
    /// Initiate in Aggressive Mode instead of Main Mode.
    #[arg(long)]
    aggressive: bool,
    /// Turn debugging on at start: `isakmp`, `ipsec` or `isakmp,ipsec`.
    #[arg(long, default_value = "")]
    debug: String,
    /// Serve OpenMetrics at http://ADDR:PORT/metrics (off unless given).
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// espgw-dataplane's counters file (its `--stats`): per-worker series in the metrics.
    #[arg(long)]
    dataplane_stats: Option<PathBuf>,
    /// Key store (RSA keys, imported certificates and CRLs) for rsa-sig and rsa-encr.
    #[arg(long, default_value = espgw_control::pki::store::DEFAULT_DIR)]
    key_store: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ifmap = match InterfaceMap::parse(&args.interface_map) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("espgw-control: --interface-map: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read(&args.config) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            eprintln!("espgw-control: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let parsed = match parse_config(&text, &ifmap) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("espgw-control: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    for w in &parsed.warnings {
        eprintln!("espgw-control: warning: {w}");
    }
    let mut ikecfg = match ike::ios::ike_config(&parsed.config, args.aggressive) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("espgw-control: {e}");
            return ExitCode::from(2);
        }
    };
    let store = espgw_control::pki::KeyStore::new(&args.key_store);
    match espgw_control::pki::credentials::load(&parsed.config, &store) {
        Ok(c) => ikecfg.pki = c.map(Arc::new),
        Err(e) => {
            eprintln!("espgw-control: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    }
    let keylog = match &args.keylog {
        None => None,
        Some(p) => match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("espgw-control: --keylog {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
    };
    let db = if args.no_sadb {
        None
    } else {
        match SaDb::open_or_create(&args.sadb, sadb::Geometry::GATEWAY) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("espgw-control: SA database {}: {e}", args.sadb.display());
                return ExitCode::from(1);
            }
        }
    };
    let sa = SaSync::new(db, parsed.config.replay_window);
    if sa.adopted() > 0 {
        eprintln!(
            "espgw-control: adopting {} SAs left in the SA database by a previous run (kept until they expire or are replaced)",
            sa.adopted()
        );
    }
    let rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
    let local = ikecfg.local_addr;
    let mut ep = Endpoint::new(ikecfg, Box::new(RandRng(rng)));
    ep.debug_isakmp = args.debug.contains("isakmp");
    ep.debug_ipsec = args.debug.contains("ipsec");
    // Easy VPN client tunnels with `connect auto` come up now.
    ep.ezvpn_start(std::time::Instant::now());
    let daemon = Daemon::new(ep, parsed.config, sa, keylog);
    daemon.set_source(ConfigSource {
        path: args.config.clone(),
        ifmap,
        aggressive: args.aggressive,
        key_store: args.key_store.clone(),
        text,
    });
    let _metrics = match args
        .metrics
        .map(|a| metrics::serve(a, &daemon, args.dataplane_stats.clone()))
        .transpose()
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("espgw-control: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("espgw-control: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(serve(daemon, local, args.socket))
}

/// Binds UDP 500/4500 and the control socket, runs the SA database loop, and drives the
/// endpoint until SIGTERM or SIGINT.
async fn serve(daemon: Arc<Daemon>, local: std::net::Ipv4Addr, socket: PathBuf) -> ExitCode {
    let driver = match Driver::bind(daemon.shared().clone(), IpAddr::V4(local)).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("espgw-control: binding UDP 500/4500 on {local}: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match api::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("espgw-control: control socket {}: {e}", socket.display());
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "espgw-control: IKE on {local}:500/4500, control socket {}",
        socket.display()
    );
    let d = daemon.clone();
    tokio::spawn(async move {
        let _ = api::serve_listener(listener, d).await;
    });
    // sa_request events and kilobyte lifetimes from the SA database (while there is one),
    // and the rate limit's "N messages rate-limited" once a quiet second is over.
    let d = daemon.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut sadb = true;
        loop {
            tick.tick().await;
            d.logging_tick();
            if sadb && !d.sadb_tick() {
                sadb = false;
            }
        }
    });
    // SIGHUP: re-read --config and apply it (on any error nothing changes).
    let d = daemon.clone();
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match d.reload() {
                    Ok(msg) => {
                        for l in msg.lines() {
                            eprintln!("espgw-control: SIGHUP: {l}");
                        }
                    }
                    Err(e) => {
                        for l in e.to_string().lines() {
                            eprintln!("espgw-control: SIGHUP: configuration not changed: {l}");
                        }
                    }
                }
            }
        });
    }
    let stop = Arc::new(Notify::new());
    let s = stop.clone();
    let d = daemon.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
        d.shutdown();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.notify_one();
    });
    let stats = driver.run(Box::new(Sink(daemon.clone())), stop).await;
    let c = daemon.shared().with(|ep, _| ep.counters.clone());
    eprintln!("espgw-control: IKE counters (drops by reason, negotiations): {c:?}");
    eprintln!(
        "espgw-control: exiting (rx {}, tx {}, tx errors {})",
        stats.rx, stats.tx, stats.tx_errors
    );
    ExitCode::SUCCESS
}
