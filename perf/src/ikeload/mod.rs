//! `espgw-perf ezvpn-load`: many IKEv1 client identities from one process against one
//! real server (espgw or strongSwan), for the remote-access scale point (issue 12).
//!
//! [`fleet`] is the general part (identities, sockets, the event loop, setup timing);
//! [`ezvpn`] the Easy VPN client scenario. Another scenario (Main Mode rsa-sig phase-1
//! setups, issue 13) is one more [`fleet::Scenario`].
//!
//! The report (JSON, on stdout and in `--report`, written once every identity is done)
//! has the setup rate (clients per second from the first start to the last done), setup
//! time percentiles and, per identity, its source address and the scenario's result (Easy
//! VPN: the Mode Config address and the SPIs). Then the identities stay up (answering DPD)
//! for `--hold-secs`, so that the caller can send traffic to them and read the server.

pub mod ezvpn;
pub mod fleet;

use fleet::{Fleet, FleetOptions};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Client identities.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// The first identity's source address; identity i has FIRST + i (each must be an
    /// address of this namespace, e.g. /32 aliases).
    #[arg(long)]
    pub first: Ipv4Addr,
    /// Identities negotiating at most at once (keep it under the server's half-open limit).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Give up this many seconds after the first start.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Keep the identities up (answering DPD) this long after the report.
    #[arg(long, default_value_t = 0)]
    pub hold_secs: u64,
    /// Write the JSON report here too (renamed into place when complete).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub ezvpn: ezvpn::EzvpnArgs,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn run(a: &LoadArgs) -> Result<(), String> {
    let base = u32::from(a.first);
    let addrs: Vec<Ipv4Addr> = (0..a.clients as u32)
        .map(|i| Ipv4Addr::from(base + i))
        .collect();
    let scenario = ezvpn::EzvpnScenario {
        args: a.ezvpn.clone(),
    };
    let mut fleet = Fleet::new(scenario, &addrs)?;
    let r = fleet.setup(&FleetOptions {
        window: a.window.max(1),
        timeout: Duration::from_secs(a.timeout_secs),
    });
    let ok = r.results.iter().filter(|x| x.2.is_ok()).count();
    let mut times: Vec<f64> = r
        .results
        .iter()
        .filter(|x| x.2.is_ok())
        .filter_map(|x| x.1.map(|d| d.as_secs_f64() * 1e3))
        .collect();
    times.sort_by(f64::total_cmp);
    let secs = r.setup.as_secs_f64();
    let clients: Vec<serde_json::Value> = r
        .results
        .iter()
        .map(|(addr, t, res)| {
            let mut v = serde_json::json!({
                "source": addr.to_string(),
                "setup_ms": t.map(|d| d.as_secs_f64() * 1e3),
            });
            match res {
                Ok(x) => v["result"] = x.clone(),
                Err(e) => v["error"] = e.clone().into(),
            }
            v
        })
        .collect();
    let doc = serde_json::json!({
        "scenario": "ezvpn",
        "server": a.ezvpn.server.to_string(),
        "clients": a.clients,
        "window": a.window,
        "ok": ok,
        "failed": a.clients - ok,
        "setup_secs": secs,
        "clients_per_sec": if secs > 0.0 { ok as f64 / secs } else { 0.0 },
        "setup_ms_p50": percentile(&times, 0.5),
        "setup_ms_p99": percentile(&times, 0.99),
        "setup_ms_max": times.last().copied().unwrap_or(0.0),
        "datagrams_tx": r.tx,
        "datagrams_rx": r.rx,
        "tx_errors": r.tx_errors,
        "identities": clients,
    });
    let text = doc.to_string();
    println!("{text}");
    if let Some(p) = &a.report {
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    fleet.serve(Duration::from_secs(a.hold_secs));
    Ok(())
}
