//! Informational exchanges: notifies (in the clear before phase 1 has keys, protected
//! after), DPD (RFC 3706 R-U-THERE / R-U-THERE-ACK), DELETE, INITIAL-CONTACT, and the
//! operator's `clear crypto isakmp`.

use super::phase1::P1Sa;
use super::quick::{check_qm_hash, qm_hash};
use super::timers::Timer;
use super::*;
use std::time::Duration;

impl Endpoint {
    /// A protected informational message under an established SA (nothing otherwise).
    pub(super) fn send_informational(&mut self, sa: &P1Sa, payload: Payload) {
        let phase1::P1State::Established(est) = &sa.state else {
            return;
        };
        self.send_protected(sa, &est.k, &est.k.iv, payload);
    }

    /// An informational message protected with `k`; `last_block` is the last CBC block of
    /// phase 1 (RFC 2409 App. B), from which the message's IV follows.
    fn send_protected(
        &mut self,
        sa: &P1Sa,
        k: &phase1::IsakmpKeys,
        last_block: &[u8],
        payload: Payload,
    ) {
        let mid = loop {
            let x = self.rng.u32();
            if x != 0 {
                break x;
            }
        };
        let mut rb = Vec::new();
        emit_chain(std::slice::from_ref(&payload), &mut rb);
        let h = qm_hash(k, mid, None, &rb);
        let iv = crate::ike::crypto::phase2_iv(k.neg.hash, last_block, mid, k.neg.enc.block_len());
        let ps = [Payload::Hash(h), payload];
        let (out, _) = k.seal(sa, &iv, ExchangeType::Informational, mid, 0, &ps);
        self.transmits
            .push_back(natt::framed(sa.local, sa.remote, out));
    }

    /// The DELETE payload of the ISAKMP SA itself.
    fn isakmp_delete(sa: &P1Sa) -> Payload {
        let mut spi = sa.icookie.to_vec();
        spi.extend_from_slice(&sa.rcookie);
        Payload::Delete(DeletePayload {
            doi: DOI_IPSEC,
            protocol: proto::ISAKMP,
            spi_size: 16,
            spis: vec![spi],
        })
    }

    /// The peer's certificate or signature was refused in the last, encrypted phase-1
    /// message (MM5, MM6, AM3): a protected DELETE of the ISAKMP SA under the new keys, so
    /// a peer that already counts the SA established (a Main Mode responder once it sent
    /// MM6, an Aggressive Mode initiator once it sent AM3) drops it too. `last_block`: the
    /// refused message's last CBC block.
    pub(super) fn send_refusal_delete(
        &mut self,
        sa: &P1Sa,
        k: &phase1::IsakmpKeys,
        last_block: &[u8],
    ) {
        self.ik(
            sa.conn_id,
            format!(
                "sending DELETE of the refused ISAKMP SA to {}",
                v4(sa.remote)
            ),
        );
        self.send_protected(sa, k, last_block, Self::isakmp_delete(sa));
    }

    pub(super) fn send_info_notify(
        &mut self,
        sa: &P1Sa,
        nt: NotifyType,
        protocol: u8,
        spi: Vec<u8>,
    ) {
        let p = Payload::Notify(NotifyPayload {
            doi: DOI_IPSEC,
            protocol,
            notify_type: nt.code(),
            spi,
            data: vec![],
        });
        self.send_informational(sa, p);
    }

    /// An unprotected notify about the SA (phase 1 refused before there were keys).
    pub(super) fn send_notify_clear(&mut self, sa: &P1Sa, nt: NotifyType) {
        let notify = sa.isakmp_notify(nt, vec![]);
        let msg = sa.clear_msg(ExchangeType::Informational, vec![notify]);
        self.transmits
            .push_back(natt::framed(sa.local, sa.remote, msg));
    }

    fn send_dpd(&mut self, sa: &P1Sa, nt: NotifyType, seq: u32) {
        let p = sa.isakmp_notify(nt, seq.to_be_bytes().to_vec());
        self.send_informational(sa, p);
    }

