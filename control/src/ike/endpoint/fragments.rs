//! IKE fragmentation (`crypto isakmp fragmentation`), the Cisco format strongSwan also
//! speaks; the wire format is in [`crate::isakmp::fragment`].
//!
//! - **Vendor ID.** With fragmentation on, the initiator sends the FRAGMENTATION vendor ID
//!   in MM1/AM1 and the responder answers with it in MM2/AM2 when the initiator sent it.
//! - **Sending.** A message for a phase-1 SA whose peer announced the vendor ID is cut
//!   into fragments when its datagram would exceed the configured size, as the message
//!   leaves the endpoint ([`Endpoint::poll_transmit`]); a retransmission is cut again, with
//!   a new fragment ID.
//! - **Receiving.** [`Reassembler`] collects the fragments of one (peer, initiator cookie)
//!   and fragment ID: bounded memory (fragments per message, bytes per message, messages
//!   under reassembly), a time limit, duplicates ignored, any order. A newer fragment ID
//!   replaces an unfinished older one (the peer retransmitted). The whole message is then
//!   handled as if it had come in one datagram.

use super::*;
use crate::isakmp::fragment::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// Fragments per message we keep at most.
pub const MAX_FRAGMENTS: u8 = 64;
/// Bytes of one reassembled message at most (a 4096-bit certificate chain with intermediate
/// CAs fits several times).
pub const MAX_REASSEMBLED: usize = 32 * 1024;
/// Messages under reassembly at most; a new one evicts the oldest.
pub const MAX_PENDING: usize = 64;
/// How long the fragments of one message may take to arrive.
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);
/// IOS's default size of a fragment's IP datagram when no `mtu` is given.
pub const DEFAULT_FRAGMENT_MTU: u16 = 576;

/// What fragmentation did, for `show` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragmentCounters {
    /// Our messages sent in fragments, and the fragments.
    pub tx_messages: u64,
    pub tx_fragments: u64,
    /// Fragments received, messages reassembled from them.
    pub rx_fragments: u64,
    pub rx_reassembled: u64,
    /// Fragments refused (malformed, conflicting, over a limit, fragmentation off).
    pub rx_refused: u64,
    pub rx_duplicates: u64,
    /// Unfinished messages given up (time limit, evicted, replaced by a newer ID).
    pub rx_abandoned: u64,
}

/// One message under reassembly.
struct Pending {
    started: Instant,
    id: u16,
    parts: BTreeMap<u8, Vec<u8>>,
    last: Option<u8>,
    bytes: usize,
}

/// What one fragment did to its message.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// More fragments are needed.
    Incomplete,
    /// A fragment we already had, with the same data.
    Duplicate,
    /// The whole message.
    Complete(Vec<u8>),
}

/// The fragments received, by peer and initiator cookie.
#[derive(Default)]
pub struct Reassembler {
    pending: HashMap<(SocketAddr, [u8; 8]), Pending>,
    pub counters: FragmentCounters,
}

impl Reassembler {
    /// Adds one fragment from `remote`.
    pub fn add(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        f: &FragmentRepr,
    ) -> Result<Added, FragmentError> {
        self.expire(now);
        self.counters.rx_fragments += 1;
        let r = self.add_inner(now, remote, f);
        match &r {
            Ok(Added::Duplicate) => self.counters.rx_duplicates += 1,
            Ok(Added::Complete(_)) => self.counters.rx_reassembled += 1,
            Ok(Added::Incomplete) => {}
            Err(_) => self.counters.rx_refused += 1,
        }
        r
    }

