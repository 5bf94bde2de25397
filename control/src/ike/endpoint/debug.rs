//! The IOS `debug crypto isakmp` / `debug crypto ipsec` lines: the two switches, the line
//! formats, and the transition lines, whose state names come from the state values
//! ([`IosState`], from [`P1State::ios`](super::phase1::P1State::ios) and
//! [`QmState::ios`](super::quick::QmState::ios)).

use super::phase1::{P1Sa, P1State};
use super::quick::{Qm, QmState};
use super::*;
use crate::isakmp::attr::p1;

/// An IOS IKE state, as `debug crypto isakmp` names it. Phase-1 SAs rest in some of them
/// (the states of [`P1State`]) and pass through the others while they process a message
/// (`IKE_I_MM2`: MM2 received, MM3 not yet sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IosState {
    Ready,
    IMm1,
    IMm2,
    IMm3,
    IMm4,
    IMm5,
    IMm6,
    RMm1,
    RMm2,
    RMm3,
    RMm4,
    RMm5,
    IAm1,
    IAm2,
    RAm1,
    RAm2,
    RAm3,
    P1Complete,
    DestSa,
    QmReady,
    QmIQm1,
    QmRQm2,
    QmPhase2Complete,
}

impl IosState {
    pub fn ios_name(self) -> &'static str {
        match self {
            IosState::Ready => "IKE_READY",
            IosState::IMm1 => "IKE_I_MM1",
            IosState::IMm2 => "IKE_I_MM2",
            IosState::IMm3 => "IKE_I_MM3",
            IosState::IMm4 => "IKE_I_MM4",
            IosState::IMm5 => "IKE_I_MM5",
            IosState::IMm6 => "IKE_I_MM6",
            IosState::RMm1 => "IKE_R_MM1",
            IosState::RMm2 => "IKE_R_MM2",
            IosState::RMm3 => "IKE_R_MM3",
            IosState::RMm4 => "IKE_R_MM4",
            IosState::RMm5 => "IKE_R_MM5",
            IosState::IAm1 => "IKE_I_AM1",
            IosState::IAm2 => "IKE_I_AM2",
            IosState::RAm1 => "IKE_R_AM1",
            IosState::RAm2 => "IKE_R_AM2",
            IosState::RAm3 => "IKE_R_AM3",
            IosState::P1Complete => "IKE_P1_COMPLETE",
            IosState::DestSa => "IKE_DEST_SA",
            IosState::QmReady => "IKE_QM_READY",
            IosState::QmIQm1 => "IKE_QM_I_QM1",
            IosState::QmRQm2 => "IKE_QM_R_QM2",
            IosState::QmPhase2Complete => "IKE_QM_PHASE2_COMPLETE",
        }
    }
}

/// One state entered: by phase-1 SA `conn`, or by its Quick Mode exchange `node`.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entered {
    pub conn: u32,
    pub node: Option<u32>,
    pub from: IosState,
    pub to: IosState,
    /// The SA or exchange now rests in `to` (false: it passes through it).
    pub stored: bool,
}

/// IOS inputs of the phase-1 transitions.
pub(super) const FROM_PEER_MM: &str = "IKE_MSG_FROM_PEER, IKE_MM_EXCH";
pub(super) const FROM_PEER_AM: &str = "IKE_MSG_FROM_PEER, IKE_AM_EXCH";
pub(super) const PROCESS_MM: &str = "IKE_MESG_INTERNAL, IKE_PROCESS_MAIN_MODE";
pub(super) const PROCESS_COMPLETE: &str = "IKE_MESG_INTERNAL, IKE_PROCESS_COMPLETE";
/// IOS inputs of the Quick Mode transitions.
pub(super) const QM_FROM_PEER: &str = "IKE_MSG_FROM_PEER, IKE_QM_EXCH";
pub(super) const QM_INIT: &str = "IKE_MESG_INTERNAL, IKE_INIT_QM";

impl Endpoint {
    fn dbg(&mut self, class: DebugClass, text: String) {
        let on = match class {
            DebugClass::Isakmp => self.debug_isakmp,
            DebugClass::Ipsec => self.debug_ipsec,
        };
        if on && self.debug.len() < 100_000 {
            self.debug.push_back(DebugLine { class, text });
        }
    }
    /// `ISAKMP (0:conn): text`
    pub(super) fn ik(&mut self, conn: u32, text: impl AsRef<str>) {
        if self.debug_isakmp {
            self.dbg(
                DebugClass::Isakmp,
                format!("ISAKMP (0:{conn}): {}", text.as_ref()),
            );
        }
    }
    pub(super) fn ik_raw(&mut self, text: impl Into<String>) {
        if self.debug_isakmp {
            self.dbg(DebugClass::Isakmp, text.into());
        }
    }
    /// A system message: queued for the daemon's logging always, and shown as it is under
    /// `debug crypto isakmp`. The queue keeps the newest 10 000 when nobody drains it.
    pub(super) fn syslog(&mut self, m: SyslogMessage) {
        self.ik_raw(m.to_string());
        if self.syslog.len() >= 10_000 {
            self.syslog.pop_front();
        }
        self.syslog.push_back(m);
    }
    pub(super) fn ips(&mut self, text: impl Into<String>) {
        if self.debug_ipsec {
            self.dbg(DebugClass::Ipsec, text.into());
        }
    }

