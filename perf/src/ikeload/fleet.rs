//! The scenario-independent half of the IKE load generator: N client identities in one
//! process, each a sans-IO espgw [`Endpoint`] in initiator role with a configuration of its
//! own, its own source address (a /32 alias of the namespace) and its own UDP sockets on
//! ports 500 and 4500 (NAT-T: strongSwan's libipsec claims a NAT and floats); one event loop (poll(2) over every socket, the endpoints' timers) drives them all.
//!
//! What an identity does is the [`Scenario`]'s: it builds each identity's endpoint, starts
//! it, and says when it is done (or failed) from the endpoint's state and the IPsec SAs the
//! endpoint reported. The fleet starts identities while fewer than `window` are under way
//! (the server's half-open limit), keeps every endpoint answering (DPD, retransmissions)
//! after its setup, and measures setup times.

use espgw_control::ike::{Endpoint, Event, Proxy};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// The IKE ports every identity binds: 500 and NAT-T's 4500.
const PORTS: [u16; 2] = [500, 4500];

/// One IPsec SA pair an endpoint reported (`Event::IpsecSaUp`), without its keys.
#[derive(Debug, Clone)]
pub struct SaUp {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    /// The outbound SA's traffic selectors (ours, theirs).
    pub local: Proxy,
    pub remote: Proxy,
}

/// What the scenario says about one identity.
pub enum Progress {
    Pending,
    Done(serde_json::Value),
    Failed(String),
}

/// The scenario-specific part: what each identity is and when it has what it came for.
pub trait Scenario {
    /// The endpoint of identity `i`, whose source address is `local`.
    fn endpoint(&self, i: usize, local: Ipv4Addr) -> Result<Endpoint, String>;
    /// Starts its negotiation.
    fn start(&self, ep: &mut Endpoint, now: Instant);
    /// Whether it is done, from its endpoint and the SA pairs it reported so far.
    fn progress(&self, ep: &Endpoint, sas: &[SaUp], failures: &[String]) -> Progress;
}

/// One client identity.
struct Identity {
    addr: Ipv4Addr,
    /// Bound to `PORTS`, in that order.
    socks: Vec<UdpSocket>,
    ep: Endpoint,
    started: Option<Instant>,
    done: Option<(Instant, Result<serde_json::Value, String>)>,
    sas: Vec<SaUp>,
    failures: Vec<String>,
}

/// How the fleet runs.
pub struct FleetOptions {
    /// Identities under way at most at once.
    pub window: usize,
    /// Give up on identities not done this long after the first start.
    pub timeout: Duration,
}

/// The outcome of a run: per identity (in order) its source address, start-to-done time and
/// the scenario's result; the wall time from the first start to the last identity done.
pub struct FleetReport {
    pub results: Vec<(
        Ipv4Addr,
        Option<Duration>,
        Result<serde_json::Value, String>,
    )>,
    pub setup: Duration,
    /// Datagrams sent and received, and send errors.
    pub tx: u64,
    pub rx: u64,
    pub tx_errors: u64,
}

/// N identities and their sockets.
pub struct Fleet<S: Scenario> {
    scenario: S,
    ids: Vec<Identity>,
    next: usize,
    first_start: Option<Instant>,
    tx: u64,
    rx: u64,
    tx_errors: u64,
    buf: Vec<u8>,
}

impl<S: Scenario> Fleet<S> {
    /// Binds `addrs[i]`:500 and :4500 for every identity (the addresses must be on the namespace's
    /// interfaces) and builds its endpoint.
    pub fn new(scenario: S, addrs: &[Ipv4Addr]) -> Result<Fleet<S>, String> {
        raise_fd_limit(PORTS.len() as u64 * addrs.len() as u64 + 64)?;
        let mut ids = Vec::with_capacity(addrs.len());
        for (i, &addr) in addrs.iter().enumerate() {
            let mut socks = Vec::with_capacity(PORTS.len());
            for port in PORTS {
                let sock = UdpSocket::bind(SocketAddr::from((addr, port)))
                    .map_err(|e| format!("binding {addr}:{port}: {e}"))?;
                sock.set_nonblocking(true)
                    .map_err(|e| format!("{addr}: non-blocking: {e}"))?;
                socks.push(sock);
            }
            let ep = scenario.endpoint(i, addr)?;
            ids.push(Identity {
                addr,
                socks,
                ep,
                started: None,
                done: None,
                sas: Vec::new(),
                failures: Vec::new(),
            });
        }
        Ok(Fleet {
            scenario,
            ids,
            next: 0,
            first_start: None,
            tx: 0,
            rx: 0,
            tx_errors: 0,
            buf: vec![0u8; 65536],
        })
    }

    fn in_flight(&self) -> usize {
        self.ids
            .iter()
            .filter(|d| d.started.is_some() && d.done.is_none())
            .count()
    }

