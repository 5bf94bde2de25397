//! A small rtnetlink client: route lookups (`ip route get`), the neighbour
//! and link tables, and neighbour resolution (`NTF_USE`, which makes the
//! kernel resolve an address exactly as if it had a packet for it).
//!
//! Messages from the kernel are parsed with bounds checks and typed errors;
//! nothing here panics on short or odd replies.

use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::time::Duration;

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const AF_INET: u8 = 2;
const AF_UNSPEC: u8 = 0;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const NTF_USE: u8 = 0x01;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

/// `XDP_FLAGS_*` for [`Netlink::set_xdp`].
pub mod xdp_flags {
    pub const SKB_MODE: u32 = 2;
    pub const DRV_MODE: u32 = 4;
}

/// Neighbour states (`NUD_*`).
pub mod nud {
    pub const INCOMPLETE: u16 = 0x01;
    pub const REACHABLE: u16 = 0x02;
    pub const STALE: u16 = 0x04;
    pub const DELAY: u16 = 0x08;
    pub const PROBE: u16 = 0x10;
    pub const FAILED: u16 = 0x20;
    pub const NOARP: u16 = 0x40;
    pub const PERMANENT: u16 = 0x80;
    /// States whose link-layer address may be used.
    pub const VALID: u16 = REACHABLE | STALE | DELAY | PROBE | NOARP | PERMANENT;
}

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink I/O: {0}")]
    Io(#[from] io::Error),
    #[error("kernel answered error {0}")]
    Kernel(i32),
    #[error("truncated or malformed netlink message")]
    Malformed,
}

/// Result of a route lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub oif: u32,
    /// Gateway, or `None` for a directly connected destination.
    pub gateway: Option<Ipv4Addr>,
    pub prefsrc: Option<Ipv4Addr>,
}

impl Route {
    /// The address whose link-layer address the frame needs.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }
}

/// One neighbour table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub addr: Ipv4Addr,
    pub lladdr: Option<[u8; 6]>,
    pub state: u16,
}

/// One link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub rx_queues: u32,
    pub tx_queues: u32,
    pub mtu: u32,
}

/// One IPv4 address of an interface (`ip -4 addr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub ifindex: u32,
    /// The local address (`IFA_LOCAL`; on point-to-point links
    /// `IFA_ADDRESS` is the peer's).
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

