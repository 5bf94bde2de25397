//! Next hops from the kernel's routing and neighbour tables.
//!
//! A resolver thread owns a netlink socket and keeps a snapshot that maps
//! each destination the workers have asked about to its output interface and
//! the source and destination MAC addresses. Workers read the snapshot
//! without locks on the hot path (they take a new `Arc` only when the
//! generation moves, between batches); on a miss they hold the frame (see
//! `hold`) and post the destination, and the resolver looks the route up
//! and has the kernel resolve the neighbour (`NTF_USE`). Snapshots are
//! rebuilt every [`REFRESH`] and at once when a worker posts a miss, so
//! neighbour changes reach the workers within that period. Routes are looked
//! up once per destination when it is first posted and again for all of them
//! every [`ROUTE_REFRESH`], so route changes reach the workers within that
//! period: a rebuild after a miss costs one route lookup per *new*
//! destination, not one per destination ever seen (with thousands of tunnels,
//! each first packet to a new inside host would otherwise wait for thousands
//! of lookups, and the hold queue would overflow). Stale
//! neighbours are re-confirmed through the kernel, since the frames we send
//! bypass its stack and would never confirm them otherwise.

use super::netlink::{nud, Netlink, NetlinkError, Route};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Steady-state refresh period.
pub const REFRESH: Duration = Duration::from_millis(250);
/// How often every tracked destination's route is looked up again.
pub const ROUTE_REFRESH: Duration = Duration::from_secs(1);
/// Refresh period while some destination is unresolved.
const REFRESH_PENDING: Duration = Duration::from_millis(10);
/// How long the fast pace lasts for one unresolved episode.
const PENDING_FOR: Duration = Duration::from_secs(2);
/// Most destinations tracked before the set is reset.
const MAX_TRACKED: usize = 65536;

/// Where a frame for a destination goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub oif: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// MTU of the output interface.
    pub mtu: u16,
    /// The address the kernel would use as source towards this destination
    /// (for ICMP errors the dataplane originates).
    pub src_ip: Option<Ipv4Addr>,
}

type Table = HashMap<Ipv4Addr, NextHop>;
type NeighKey = (u32, Ipv4Addr);
type NeighVal = (u16, Option<[u8; 6]>);

struct Shared {
    generation: AtomicU64,
    table: Mutex<Arc<Table>>,
    wanted: Mutex<HashSet<Ipv4Addr>>,
    wake: Condvar,
    stop: AtomicBool,
}

/// The resolver thread; stops when dropped.
pub struct Fib {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A worker's view of the table.
pub struct FibReader {
    shared: Arc<Shared>,
    generation: u64,
    table: Arc<Table>,
}

impl Fib {
    /// Starts the resolver in the caller's network namespace.
    pub fn start() -> Result<Self, NetlinkError> {
        let nl = Netlink::open()?;
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            table: Mutex::new(Arc::new(Table::new())),
            wanted: Mutex::new(HashSet::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("espgw-fib".into())
            .spawn(move || resolver(nl, s))
            .map_err(NetlinkError::Io)?;
        Ok(Fib {
            shared,
            thread: Some(thread),
        })
    }

    /// A reader for one worker.
    pub fn reader(&self) -> FibReader {
        let table = lock(&self.shared.table).clone();
        FibReader {
            shared: self.shared.clone(),
            generation: self.shared.generation.load(Ordering::Acquire),
            table,
        }
    }
}

impl Drop for Fib {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FibReader {
    /// Picks up a newer table if there is one (call between batches);
    /// true if it did.
    pub fn refresh(&mut self) -> bool {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.table = lock(&self.shared.table).clone();
            self.generation = g;
            return true;
        }
        false
    }

    /// The next hop for `dst`, if resolved.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&NextHop> {
        self.table.get(&dst)
    }