    /// Runs until every identity is done or failed, or `opts.timeout` passes.
    pub fn setup(&mut self, opts: &FleetOptions) -> FleetReport {
        let mut in_flight = 0usize;
        loop {
            let now = Instant::now();
            while in_flight < opts.window && self.next < self.ids.len() {
                let d = &mut self.ids[self.next];
                d.started = Some(now);
                self.scenario.start(&mut d.ep, now);
                self.first_start.get_or_insert(now);
                self.next += 1;
                in_flight += 1;
            }
            self.turn(Duration::from_millis(20));
            let now = Instant::now();
            for d in self.ids.iter_mut() {
                if d.started.is_none() || d.done.is_some() {
                    continue;
                }
                let r = match self.scenario.progress(&d.ep, &d.sas, &d.failures) {
                    Progress::Pending => continue,
                    Progress::Done(v) => Ok(v),
                    Progress::Failed(e) => Err(e),
                };
                d.done = Some((now, r));
                in_flight -= 1;
            }
            let all = self.next == self.ids.len() && in_flight == 0;
            let late = self
                .first_start
                .is_some_and(|t| now.duration_since(t) > opts.timeout);
            if all || late {
                break;
            }
        }
        debug_assert_eq!(in_flight, self.in_flight());
        let first = self.first_start.unwrap_or_else(Instant::now);
        let last = self
            .ids
            .iter()
            .filter_map(|d| d.done.as_ref().map(|x| x.0))
            .max()
            .unwrap_or(first);
        FleetReport {
            results: self
                .ids
                .iter()
                .map(|d| match &d.done {
                    Some((t, r)) => (d.addr, d.started.map(|s| t.duration_since(s)), r.clone()),
                    None => (d.addr, None, Err("not done before the timeout".into())),
                })
                .collect(),
            setup: last.duration_since(first),
            tx: self.tx,
            rx: self.rx,
            tx_errors: self.tx_errors,
        }
    }

    /// Keeps every endpoint answering (DPD, the server's retransmissions) for `d`.
    pub fn serve(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.turn(Duration::from_millis(200));
        }
    }

    /// One turn of the event loop: wait for a datagram or the earliest timer (at most
    /// `max_wait`), hand in what arrived and what is due, send what the endpoints queued.
    fn turn(&mut self, max_wait: Duration) {
        let now = Instant::now();
        let next_timer = self
            .ids
            .iter()
            .filter(|d| d.started.is_some())
            .filter_map(|d| d.ep.poll_timeout())
            .min();
        let wait = next_timer
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(max_wait)
            .min(max_wait);
        let readable: Vec<usize> = {
            let mut fds: Vec<PollFd> = self
                .ids
                .iter()
                .flat_map(|d| d.socks.iter())
                .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
                .collect();
            let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(_) => Vec::new(),
                Ok(_) => fds
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                    .map(|(i, _)| i)
                    .collect(),
            }
        };
        let now = Instant::now();
        for fd in readable {
            let (i, p) = (fd / PORTS.len(), fd % PORTS.len());
            let d = &mut self.ids[i];
            let local = SocketAddr::from((d.addr, PORTS[p]));
            loop {
                match d.socks[p].recv_from(&mut self.buf) {
                    Ok((n, from)) => {
                        self.rx += 1;
                        d.ep.handle_datagram(now, local, from, &self.buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        for d in self.ids.iter_mut().filter(|d| d.started.is_some()) {
            if d.ep.poll_timeout().is_some_and(|t| t <= now) {
                d.ep.handle_timeout(now);
            }
            while let Some(t) = d.ep.poll_transmit() {
                let sent = PORTS
                    .iter()
                    .position(|&p| p == t.local.port())
                    .is_some_and(|p| d.socks[p].send_to(&t.data, t.remote).is_ok());
                if sent {
                    self.tx += 1;
                } else {
                    self.tx_errors += 1;
                }
            }
            while let Some(ev) = d.ep.poll_event() {
                match ev {
                    Event::IpsecSaUp { inbound, outbound } => d.sas.push(SaUp {
                        inbound_spi: inbound.spi,
                        outbound_spi: outbound.spi,
                        local: outbound.src_proxy,
                        remote: outbound.dst_proxy,
                    }),
                    Event::NegotiationFailed { reason, .. } => d.failures.push(reason),
                    _ => {}
                }
            }
            while d.ep.poll_debug().is_some() {}
            while d.ep.poll_syslog().is_some() {}
        }
    }
}

/// One socket per identity: lift the soft descriptor limit to what they need.
fn raise_fd_limit(need: u64) -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    if soft >= need {
        return Ok(());
    }
    if hard < need {
        return Err(format!(
            "{need} descriptors needed, the hard limit is {hard}"
        ));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| e.to_string())
}