/// A route-netlink socket (request/response; no multicast groups).
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn push_attr(msg: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(data);
    while !msg.len().is_multiple_of(4) {
        msg.push(0);
    }
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, NetlinkError> {
    let s = b.get(off..off + 2).ok_or(NetlinkError::Malformed)?;
    Ok(u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, NetlinkError> {
    let s = b.get(off..off + 4).ok_or(NetlinkError::Malformed)?;
    Ok(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Iterates the attributes in `b` as (type, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        let adv = ((len + 3) & !3).min(b.len());
        b = &b[adv..];
        Some((ty, payload))
    })
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

fn mac(b: &[u8]) -> Option<[u8; 6]> {
    b.try_into().ok()
}

/// Parses an RTM_NEWROUTE body (rtmsg + attributes).
pub fn parse_route(body: &[u8]) -> Result<Route, NetlinkError> {
    let attrs_at = body.get(12..).ok_or(NetlinkError::Malformed)?;
    let mut r = Route {
        oif: 0,
        gateway: None,
        prefsrc: None,
    };
    for (ty, p) in attrs(attrs_at) {
        match ty {
            RTA_OIF => r.oif = u32_at(p, 0)?,
            RTA_GATEWAY => r.gateway = ipv4(p),
            RTA_PREFSRC => r.prefsrc = ipv4(p),
            _ => {}
        }
    }
    if r.oif == 0 {
        return Err(NetlinkError::Malformed);
    }
    Ok(r)
}

/// Parses an RTM_NEWNEIGH body (ndmsg + attributes); `None` for non-IPv4.
pub fn parse_neighbour(body: &[u8]) -> Result<Option<Neighbour>, NetlinkError> {
    let family = *body.first().ok_or(NetlinkError::Malformed)?;
    let ifindex = u32_at(body, 4)?;
    let state = u16_at(body, 8)?;
    if family != AF_INET {
        return Ok(None);
    }
    let mut addr = None;
    let mut lladdr = None;
    for (ty, p) in attrs(body.get(12..).ok_or(NetlinkError::Malformed)?) {
        match ty {
            NDA_DST => addr = ipv4(p),
            NDA_LLADDR => lladdr = mac(p),
            _ => {}
        }
    }
    Ok(addr.map(|addr| Neighbour {
        ifindex,
        addr,
        lladdr,
        state,
    }))
}

/// Parses an RTM_NEWLINK body (ifinfomsg + attributes).
pub fn parse_link(body: &[u8]) -> Result<Link, NetlinkError> {
    let ifindex = u32_at(body, 4)?;
    let mut link = Link {
        ifindex,
        name: String::new(),
        mac: None,
        rx_queues: 1,
        tx_queues: 1,
        mtu: 1500,
    };
    for (ty, p) in attrs(body.get(16..).ok_or(NetlinkError::Malformed)?) {
        match ty {
            IFLA_IFNAME => {
                link.name = String::from_utf8_lossy(p)
                    .trim_end_matches('\0')
                    .to_string();
            }
            IFLA_ADDRESS => link.mac = mac(p),
            IFLA_MTU => link.mtu = u32_at(p, 0)?,
            IFLA_NUM_RX_QUEUES => link.rx_queues = u32_at(p, 0)?,
            IFLA_NUM_TX_QUEUES => link.tx_queues = u32_at(p, 0)?,
            _ => {}
        }
    }
    Ok(link)
}

/// Parses an RTM_NEWADDR body (ifaddrmsg + attributes); `None` for
/// non-IPv4 or an entry without an address.
pub fn parse_addr(body: &[u8]) -> Result<Option<IfAddr>, NetlinkError> {
    let family = *body.first().ok_or(NetlinkError::Malformed)?;
    let prefix_len = *body.get(1).ok_or(NetlinkError::Malformed)?;
    let ifindex = u32_at(body, 4)?;
    if family != AF_INET {
        return Ok(None);
    }
    let (mut local, mut address) = (None, None);
    for (ty, p) in attrs(body.get(8..).ok_or(NetlinkError::Malformed)?) {
        match ty {
            IFA_LOCAL => local = ipv4(p),
            IFA_ADDRESS => address = ipv4(p),
            _ => {}
        }
    }
    Ok(local.or(address).map(|addr| IfAddr {
        ifindex,
        addr,
        prefix_len,
    }))
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket in the caller's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(libc::NETLINK_ROUTE)),
        )?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Netlink {
            sock,
            seq: 1,
            buf: vec![0; 64 * 1024],
        })
    }

    fn request(&mut self, ty: u16, flags: u16, payload: &[u8]) -> Result<u32, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(NLMSG_HDR + payload.len());
        msg.extend_from_slice(&((NLMSG_HDR + payload.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        self.sock.send(&msg)?;
        Ok(self.seq)
    }

    /// Collects the bodies of the answers of type `want` to request `seq`,
    /// until DONE (dumps), an ACK/error, or the first answer (`single`).
    fn collect(&mut self, seq: u32, want: u16, single: bool) -> Result<Vec<Vec<u8>>, NetlinkError> {
        let mut out = Vec::new();
        loop {
            let n = (&self.sock).read(&mut self.buf)?;
            let mut b = &self.buf[..n];
            while b.len() >= NLMSG_HDR {
                let len = u32_at(b, 0)? as usize;
                let ty = u16_at(b, 4)?;
                let mseq = u32_at(b, 8)?;
                if len < NLMSG_HDR || len > b.len() {
                    return Err(NetlinkError::Malformed);
                }
                let body = &b[NLMSG_HDR..len];
                b = &b[((len + 3) & !3).min(b.len())..];
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = u32_at(body, 0)? as i32;
                        if code != 0 {
                            return Err(NetlinkError::Kernel(-code));
                        }
                        return Ok(out);
                    }
                    t if t == want => {
                        out.push(body.to_vec());
                        if single {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The kernel's route to `dst` (as `ip route get`).
    pub fn route_get(&mut self, dst: Ipv4Addr) -> Result<Route, NetlinkError> {
        let mut p = vec![AF_INET, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        push_attr(&mut p, RTA_DST, &dst.octets());
        let seq = self.request(RTM_GETROUTE, 0, &p)?;
        let bodies = self.collect(seq, RTM_NEWROUTE, true)?;
        parse_route(bodies.first().ok_or(NetlinkError::Malformed)?)
    }

    /// The IPv4 neighbour table.
    pub fn neighbours(&mut self) -> Result<Vec<Neighbour>, NetlinkError> {
        let p = [AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let seq = self.request(RTM_GETNEIGH, NLM_F_DUMP, &p)?;
        let bodies = self.collect(seq, RTM_NEWNEIGH, false)?;
        let mut out = Vec::new();
        for b in bodies {
            if let Some(n) = parse_neighbour(&b)? {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// All links.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let p = [AF_UNSPEC; 16];
        let seq = self.request(RTM_GETLINK, NLM_F_DUMP, &p)?;
        let bodies = self.collect(seq, RTM_NEWLINK, false)?;
        bodies.iter().map(|b| parse_link(b)).collect()
    }

    /// Every IPv4 address of every interface of the namespace.
    pub fn addresses(&mut self) -> Result<Vec<IfAddr>, NetlinkError> {
        let p = [AF_INET, 0, 0, 0, 0, 0, 0, 0];
        let seq = self.request(RTM_GETADDR, NLM_F_DUMP, &p)?;
        let bodies = self.collect(seq, RTM_NEWADDR, false)?;
        let mut out = Vec::new();
        for b in bodies {
            if let Some(a) = parse_addr(&b)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Attaches XDP program `prog_fd` to `ifindex` (replacing any program in
    /// the same mode), or detaches with `prog_fd` = -1. Unlike a BPF link, an
    /// attachment made this way outlives the process, which is what lets the
    /// classifiers fail closed when the dataplane dies.
    pub fn set_xdp(&mut self, ifindex: u32, prog_fd: i32, flags: u32) -> Result<(), NetlinkError> {
        let mut p = vec![AF_UNSPEC, 0, 0, 0];
        p.extend_from_slice(&ifindex.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        let mut nested = Vec::new();
        push_attr(&mut nested, IFLA_XDP_FD, &prog_fd.to_ne_bytes());
        push_attr(&mut nested, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
        push_attr(&mut p, IFLA_XDP | NLA_F_NESTED, &nested);
        let seq = self.request(RTM_SETLINK, NLM_F_ACK, &p)?;
        self.collect(seq, 0xffff, false).map(|_| ())
    }

    /// Asks the kernel to resolve (or re-confirm) `addr` on `ifindex`, as
    /// `ip neigh replace ADDR dev IF use` does: the kernel sends ARP requests
    /// itself and the answer lands in its neighbour table.
    pub fn resolve(&mut self, ifindex: u32, addr: Ipv4Addr) -> Result<(), NetlinkError> {
        let mut p = vec![AF_INET, 0, 0, 0];
        p.extend_from_slice(&ifindex.to_ne_bytes());
        p.extend_from_slice(&0u16.to_ne_bytes()); // state: NUD_NONE
        p.push(NTF_USE);
        p.push(0);
        push_attr(&mut p, NDA_DST, &addr.octets());
        let seq = self.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, &p)?;
        self.collect(seq, 0xffff, false).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_walk_stops_on_garbage() {
        let mut b = Vec::new();
        push_attr(&mut b, 1, &[10, 0, 0, 1]);
        push_attr(&mut b, 2, &[1, 2, 3, 4, 5, 6]);
        let got: Vec<_> = attrs(&b).collect();
        assert_eq!(
            got,
            vec![(1, &[10u8, 0, 0, 1][..]), (2, &[1u8, 2, 3, 4, 5, 6][..])]
        );
        // Declared length beyond the buffer, or below the header: stop.
        assert_eq!(attrs(&[200, 0, 1, 0, 9]).count(), 0);
        assert_eq!(attrs(&[2, 0, 1, 0]).count(), 0);
    }

    #[test]
    fn parsers_reject_short_bodies() {
        assert!(matches!(
            parse_route(&[2, 32]),
            Err(NetlinkError::Malformed)
        ));
        assert!(matches!(
            parse_neighbour(&[2, 0, 0]),
            Err(NetlinkError::Malformed)
        ));
        assert!(matches!(parse_link(&[0; 3]), Err(NetlinkError::Malformed)));
        assert!(matches!(
            parse_addr(&[AF_INET, 24, 0]),
            Err(NetlinkError::Malformed)
        ));
    }

    #[test]
    fn address_body_prefers_the_local_address() {
        let mut b = vec![AF_INET, 32, 0, 0];
        b.extend_from_slice(&9u32.to_ne_bytes());
        push_attr(&mut b, IFA_ADDRESS, &[192, 0, 2, 2]);
        assert_eq!(
            parse_addr(&b).unwrap(),
            Some(IfAddr {
                ifindex: 9,
                addr: Ipv4Addr::new(192, 0, 2, 2),
                prefix_len: 32
            })
        );
        // Point-to-point: IFA_ADDRESS is the peer, IFA_LOCAL ours.
        push_attr(&mut b, IFA_LOCAL, &[192, 0, 2, 1]);
        assert_eq!(
            parse_addr(&b).unwrap().map(|a| a.addr),
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        b[0] = 10; // AF_INET6
        assert_eq!(parse_addr(&b).unwrap(), None);
    }

    #[test]
    fn neighbour_body_parses() {
        let mut b = vec![AF_INET, 0, 0, 0];
        b.extend_from_slice(&7u32.to_ne_bytes());
        b.extend_from_slice(&nud::REACHABLE.to_ne_bytes());
        b.extend_from_slice(&[0, 1]);
        push_attr(&mut b, NDA_DST, &[10, 1, 1, 2]);
        push_attr(&mut b, NDA_LLADDR, &[2, 0, 0, 0, 0, 9]);
        let n = parse_neighbour(&b).unwrap().unwrap();
        assert_eq!(n.ifindex, 7);
        assert_eq!(n.addr, Ipv4Addr::new(10, 1, 1, 2));
        assert_eq!(n.lladdr, Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(n.state, nud::REACHABLE);
    }

    #[test]
    fn route_body_needs_an_output_interface() {
        let mut b = vec![AF_INET, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        push_attr(&mut b, RTA_GATEWAY, &[172, 16, 172, 20]);
        assert!(parse_route(&b).is_err());
        push_attr(&mut b, RTA_OIF, &3u32.to_ne_bytes());
        let r = parse_route(&b).unwrap();
        assert_eq!(
            (r.oif, r.gateway),
            (3, Some(Ipv4Addr::new(172, 16, 172, 20)))
        );
        assert_eq!(
            r.next_hop(Ipv4Addr::new(10, 1, 2, 2)),
            Ipv4Addr::new(172, 16, 172, 20)
        );
    }

    /// Talks to the kernel of the test's own namespace: loopback exists.
    #[test]
    fn live_links_and_route_to_loopback() {
        let mut nl = Netlink::open().unwrap();
        let links = nl.links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo"));
        let r = nl.route_get(Ipv4Addr::LOCALHOST).unwrap();
        let lo = links.iter().find(|l| l.name == "lo").unwrap();
        assert_eq!(r.oif, lo.ifindex);
        nl.neighbours().unwrap();
        // Loopback is up in every test namespace, so 127.0.0.1 is on it.
        let addrs = nl.addresses().unwrap();
        assert!(
            addrs
                .iter()
                .any(|a| a.addr == Ipv4Addr::LOCALHOST && a.ifindex == lo.ifindex),
            "{addrs:?}"
        );
    }
}