    /// Every state entered so far, oldest first.
    #[cfg(test)]
    pub(crate) fn state_trace(&self) -> &[Entered] {
        &self.trace
    }

    /// Phase 1: the SA passes through `to` while it processes a message.
    pub(super) fn pass(&mut self, sa: &mut P1Sa, input: &str, to: IosState) {
        self.p1_transition(sa, input, to, false);
    }

    /// Phase 1: the SA rests in `new` from now on.
    pub(super) fn enter(&mut self, sa: &mut P1Sa, input: &str, new: P1State) {
        self.p1_transition(sa, input, new.ios(), true);
        sa.state = new;
    }

    fn p1_transition(&mut self, sa: &mut P1Sa, input: &str, to: IosState, stored: bool) {
        let (conn, from) = (sa.conn_id, sa.ios);
        if self.debug_isakmp {
            self.ik(conn, format!("Input = {input}"));
            self.ik_raw(format!(
                "Old State = {}  New State = {}",
                from.ios_name(),
                to.ios_name()
            ));
        }
        sa.ios = to;
        #[cfg(test)]
        self.trace.push(Entered {
            conn,
            node: None,
            from,
            to,
            stored,
        });
        #[cfg(not(test))]
        let _ = stored;
    }

    /// Quick Mode exchange `mid` of SA `conn` goes from `from` (the old state's name) to
    /// `new`, which it rests in.
    pub(super) fn qm_enter(
        &mut self,
        conn: u32,
        mid: u32,
        q: &mut Qm,
        input: &str,
        from: IosState,
        new: QmState,
    ) {
        q.state = new;
        self.qm_transition(conn, mid, input, from, q.state.ios());
    }

    /// The new Quick Mode exchange `q` (`mid` of SA `conn`) entered its first state.
    pub(super) fn qm_begun(&mut self, conn: u32, mid: u32, q: &Qm, input: &str) {
        self.counters.p2_started += 1;
        self.qm_transition(conn, mid, input, IosState::QmReady, q.state.ios());
    }

    fn qm_transition(&mut self, conn: u32, mid: u32, input: &str, from: IosState, to: IosState) {
        self.ik(conn, format!("Node {mid}, Input = {input}"));
        self.ik_raw(format!(
            "Old State = {}  New State = {}",
            from.ios_name(),
            to.ios_name()
        ));
        #[cfg(test)]
        self.trace.push(Entered {
            conn,
            node: Some(mid),
            from,
            to,
            stored: true,
        });
    }

    /// "processing X payload. message ID = M" for each X.
    pub(super) fn processing(&mut self, conn: u32, mid: u32, payloads: &[&str]) {
        for p in payloads {
            self.ik(conn, format!("processing {p} payload. message ID = {mid}"));
        }
    }

    pub(super) fn log_psk_found(&mut self, conn: u32, peer: Ipv4Addr) {
        self.ik(conn, format!("found peer pre-shared key matching {peer}"));
    }

    pub(super) fn log_authenticated(&mut self, conn: u32, remote: SocketAddr) {
        self.ik(
            conn,
            format!("SA has been authenticated with {}", v4(remote)),
        );
    }

    /// "received packet from A (I|R) STATE", the first line for every phase-1 message.
    pub(super) fn log_received(&mut self, sa: &P1Sa, remote: SocketAddr) {
        self.ik(
            sa.conn_id,
            format!(
                "received packet from {} ({}) {}",
                v4(remote),
                sa.role(),
                sa.state.show()
            ),
        );
    }

    /// `IPsec(sa_request)`: traffic (or an operator) asks for SAs of map entry `idx`.
    pub(super) fn log_sa_request(&mut self, idx: usize) {
        if !self.debug_ipsec {
            return;
        }
        let Some(m) = self.map_entry(idx) else {
            return;
        };
        let ts = m
            .transform_sets
            .first()
            .map(|t| t.ios_name())
            .unwrap_or_default();
        let lines = [
            "IPsec(sa_request): ,".to_string(),
            format!(
                "  (key eng. msg.) OUTBOUND local= {}, remote= {},",
                self.cfg.local_addr, m.peer
            ),
            format!("  local_proxy= {},", m.local_proxy),
            format!("  remote_proxy= {},", m.remote_proxy),
            format!(
                "  protocol= ESP, transform= {ts} ,\n  lifedur= {}s and {}kb,",
                m.lifetime_secs, m.lifetime_kb
            ),
            "  spi= 0x0(0), conn_id= 0, keysize= 0, flags= 0x400C".to_string(),
        ];
        for l in lines {
            self.ips(l);
        }
    }

