//! Faults an espgw router suffers in the reliability suite: `kill -9` of espgw-control or
//! espgw-dataplane (by PID, the process group the lab started) and their restart with the
//! same command line, state kept where the product keeps it (the shared-memory SA database
//! and the key log survive; the control socket is re-bound).

use super::EspgwRouter;
use crate::lab::{Lab, LabProcess};
use crate::{Error, Result};
use std::time::{Duration, Instant};

/// Which of the two processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    Control,
    Dataplane,
}

fn kill9(p: &mut Option<LabProcess>, what: &str) -> Result<u32> {
    let mut proc = p
        .take()
        .ok_or_else(|| Error::Invalid(format!("{what} is not running")))?;
    let pid = proc.pid();
    proc.signal("KILL")?;
    if proc.wait_timeout(Duration::from_secs(10))?.is_none() {
        return Err(Error::Invalid(format!(
            "{what} (pid {pid}) survived SIGKILL"
        )));
    }
    drop(proc);
    Ok(pid)
}

impl EspgwRouter {
    /// SIGKILL to one daemon (no cleanup runs: XDP programs stay attached, SAs stay in the
    /// region); returns the PID it had.
    pub fn kill9(&mut self, which: Daemon) -> Result<u32> {
        match which {
            Daemon::Control => kill9(&mut self.control, "espgw-control"),
            Daemon::Dataplane => kill9(&mut self.dataplane, "espgw-dataplane"),
        }
    }

    /// Starts a killed daemon again with its first command line and waits until it is
    /// ready (control: its socket answers; dataplane: it rewrote its counters file).
    /// Returns how long it took to be ready.
    pub fn restart(&mut self, lab: &Lab, which: Daemon) -> Result<Duration> {
        let t0 = Instant::now();
        let args = match which {
            Daemon::Control => &self.control_args,
            Daemon::Dataplane => &self.dataplane_args,
        };
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        if which == Daemon::Dataplane {
            let _ = std::fs::remove_file(&self.stats);
        }
        let mut p = lab.spawn(self.node, &a)?;
        let mut dead = false;
        let what = format!("{which:?} restart on {}", self.node);
        lab.wait_for(&what, Duration::from_secs(30), || {
            dead = !p.is_running();
            dead || match which {
                Daemon::Control => std::os::unix::net::UnixStream::connect(&self.socket).is_ok(),
                Daemon::Dataplane => self.stats.exists(),
            }
        })?;
        if dead {
            return Err(p.died_at_start(&what, &[]));
        }
        match which {
            Daemon::Control => self.control = Some(p),
            Daemon::Dataplane => self.dataplane = Some(p),
        }
        Ok(t0.elapsed())
    }

    /// The PID of one daemon, if it runs.
    pub fn pid_of(&self, which: Daemon) -> Option<u32> {
        match which {
            Daemon::Control => self.control.as_ref().map(LabProcess::pid),
            Daemon::Dataplane => self.dataplane.as_ref().map(LabProcess::pid),
        }
    }
}