    /// Asks the resolver for `dst` (after a miss). Never blocks the worker:
    /// if the set is busy the next miss posts it again.
    pub fn request(&self, dst: Ipv4Addr) {
        if let Ok(mut w) = self.shared.wanted.try_lock() {
            if w.insert(dst) {
                self.shared.wake.notify_one();
            }
        }
    }
}

fn resolver(mut nl: Netlink, s: Arc<Shared>) {
    // While something is unresolved, look again soon, but not for ever: a
    // neighbour that does not answer is retried at the steady pace.
    let mut pending_since: Option<std::time::Instant> = None;
    let mut tracked = 0;
    let mut routes = RouteCache::default();
    while !s.stop.load(Ordering::Acquire) {
        {
            let wanted = lock(&s.wanted);
            let fast = pending_since.is_some_and(|t| t.elapsed() < PENDING_FOR);
            let wait = if fast { REFRESH_PENDING } else { REFRESH };
            let _ = s.wake.wait_timeout(wanted, wait);
        }
        if s.stop.load(Ordering::Acquire) {
            break;
        }
        let dests: Vec<Ipv4Addr> = {
            let mut w = lock(&s.wanted);
            if w.len() > MAX_TRACKED {
                w.clear();
            }
            w.iter().copied().collect()
        };
        if dests.is_empty() {
            continue;
        }
        if routes.looked_up.elapsed() >= ROUTE_REFRESH {
            routes = RouteCache::default();
        }
        match build(&mut nl, &dests, &mut routes) {
            Ok((table, unresolved)) => {
                // A new destination starts a new episode.
                let fresh = dests.len() > tracked;
                tracked = dests.len();
                pending_since = match (unresolved, pending_since) {
                    (false, _) => None,
                    (true, t) if t.is_none() || fresh => Some(std::time::Instant::now()),
                    (true, t) => t,
                };
                let mut cur = lock(&s.table);
                if **cur != table {
                    *cur = Arc::new(table);
                    s.generation.fetch_add(1, Ordering::AcqRel);
                }
            }
            Err(e) => {
                eprintln!("espgw-dataplane: netlink: {e}");
                pending_since = None;
            }
        }
    }
}

/// Routes already looked up since `looked_up`; `None`: unreachable.
struct RouteCache {
    looked_up: std::time::Instant,
    routes: HashMap<Ipv4Addr, Option<Route>>,
}

impl Default for RouteCache {
    fn default() -> Self {
        RouteCache {
            looked_up: std::time::Instant::now(),
            routes: HashMap::new(),
        }
    }
}

impl RouteCache {
    /// The route to `dst`: from the cache, or from the kernel (then cached).
    fn get(&mut self, nl: &mut Netlink, dst: Ipv4Addr) -> Result<Option<Route>, NetlinkError> {
        if let Some(r) = self.routes.get(&dst) {
            return Ok(*r);
        }
        let r = match nl.route_get(dst) {
            Ok(r) => Some(r),
            Err(NetlinkError::Kernel(_)) => None, // unreachable: stays a miss
            Err(e) => return Err(e),
        };
        self.routes.insert(dst, r);
        Ok(r)
    }
}

/// One pass: routes for every destination (new ones from the kernel, the
/// others from `routes`), neighbours, link MACs.
fn build(
    nl: &mut Netlink,
    dests: &[Ipv4Addr],
    routes: &mut RouteCache,
) -> Result<(Table, bool), NetlinkError> {
    let macs: HashMap<u32, ([u8; 6], u16)> = nl
        .links()?
        .into_iter()
        .filter_map(|l| Some((l.ifindex, (l.mac?, l.mtu.min(u32::from(u16::MAX)) as u16))))
        .collect();
    let neigh: HashMap<NeighKey, NeighVal> = nl
        .neighbours()?
        .into_iter()
        .map(|n| ((n.ifindex, n.addr), (n.state, n.lladdr)))
        .collect();
    let mut table = Table::new();
    let mut unresolved = false;
    let mut asked = HashSet::new();
    for &dst in dests {
        let Some(route) = routes.get(nl, dst)? else {
            continue;
        };
        let hop = route.next_hop(dst);
        let Some(&(src_mac, mtu)) = macs.get(&route.oif) else {
            continue;
        };
        match neigh.get(&(route.oif, hop)) {
            Some(&(state, Some(dst_mac))) if state & nud::VALID != 0 => {
                table.insert(
                    dst,
                    NextHop {
                        oif: route.oif,
                        src_mac,
                        dst_mac,
                        mtu,
                        src_ip: route.prefsrc,
                    },
                );
                if state & nud::STALE != 0 && asked.insert((route.oif, hop)) {
                    let _ = nl.resolve(route.oif, hop);
                }
            }
            Some(&(state, _)) if state & (nud::INCOMPLETE | nud::PROBE | nud::DELAY) != 0 => {
                unresolved = true
            }
            _ => {
                unresolved = true;
                if asked.insert((route.oif, hop)) {
                    let _ = nl.resolve(route.oif, hop);
                }
            }
        }
    }
    Ok((table, unresolved))
}