    /// The SA pair's lines: `Creating IPsec SAs` and, with `debug crypto ipsec`, the key
    /// engine's.
    pub(super) fn log_sas_created(&mut self, conn: u32, inb: &IpsecSa, out: &IpsecSa) {
        let (peer, me) = (inb.src, inb.dst);
        let (lp, rp) = (inb.dst_proxy, inb.src_proxy);
        let (spi_in, peer_spi) = (inb.spi, out.spi);
        let (in_conn, out_conn) = (inb.conn_id, out.conn_id);
        let (secs, kb) = (inb.lifetime_secs, inb.lifetime_kb);
        let ts = inb.transform.ios_name();
        self.ik(conn, "Creating IPsec SAs");
        self.ik_raw(format!(
            "        inbound SA from {peer} to {me} (proxy {} to {})\n        has spi {:#X} and conn_id {in_conn} and flags 4\n        lifetime of {secs} seconds\n        lifetime of {kb} kilobytes",
            rp.addr, lp.addr, spi_in
        ));
        self.ik_raw(format!(
            "        outbound SA from {me} to {peer} (proxy {} to {})\n        has spi {} and conn_id {out_conn} and flags C\n        lifetime of {secs} seconds\n        lifetime of {kb} kilobytes",
            lp.addr, rp.addr, peer_spi as i32
        ));
        if !self.debug_ipsec {
            return;
        }
        self.ips("IPsec(key_engine): got a queue event...".to_string());
        for (dir, spi, c, fl) in [
            ("INBOUND", spi_in, in_conn, "0x4"),
            ("OUTBOUND", peer_spi, out_conn, "0xC"),
        ] {
            self.ips("IPsec(initialize_sas): ,".to_string());
            self.ips(format!(
                "  (key eng. msg.) {dir} local= {me}, remote= {peer},"
            ));
            self.ips(format!("    local_proxy= {lp},"));
            self.ips(format!("    remote_proxy= {rp},"));
            self.ips(format!("    protocol= ESP, transform= {ts} ,"));
            self.ips(format!("    lifedur= {secs}s and {kb}kb,"));
            self.ips(format!(
                "    spi= {spi:#X}({spi}), conn_id= {c}, keysize= 0, flags= {fl}"
            ));
        }
        for (dst, spi, c) in [(me, spi_in, in_conn), (peer, peer_spi, out_conn)] {
            self.ips("IPsec(create_sa): sa created,".to_string());
            self.ips(format!(
                "  (sa) sa_dest= {dst}, sa_prot= 50,\n    sa_spi= {spi:#X}({spi}),\n    sa_trans= {ts} , sa_conn_id= {c}"
            ));
        }
    }

    /// A Quick Mode SA life attribute as IOS prints it. LIFE_TYPE sets `life_type`;
    /// LIFE_DURATION (`v`) is returned with whether it counts seconds.
    pub(super) fn qm_life_attr(
        &mut self,
        a: &Attr,
        v: u64,
        life_type: &mut u64,
    ) -> Option<(bool, u64)> {
        if a.ty == crate::isakmp::attr::p2::LIFE_TYPE {
            *life_type = v;
            let unit = if v == 1 { "seconds" } else { "kilobytes" };
            self.ik_raw(format!("ISAKMP:      SA life type in {unit}"));
            return None;
        }
        let form = match &a.value {
            AttrValue::Basic(x) => format!("(basic) of {x}"),
            AttrValue::Var(_) => format!("(VPI) of {}", a.vpi_string()),
        };
        self.ik_raw(format!("ISAKMP:      SA life duration {form}"));
        Some((*life_type == 1, v))
    }
}

/// A phase-1 transform's attributes, one IOS line each.
pub(super) fn p1_attrs_desc(attrs: &[Attr]) -> Vec<String> {
    let mut out = Vec::new();
    for a in attrs {
        let v = a.as_u64().unwrap_or(0);
        out.push(match a.ty {
            p1::ENCRYPTION => match v {
                5 => "encryption 3DES-CBC".into(),
                7 => "encryption AES-CBC".into(),
                1 => "encryption DES-CBC".into(),
                n => format!("encryption unknown {n}"),
            },
            p1::HASH => match HashAlg::from_code(v as u16) {
                Some(h) => format!("hash {}", h.ios_name()),
                None => format!("hash unknown {v}"),
            },
            p1::AUTH => match v {
                1 => "auth pre-share".into(),
                3 => "auth RSA sig".into(),
                4 => "auth RSA encr".into(),
                65001 => "auth XAUTHInitPreShared".into(),
                n => format!("auth unknown {n}"),
            },
            p1::GROUP => match v {
                1 => "default group 1".into(),
                n => format!("group {n}"),
            },
            p1::LIFE_TYPE => match v {
                1 => "life type in seconds".into(),
                2 => "life type in kilobytes".into(),
                n => format!("life type {n}"),
            },
            p1::LIFE_DURATION => match &a.value {
                AttrValue::Basic(x) => format!("life duration (basic) of {x}"),
                AttrValue::Var(_) => format!("life duration (VPI) of  {}", a.vpi_string()),
            },
            p1::KEY_LENGTH => format!("keylength of {v}"),
            t => format!("attribute {t} = {v}"),
        });
    }
    out
}