    fn add_inner(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        f: &FragmentRepr,
    ) -> Result<Added, FragmentError> {
        if f.number > MAX_FRAGMENTS {
            return Err(FragmentError::TooManyFragments(f.number));
        }
        let key = (remote, f.header.icookie);
        if self.pending.get(&key).is_some_and(|p| p.id != f.id) {
            self.pending.remove(&key);
            self.counters.rx_abandoned += 1;
        }
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.pending.remove(&k);
                self.counters.rx_abandoned += 1;
            }
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            started: now,
            id: f.id,
            parts: BTreeMap::new(),
            last: None,
            bytes: 0,
        });
        if let Some(have) = p.parts.get(&f.number) {
            return if have[..] == *f.data {
                Ok(Added::Duplicate)
            } else {
                Err(FragmentError::Conflict(f.number))
            };
        }
        if f.last {
            if let Some(l) = p.last {
                return Err(FragmentError::TwoLast(l, f.number));
            }
            if let Some((&max, _)) = p.parts.last_key_value() {
                if max > f.number {
                    return Err(FragmentError::BeyondLast {
                        number: max,
                        last: f.number,
                    });
                }
            }
        } else if let Some(l) = p.last {
            if f.number > l {
                return Err(FragmentError::BeyondLast {
                    number: f.number,
                    last: l,
                });
            }
        }
        if p.bytes + f.data.len() > MAX_REASSEMBLED {
            self.pending.remove(&key);
            self.counters.rx_abandoned += 1;
            return Err(FragmentError::TooLarge(MAX_REASSEMBLED));
        }
        p.bytes += f.data.len();
        p.parts.insert(f.number, f.data.to_vec());
        if f.last {
            p.last = Some(f.number);
        }
        let complete = p.last.is_some_and(|l| p.parts.len() == l as usize);
        if !complete {
            return Ok(Added::Incomplete);
        }
        let p = self.pending.remove(&key).expect("present");
        let mut whole = Vec::with_capacity(p.bytes);
        for part in p.parts.values() {
            whole.extend_from_slice(part);
        }
        // One ISAKMP message of the same cookies, whole, and not itself a fragment.
        let ok = Header::new_checked(&whole[..]).is_ok_and(|h| {
            h.length() as usize == whole.len()
                && h.initiator_cookie() == f.header.icookie
                && h.responder_cookie() == f.header.rcookie
                && h.next_payload() != PAYLOAD_FRAGMENT
        });
        if !ok {
            return Err(FragmentError::BadReassembly);
        }
        Ok(Added::Complete(whole))
    }

    /// Gives up the messages whose fragments took too long.
    pub fn expire(&mut self, now: Instant) {
        let before = self.pending.len();
        self.pending
            .retain(|_, p| now.saturating_duration_since(p.started) < REASSEMBLY_TIMEOUT);
        self.counters.rx_abandoned += (before - self.pending.len()) as u64;
    }

    /// When the oldest unfinished message expires.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.started + REASSEMBLY_TIMEOUT)
            .min()
    }

    /// Messages under reassembly and the bytes they hold.
    pub fn pending(&self) -> (usize, usize) {
        (
            self.pending.len(),
            self.pending.values().map(|p| p.bytes).sum(),
        )
    }
}

/// Per phase-1 SA: whether the peer announced fragmentation, and our next fragment ID.
#[derive(Debug, Default, Clone, Copy)]
pub struct FragState {
    pub peer: bool,
    pub next_id: u16,
}

impl Endpoint {
    /// Counters of IKE fragmentation.
    pub fn fragment_counters(&self) -> FragmentCounters {
        self.frags.counters
    }

    /// The FRAGMENTATION vendor ID for our MM1/AM1 (`initiator`) or MM2/AM2 (when the
    /// initiator sent it), if fragmentation is on.
    pub(super) fn frag_vids(&self, initiator: bool, peer: bool) -> Vec<Payload> {
        if self.cfg.fragmentation.is_some() && (initiator || peer) {
            vec![Payload::VendorId(VID_FRAGMENTATION.to_vec())]
        } else {
            vec![]
        }
    }

    /// A received message whose first payload is a fragment (the non-ESP marker removed).
    pub(super) fn on_fragment(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &[u8],
    ) {
        if self.cfg.fragmentation.is_none() {
            self.frags.counters.rx_refused += 1;
            self.counters.rx_unexpected += 1;
            return;
        }
        let f = match FragmentRepr::parse(msg) {
            Ok(f) => f,
            Err(e) => {
                self.frags.counters.rx_refused += 1;
                self.counters.rx_malformed += 1;
                self.ik_raw(format!("ISAKMP: fragment from {} dropped: {e}", v4(remote)));
                return;
            }
        };
        match self.frags.add(now, remote, &f) {
            Ok(Added::Complete(whole)) => {
                self.ik_raw(format!(
                    "ISAKMP: reassembled {} bytes from {} fragments (id {}) from {}",
                    whole.len(),
                    f.number.max(1),
                    f.id,
                    v4(remote)
                ));
                if let Some(sa) = self.p1.get_mut(&f.header.icookie) {
                    sa.frag.peer = true;
                }
                self.handle_message(now, local, remote, &whole);
            }
            Ok(Added::Incomplete | Added::Duplicate) => {}
            Err(e) => {
                self.counters.rx_malformed += 1;
                self.ik_raw(format!("ISAKMP: fragment from {} dropped: {e}", v4(remote)));
            }
        }
    }

