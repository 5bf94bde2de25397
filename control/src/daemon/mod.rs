//! The espgw-control daemon around the IKE endpoint: what the binary wires to the UDP
//! driver and the control socket. [`Daemon`] holds the endpoint ([`Shared`]), the
//! configuration, the SA database ([`sa_sync`]), the key log, the debug stream and the
//! system-message [`logging`]; it
//! answers the `espgw` CLI (its [`ControlHandler`](crate::cli::api::ControlHandler)
//! impl is in `handler`), acts on the endpoint's
//! events ([`Sink`]), and once a tick ([`Daemon::sadb_tick`]) turns the dataplane's
//! sa_requests into negotiations and its counters into lifetimes.

mod handler;
pub mod logging;
mod operator;
mod reconfig;
pub mod sa_sync;

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio::sync::broadcast;

use crate::config::model::Config;
use crate::driver::{DriverSink, Shared};
use crate::ike::endpoint::SaUsage;
use crate::ike::{keylog, DebugLine, Endpoint, Event, SyslogMessage};

pub use self::reconfig::{ConfigSource, ReconfigError};
pub use self::sa_sync::{SaSync, SyncError};

/// Most sa_request events acted on per tick.
pub const REQUESTS_PER_TICK: usize = 65;

/// Everything the control socket, the driver and the SA database loop share.
pub struct Daemon {
    shared: Shared,
    /// The configuration in force (replaced whole by [`Daemon::reconfigure`]).
    config: RwLock<Arc<Config>>,
    /// Where the configuration comes from and its text in force (for `espgw configure`,
    /// SIGHUP and `show running-config`); None in tests that build a daemon by hand.
    source: Mutex<Option<ConfigSource>>,
    debug_tx: broadcast::Sender<String>,
    sa: SaSync,
    keylog: Option<Mutex<File>>,
    started: Instant,
    /// `logging …`: the system messages' destinations and counters.
    logger: Mutex<logging::Logger>,
}

impl Daemon {
    /// A daemon around `ep`, with the configuration it was built from, the SA database
    /// (see [`SaSync::new`]: SAs found there are adopted) and the key log, if any.
    pub fn new(ep: Endpoint, config: Config, sa: SaSync, keylog: Option<File>) -> Arc<Daemon> {
        let (debug_tx, _) = broadcast::channel(4096);
        let logger = logging::Logger::new(&config.logging, config.hostname.as_deref());
        Arc::new(Daemon {
            logger: Mutex::new(logger),
            shared: Shared::new(ep),
            config: RwLock::new(Arc::new(config)),
            source: Mutex::new(None),
            debug_tx,
            sa,
            keylog: keylog.map(Mutex::new),
            started: Instant::now(),
        })
    }

    /// The endpoint, as the driver shares it.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The SA database side.
    pub fn sa(&self) -> &SaSync {
        &self.sa
    }

    fn stamp(&self) -> String {
        let s = self.started.elapsed().as_secs();
        format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    }

    /// A debug line to stderr and to every `espgw debug` follower, time-stamped.
    fn log_debug(&self, d: &DebugLine) {
        let st = self.stamp();
        for l in d.text.lines() {
            let line = format!("{st}: {l}");
            eprintln!("{line}");
            let _ = self.debug_tx.send(line);
        }
    }

    /// A system message to every `logging` destination.
    fn log_syslog(&self, m: &SyslogMessage) {
        let mut l = self.logger.lock().unwrap_or_else(|e| e.into_inner());
        l.log(m, Instant::now(), std::time::SystemTime::now());
    }

    /// Announces messages the rate limit held back once their second is over.
    pub fn logging_tick(&self) {
        let mut l = self.logger.lock().unwrap_or_else(|e| e.into_inner());
        l.tick(Instant::now(), std::time::SystemTime::now());
    }

    /// `show logging`.
    pub(super) fn logging_view(&self) -> crate::cli::api::LoggingView {
        self.logger.lock().unwrap_or_else(|e| e.into_inner()).view()
    }