    /// DPD: sends the next R-U-THERE and waits `retry` for its ACK.
    pub(super) fn send_r_u_there(
        &mut self,
        now: Instant,
        sa: &mut P1Sa,
        retry: Duration,
        again: bool,
    ) {
        sa.dpd.seq = sa.dpd.seq.wrapping_add(1);
        let seq = sa.dpd.seq;
        sa.dpd.outstanding = Some(seq);
        sa.timers.set(Timer::DpdAck, now + retry);
        let (conn, peer) = (sa.conn_id, v4(sa.remote));
        let again = if again { " (retry)" } else { "" };
        self.ik(
            conn,
            format!("DPD/R_U_THERE sent to {peer}, sequence {seq:#x}{again}"),
        );
        self.send_dpd(sa, NotifyType::RUThere, seq);
    }

    /// INITIAL-CONTACT: the peer rebooted; forget everything else we had with it. "It" is
    /// the peer's address *and* port, as IOS keys its peers: many Easy VPN clients behind one
    /// NAT share the address (and the group identity) but each has its own NAT port, and one
    /// client's INITIAL-CONTACT must not tear down its neighbours' SAs.
    pub(super) fn process_initial_contact(&mut self, sa: &P1Sa, ps: &[Payload]) {
        let ic = ps.iter().any(|p| matches!(p, Payload::Notify(n) if n.notify_type == NotifyType::InitialContact.code()));
        if !ic {
            return;
        }
        let peer = v4(sa.remote);
        self.ik(sa.conn_id, format!("received INITIAL_CONTACT from {peer}"));
        // `sa` is out of the table while it is handled: every SA there is another one.
        let old: Vec<[u8; 8]> = self
            .p1
            .iter()
            .filter(|(_, s)| s.remote == sa.remote && s.state.is_established())
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            self.with_sa(k, |ep, s| {
                ep.fail_p1(s, "INITIAL_CONTACT", FailReason::PeerDelete)
            });
        }
        self.remove_peer_pairs(sa.remote);
    }

    /// Deletes the SA, telling the peer if it was established (not yet: a failed
    /// negotiation, counted as `why`).
    pub(super) fn delete_p1(&mut self, sa: &mut P1Sa, reason: &str, why: FailReason) {
        if sa.state.is_established() {
            self.send_informational(sa, Self::isakmp_delete(sa));
        }
        self.fail_p1(sa, reason, why);
    }

    /// XAUTH / Mode Config (phase 1.5) failed for `why`: counted, and the SA deleted.
    pub(super) fn fail_transaction(&mut self, sa: &mut P1Sa, reason: &str, why: FailReason) {
        self.counters.p15_failed.add(why);
        self.delete_p1(sa, reason, why);
    }

    /// `clear crypto isakmp`: deletes every ISAKMP SA (and tells the peers).
    pub fn clear_isakmp(&mut self, _now: Instant) {
        let keys: Vec<_> = self.p1.keys().copied().collect();
        for k in keys {
            self.with_sa(k, |ep, sa| {
                ep.delete_p1(sa, "clear crypto isakmp", FailReason::Cleared)
            });
        }
    }

    /// An unprotected informational: only believed before phase 1 has keys (e.g.
    /// NO_PROPOSAL_CHOSEN in answer to MM1).
    fn informational_clear(&mut self, sa: &mut P1Sa, rx: &Rx) -> R<()> {
        let conn = sa.conn_id;
        let m = Message::parse(rx.msg)?;
        for p in &m.payloads {
            let Payload::Notify(n) = p else {
                continue;
            };
            let nt = NotifyType::from_code(n.notify_type);
            self.ik(
                conn,
                format!(
                    "received packet from {} informational, notify {}",
                    v4(rx.remote),
                    nt.ios_name()
                ),
            );
            let keyed = sa.state.keys().is_some();
            if !keyed && sa.state.expects_first_answer() && nt == NotifyType::NoProposalChosen {
                self.ik(
                    conn,
                    format!(
                        "phase 1 SA policy not acceptable! (local {} remote {})",
                        self.cfg.local_addr,
                        v4(rx.remote)
                    ),
                );
                self.fail_p1(
                    sa,
                    "phase 1 SA policy not acceptable",
                    FailReason::NoProposalChosen,
                );
            } else if keyed && !sa.state.is_established() {
                // e.g. the peer could not decrypt our MM5 (wrong key)
                return Err(IkeError::Peer("peer reported an error"));
            }
        }
        Ok(())
    }

    pub(super) fn informational(&mut self, sa: &mut P1Sa, rx: &Rx) -> R<()> {
        let (now, conn, remote, hdr) = (rx.now, sa.conn_id, rx.remote, rx.hdr);
        if !hdr.encrypted() {
            return self.informational_clear(sa, rx);
        }
        let Some(k) = sa.state.keys() else {
            return Err(IkeError::Peer("encrypted informational before keys"));
        };
        let mid = hdr.message_id;
        // Before phase 1 completes the IV is the current phase-1 one (RFC 2409 §5.5 note).
        let iv = k.phase2_iv(mid);
        let (ps, pt, _) = self.decrypt(k, &iv, &hdr, rx.msg)?;
        check_qm_hash(k, mid, &ps, &pt, None)?;
        sa.last_peer_activity = now;
        for p in ps.iter().skip(1) {
            match p {
                Payload::Notify(n) => {
                    let nt = NotifyType::from_code(n.notify_type);
                    let seq = if n.data.len() >= 4 {
                        u32::from_be_bytes([n.data[0], n.data[1], n.data[2], n.data[3]])
                    } else {
                        0
                    };
                    match nt {
                        NotifyType::RUThere => {
                            self.ik(
                                conn,
                                format!(
                                    "received DPD_R_U_THERE from peer {}, sequence {seq:#x}",
                                    v4(remote)
                                ),
                            );
                            self.send_dpd(sa, NotifyType::RUThereAck, seq);
                            self.ik(
                                conn,
                                format!(
                                    "DPD/R_U_THERE_ACK sent to {}, sequence {seq:#x}",
                                    v4(remote)
                                ),
                            );
                        }
                        NotifyType::RUThereAck => {
                            if sa.dpd.outstanding == Some(seq) {
                                sa.dpd.outstanding = None;
                                sa.timers.stop(Timer::DpdAck);
                                sa.dpd.misses = 0;
                            }
                            self.ik(
                                conn,
                                format!(
                                    "received DPD_R_U_THERE_ACK from peer {}, sequence {seq:#x}",
                                    v4(remote)
                                ),
                            );
                        }
                        other => {
                            self.ik(
                                conn,
                                format!(
                                    "processing NOTIFY {} protocol {}",
                                    other.ios_name(),
                                    n.protocol
                                ),
                            );
                            // An error notify (RFC 2408 §3.14.1: types below 8192) under the
                            // phase-1 keys before phase 1 is up: the peer gave up on the
                            // exchange (AUTHENTICATION_FAILED in answer to MM5, say), so
                            // resending our last message would only wait out the retries.
                            if !sa.state.is_established() && n.notify_type < 8192 {
                                self.fail_p1(
                                    sa,
                                    &format!("peer sent {}", other.ios_name()),
                                    FailReason::of_notify(other),
                                );
                            }
                        }
                    }
                }
                Payload::Delete(d) => {
                    self.ik(
                        conn,
                        format!("processing DELETE payload. message ID = {mid}"),
                    );
                    if d.protocol == proto::ISAKMP {
                        self.ik(
                            conn,
                            "deleting SA reason \"Receive initial contact\" / peer delete",
                        );
                        let was = sa.state.is_established();
                        sa.kill();
                        if was {
                            self.events.push_back(Event::IsakmpSaDown {
                                conn_id: sa.conn_id,
                                peer: sa.remote,
                            });
                        } else {
                            self.counters.p1_failed.add(FailReason::PeerDelete);
                            self.events.push_back(Event::NegotiationFailed {
                                peer: v4(remote),
                                reason: "peer delete".into(),
                            });
                        }
                    } else if d.protocol == proto::ESP {
                        for spi in d.spis.iter().filter(|s| s.len() == 4) {
                            let s = u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]]);
                            if let Some(i) = self
                                .pairs
                                .iter()
                                .position(|p| p.outbound == s && p.peer == v4(remote))
                            {
                                self.ips(format!("IPSEC(delete_sa): deleting SA, (sa) sa_dest= {}, sa_prot= 50, sa_spi= {s:#X}({s})", v4(remote)));
                                self.remove_pair(i, false);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