    /// Cuts `tx` into fragments when it is a message of a phase-1 SA whose peer does
    /// fragmentation and its datagram exceeds the configured size: returns the first and
    /// queues the others at the front.
    pub(super) fn fragment_transmit(&mut self, tx: Transmit) -> Transmit {
        let Some(mtu) = self.cfg.fragmentation else {
            return tx;
        };
        let natt = tx.local.port() == NATT_PORT || tx.remote.port() == NATT_PORT;
        let off = if natt { NON_ESP_MARKER.len() } else { 0 };
        if tx.data.len() + 28 <= mtu as usize || tx.data.len() < off {
            return tx;
        }
        let msg = &tx.data[off..];
        let Ok(h) = Header::new_checked(msg) else {
            return tx;
        };
        if h.next_payload() == PAYLOAD_FRAGMENT {
            return tx;
        }
        let Some(sa) = self.p1.get_mut(&h.initiator_cookie()) else {
            return tx;
        };
        if !sa.frag.peer {
            return tx;
        }
        sa.frag.next_id = sa.frag.next_id.wrapping_add(1).max(1);
        let (id, conn) = (sa.frag.next_id, sa.conn_id);
        let exchange = match sa.mode {
            Phase1Mode::Main => ExchangeType::Main,
            Phase1Mode::Aggressive => ExchangeType::Aggressive,
        };
        let frags = fragment(msg, id, slice_len(mtu as usize, natt), exchange);
        self.frags.counters.tx_messages += 1;
        self.frags.counters.tx_fragments += frags.len() as u64;
        self.ik(
            conn,
            format!(
                "sending {} bytes in {} fragments (id {id}, mtu {mtu})",
                msg.len(),
                frags.len()
            ),
        );
        let mut out: Vec<Transmit> = frags
            .into_iter()
            .map(|f| natt::framed(tx.local, tx.remote, f))
            .collect();
        let first = out.remove(0);
        for t in out.into_iter().rev() {
            self.transmits.push_front(t);
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        Instant::now()
    }
    fn peer() -> SocketAddr {
        "172.16.172.20:500".parse().unwrap()
    }
    use crate::isakmp::fragment::test_message as whole;
    fn frags(m: &[u8], id: u16, slice: usize) -> Vec<Vec<u8>> {
        fragment(m, id, slice, ExchangeType::Main)
    }
    fn add(r: &mut Reassembler, t: Instant, f: &[u8]) -> Result<Added, FragmentError> {
        r.add(t, peer(), &FragmentRepr::parse(f).unwrap())
    }

    #[test]
    fn in_order_fragments_give_back_the_message() {
        let m = whole(2500, [1; 8]);
        let fs = frags(&m, 3, 1000);
        let mut r = Reassembler::default();
        let t = now();
        assert_eq!(add(&mut r, t, &fs[0]), Ok(Added::Incomplete));
        assert_eq!(add(&mut r, t, &fs[1]), Ok(Added::Incomplete));
        assert_eq!(add(&mut r, t, &fs[2]), Ok(Added::Complete(m)));
        assert_eq!(r.pending(), (0, 0));
        assert_eq!(r.counters.rx_reassembled, 1);
    }

    #[test]
    fn out_of_order_and_duplicate_fragments_give_back_the_message_once() {
        let m = whole(4000, [1; 8]);
        let fs = frags(&m, 9, 700);
        assert_eq!(fs.len(), 6);
        let mut r = Reassembler::default();
        let t = now();
        for i in [5, 2, 2, 0, 4, 3] {
            let got = add(&mut r, t, &fs[i]).unwrap();
            assert!(matches!(got, Added::Incomplete | Added::Duplicate), "{i}");
        }
        assert_eq!(r.counters.rx_duplicates, 1);
        assert_eq!(add(&mut r, t, &fs[1]), Ok(Added::Complete(m)));
        // The same fragment again starts a new (unfinished) message, which times out.
        assert_eq!(add(&mut r, t, &fs[1]), Ok(Added::Incomplete));
        assert_eq!(r.next_timeout(), Some(t + REASSEMBLY_TIMEOUT));
        r.expire(t + REASSEMBLY_TIMEOUT);
        assert_eq!(r.pending(), (0, 0));
        assert_eq!(r.counters.rx_abandoned, 1);
    }

    #[test]
    fn a_newer_fragment_id_replaces_the_unfinished_message() {
        let m = whole(3000, [1; 8]);
        let old = frags(&m, 1, 1000);
        let new = frags(&m, 2, 1000);
        let mut r = Reassembler::default();
        let t = now();
        add(&mut r, t, &old[0]).unwrap();
        add(&mut r, t, &old[1]).unwrap();
        add(&mut r, t, &new[2]).unwrap();
        add(&mut r, t, &new[0]).unwrap();
        assert_eq!(r.counters.rx_abandoned, 1);
        assert_eq!(add(&mut r, t, &new[1]), Ok(Added::Complete(m)));
    }

    #[test]
    fn peers_and_cookies_reassemble_apart() {
        let a = whole(2000, [1; 8]);
        let b = whole(2000, [7; 8]);
        let (fa, fb) = (frags(&a, 1, 1200), frags(&b, 1, 1200));
        let mut r = Reassembler::default();
        let t = now();
        add(&mut r, t, &fa[0]).unwrap();
        add(&mut r, t, &fb[0]).unwrap();
        let other: SocketAddr = "172.16.172.30:500".parse().unwrap();
        r.add(t, other, &FragmentRepr::parse(&fa[1]).unwrap())
            .unwrap();
        assert_eq!(r.pending().0, 3);
        assert_eq!(add(&mut r, t, &fb[1]), Ok(Added::Complete(b)));
        assert_eq!(add(&mut r, t, &fa[1]), Ok(Added::Complete(a)));
    }

    #[test]
    fn conflicting_and_inconsistent_fragments_are_refused() {
        let m = whole(3000, [1; 8]);
        let fs = frags(&m, 1, 1000);
        let mut r = Reassembler::default();
        let t = now();
        add(&mut r, t, &fs[0]).unwrap();
        let mut changed = fs[0].clone();
        let n = changed.len();
        changed[n - 1] ^= 1;
        assert_eq!(add(&mut r, t, &changed), Err(FragmentError::Conflict(1)));
        // Number 2 marked last: then 3, marked last too, is a second last fragment.
        let mut last2 = fs[1].clone();
        last2[28 + 7] = FLAG_LAST;
        let mut r = Reassembler::default();
        assert_eq!(add(&mut r, t, &last2), Ok(Added::Incomplete));
        assert_eq!(add(&mut r, t, &fs[2]), Err(FragmentError::TwoLast(2, 3)));
        let mut r = Reassembler::default();
        add(&mut r, t, &fs[2]).unwrap();
        let mut plain1 = fs[0].clone();
        plain1[28 + 6] = 4;
        assert_eq!(
            add(&mut r, t, &plain1),
            Err(FragmentError::BeyondLast { number: 4, last: 3 })
        );
        let mut r = Reassembler::default();
        add(&mut r, t, &plain1).unwrap();
        assert_eq!(
            add(&mut r, t, &fs[2]),
            Err(FragmentError::BeyondLast { number: 4, last: 3 })
        );
        let mut big = fs[0].clone();
        big[28 + 6] = MAX_FRAGMENTS + 1;
        assert_eq!(
            add(&mut Reassembler::default(), t, &big),
            Err(FragmentError::TooManyFragments(MAX_FRAGMENTS + 1))
        );
    }

    #[test]
    fn a_reassembly_that_is_not_one_message_of_those_cookies_is_refused() {
        let m = whole(2000, [1; 8]);
        let mut fs = frags(&m, 1, 1200);
        // A fragment with other cookies belongs to another message.
        fs[1][..8].copy_from_slice(&[5; 8]);
        let mut r = Reassembler::default();
        let t = now();
        add(&mut r, t, &fs[0]).unwrap();
        assert_eq!(add(&mut r, t, &fs[1]), Ok(Added::Incomplete));
        assert_eq!(r.pending().0, 2);
        // Slices that do not add up to the length their header claims.
        let mut short = frags(&m, 2, 1200);
        let n = short[1].len() - 10;
        short[1].truncate(n);
        short[1][24..28].copy_from_slice(&(n as u32).to_be_bytes());
        short[1][28 + 2..28 + 4].copy_from_slice(&((n - 28) as u16).to_be_bytes());
        let mut r = Reassembler::default();
        add(&mut r, t, &short[0]).unwrap();
        assert_eq!(add(&mut r, t, &short[1]), Err(FragmentError::BadReassembly));
    }

    #[test]
    fn memory_stays_bounded() {
        let t = now();
        let mut r = Reassembler::default();
        // A message larger than the limit is dropped as soon as it passes it.
        let m = whole(MAX_REASSEMBLED + 2000, [1; 8]);
        let fs = frags(&m, 1, 1200);
        let mut refused = 0;
        for f in &fs[..fs.len() - 1] {
            if add(&mut r, t, f) == Err(FragmentError::TooLarge(MAX_REASSEMBLED)) {
                refused += 1;
            }
        }
        assert!(refused >= 1);
        assert!(r.pending().1 <= MAX_REASSEMBLED);
        // Many cookies: at most MAX_PENDING messages are held, the oldest goes first.
        let mut r = Reassembler::default();
        for i in 0..(MAX_PENDING as u32 + 10) {
            let mut ck = [0u8; 8];
            ck[..4].copy_from_slice(&i.to_be_bytes());
            let m = whole(2000, ck);
            let f = frags(&m, 1, 1200);
            add(&mut r, t + Duration::from_millis(i as u64), &f[0]).unwrap();
        }
        assert_eq!(r.pending().0, MAX_PENDING);
        assert_eq!(r.counters.rx_abandoned, 10);
    }
}