    fn keylog(&self, line: String) {
        if let Some(f) = &self.keylog {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
    }

    /// One turn of the SA database loop (every 100 ms): adopted SAs end with their
    /// lifetime; each sa_request starts the negotiation of its crypto-map entry (or, if it
    /// names none, of the entry whose ACL covers the packet); the dataplane's byte and
    /// packet counts feed kilobyte lifetimes and DPD's idea of inbound traffic. False when
    /// there is no SA database (the loop can stop).
    pub fn sadb_tick(&self) -> bool {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.sa.retire_expired(now_unix);
        let Some(reqs) = self
            .sa
            .poll_sa_requests(espgw_sadb::monotonic_ms(), REQUESTS_PER_TICK)
        else {
            return false;
        };
        for r in reqs {
            let map = r.crypto_map.as_str().to_string();
            self.shared.with(|ep, now| {
                if map.is_empty() || !ep.initiate(now, &map, r.crypto_map_seq) {
                    ep.sa_request(now, r.src, r.dst);
                }
            });
        }
        let usage: Vec<SaUsage> = self
            .sa
            .installed()
            .into_iter()
            .filter_map(|(spi, inbound)| {
                let (packets, bytes) = self.sa.counters(spi, inbound);
                (bytes > 0).then_some(SaUsage {
                    spi,
                    inbound,
                    packets,
                    kb: bytes / 1024,
                })
            })
            .collect();
        if !usage.is_empty() {
            self.shared.with(|ep, now| ep.note_counters(now, &usage));
        }
        true
    }

    /// Tells peers we are going away (DELETE for every SA) before the driver stops.
    pub fn shutdown(&self) {
        self.shared.with(|ep, now| {
            ep.clear_ipsec(now);
            ep.clear_isakmp(now);
        });
    }
}

/// The driver's sink: SA events go to the log, the key log and the SA database.
pub struct Sink(pub Arc<Daemon>);

impl DriverSink for Sink {
    fn event(&mut self, ev: Event) {
        let d = &self.0;
        match ev {
            Event::IsakmpSaUp {
                conn_id,
                peer,
                icookie,
                enc_key,
                ..
            } => {
                eprintln!("espgw-control: ISAKMP SA {conn_id} with {peer} established");
                d.keylog(keylog::ikev1_line(&icookie, &enc_key));
            }
            Event::IsakmpSaDown { conn_id, peer } => {
                eprintln!("espgw-control: ISAKMP SA {conn_id} with {peer} deleted")
            }
            Event::IpsecSaUp { inbound, outbound } => {
                eprintln!(
                    "espgw-control: IPsec SAs with {} up: inbound spi {:#010x}, outbound spi {:#010x}",
                    inbound.src, inbound.spi, outbound.spi
                );
                d.keylog(keylog::esp_line(&inbound));
                d.keylog(keylog::esp_line(&outbound));
                for sa in [&inbound, &outbound] {
                    if let Err(e) = d.sa.install(sa) {
                        eprintln!("espgw-control: {e}");
                    }
                }
                d.sa.retire_adopted(inbound.src);
            }
            Event::IpsecSaDown {
                inbound_spi,
                outbound_spi,
                peer,
            } => {
                eprintln!("espgw-control: IPsec SAs with {peer} deleted: inbound {inbound_spi:#010x}, outbound {outbound_spi:#010x}");
                d.sa.uninstall(outbound_spi, false);
                d.sa.uninstall(inbound_spi, true);
            }
            Event::NegotiationFailed { peer, reason } => {
                eprintln!("espgw-control: negotiation with {peer} failed: {reason}")
            }
        }
    }

    fn debug(&mut self, line: DebugLine) {
        self.0.log_debug(&line);
    }

    fn syslog(&mut self, m: SyslogMessage) {
        self.0.log_syslog(&m);
    }
}
