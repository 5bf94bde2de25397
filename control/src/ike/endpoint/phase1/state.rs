//! A phase-1 SA: what it has in every state ([`P1Sa`]) and its states as types
//! ([`P1State`]), each carrying exactly what that state has.

use super::super::debug::IosState;
use super::super::natt::NatT;
use super::super::quick::Qm;
use super::super::timers::{Retx, Timer, TimerTable, NEGOTIATION_LIMIT};
use crate::ike::config::{AuthMethod, Phase1Mode};
use crate::ike::crypto::{DhGroup, DhKeyPair, EncAlg, HashAlg, Secret};
use crate::ike::types::Transmit;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// The phase-1 proposal both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub enc: EncAlg,
    pub hash: HashAlg,
    pub group: DhGroup,
    pub lifetime: u32,
    pub auth: AuthMethod,
}

/// What a responder chose, or an initiator accepted, before the key exchange.
pub struct Chosen {
    /// The peer's pre-shared key; empty when it has none (public-key authentication).
    pub psk: Secret,
    /// The body of the initiator's SA payload (HASH_I and HASH_R cover it).
    pub sai_b: Vec<u8>,
    pub neg: Negotiated,
}

/// The ISAKMP SA's keys (SKEYID and what follows from it) and its CBC state.
pub struct IsakmpKeys {
    pub neg: Negotiated,
    pub skeyid: Secret,
    /// SKEYID_d: Quick Mode KEYMAT.
    pub d: Secret,
    /// SKEYID_a: the HASH of Quick Mode and Informational messages.
    pub a: Secret,
    /// The encryption key (SKEYID_e, expanded).
    pub ka: Secret,
    /// While phase 1 runs, its IV; afterwards the last phase-1 CBC block.
    pub iv: Vec<u8>,
}

/// Keys and what HASH_I and HASH_R cover: what an SA has from its DH exchange on.
pub struct Keyed {
    pub k: IsakmpKeys,
    pub gxi: Vec<u8>,
    pub gxr: Vec<u8>,
    pub sai_b: Vec<u8>,
    /// rsa-encr: the ID bodies HASH_I and HASH_R cover, decrypted (MM5 and MM6 carry none).
    pub encr: Option<EncrIds>,
}

/// rsa-encr's ID bodies, as sent before encryption (RFC 2409 §5.2).
#[derive(Clone)]
pub struct EncrIds {
    pub idi_b: Vec<u8>,
    pub idr_b: Vec<u8>,
}

/// Initiator sent MM1 (its offer), expects MM2.
pub struct ExpectMm2 {
    pub psk: Secret,
    pub sai_b: Vec<u8>,
}
/// Initiator sent MM3 (its KE and nonce), expects MM4.
pub struct ExpectMm4 {
    pub c: Chosen,
    pub dh: DhKeyPair,
    pub ni: Vec<u8>,
    /// rsa-encr: our ID body (IDii_b), sent encrypted in MM3.
    pub encr: Option<EncrIds>,
}
/// Initiator sent MM5 (its ID and HASH_I), expects MM6.
pub struct ExpectMm6 {
    pub k: Keyed,
}
/// Responder sent MM2 (its choice), expects MM3.
pub struct ExpectMm3 {
    pub c: Chosen,
}
/// Responder sent MM4 (its KE and nonce), expects MM5.
pub struct ExpectMm5 {
    pub k: Keyed,
}
/// Aggressive initiator sent AM1 (offer, KE, nonce, ID), expects AM2.
pub struct ExpectAm2 {
    pub psk: Secret,
    pub sai_b: Vec<u8>,
    pub dh: DhKeyPair,
    pub ni: Vec<u8>,
    pub idi_b: Vec<u8>,
}
/// Aggressive responder sent AM2, expects AM3 (the initiator's HASH_I).
pub struct ExpectAm3 {
    pub k: Keyed,
    pub idi_b: Vec<u8>,
}
/// Authenticated: Quick Mode and Informational exchanges run under it.
pub struct Established {
    pub k: IsakmpKeys,
}

/// A phase-1 state type: its IOS name and its `show crypto isakmp sa` name.
pub trait Phase1State: Sized {
    const IOS: IosState;
    /// The IOS state the SA passes through when the message it waits for arrives.
    const RECEIVED: IosState;
    const SHOW: &'static str;
    fn into_state(self) -> P1State;
}

macro_rules! phase1_states {
    ($($ty:ident => $ios:ident, $received:ident, $show:literal;)*) => {
        $(impl Phase1State for $ty {
            const IOS: IosState = IosState::$ios;
            const RECEIVED: IosState = IosState::$received;
            const SHOW: &'static str = $show;
            fn into_state(self) -> P1State {
                P1State::$ty(self)
            }
        })*
        impl P1State {
            /// The IOS name of this state (`debug crypto isakmp`).
            pub fn ios(&self) -> IosState {
                match self {
                    P1State::Ready => IosState::Ready,
                    P1State::Dead => IosState::DestSa,
                    $(P1State::$ty(_) => $ty::IOS,)*
                }
            }
            /// The `show crypto isakmp sa` state.
            pub fn show(&self) -> &'static str {
                match self {
                    P1State::Ready | P1State::Dead => "MM_NO_STATE",
                    $(P1State::$ty(_) => $ty::SHOW,)*
                }
            }
        }
    };
}

/// The state of a phase-1 SA. The name is the state it waits in.
pub enum P1State {
    /// Made, nothing processed yet (IKE_READY); never stored in the endpoint's table.
    Ready,
    ExpectMm2(ExpectMm2),
    ExpectMm4(ExpectMm4),
    ExpectMm6(ExpectMm6),
    ExpectMm3(ExpectMm3),
    ExpectMm5(ExpectMm5),
    ExpectAm2(ExpectAm2),
    ExpectAm3(ExpectAm3),
    Established(Established),
    /// Failed or deleted; removed on the next timeout.
    Dead,
}

phase1_states! {
    ExpectMm2 => IMm1, IMm2, "MM_NO_STATE";
    ExpectMm4 => IMm3, IMm4, "MM_SA_SETUP";
    ExpectMm6 => IMm5, IMm6, "MM_KEY_EXCH";
    ExpectMm3 => RMm2, RMm3, "MM_SA_SETUP";
    ExpectMm5 => RMm4, RMm5, "MM_KEY_EXCH";
    ExpectAm2 => IAm1, IAm2, "AG_NO_STATE";
    ExpectAm3 => RAm2, RAm3, "AG_INIT_EXCH";
    // Waits for no phase-1 message.
    Established => P1Complete, P1Complete, "QM_IDLE";
}

impl P1State {
    pub fn is_established(&self) -> bool {
        matches!(self, P1State::Established(_))
    }
    pub fn is_dead(&self) -> bool {
        matches!(self, P1State::Dead)
    }
    /// The ISAKMP SA's keys, once it has them.
    pub fn keys(&self) -> Option<&IsakmpKeys> {
        match self {
            P1State::ExpectMm6(s) => Some(&s.k.k),
            P1State::ExpectMm5(s) => Some(&s.k.k),
            P1State::ExpectAm3(s) => Some(&s.k.k),
            P1State::Established(s) => Some(&s.k),
            _ => None,
        }
    }
    /// Waiting for the responder's first answer (MM2 or AM2).
    pub fn expects_first_answer(&self) -> bool {
        matches!(self, P1State::ExpectMm2(_) | P1State::ExpectAm2(_))
    }
}

/// DPD (RFC 3706) bookkeeping; when to send and when an ACK is late are timers.
#[derive(Default)]
pub struct Dpd {
    pub seq: u32,
    /// The R-U-THERE sequence number we wait an ACK for ([`Timer::DpdAck`] armed).
    pub outstanding: Option<u32>,
    pub misses: u32,
}

/// A phase-1 (ISAKMP) SA: what it has in every state, and its state.
pub struct P1Sa {
    pub conn_id: u32,
    pub initiator: bool,
    pub mode: Phase1Mode,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub icookie: [u8; 8],
    pub rcookie: [u8; 8],
    pub state: P1State,
    /// The IOS state the debug output last announced: the state's own, or one the SA passes
    /// through while it processes a message.
    pub ios: IosState,
    pub nat: NatT,
    pub peer_dpd: bool,
    /// IKE fragmentation with this peer.
    pub frag: super::super::fragments::FragState,
    /// Our last message while it waits for an answer (due: [`Timer::Retransmit`]).
    pub retx: Option<Retx>,
    pub last_rx: Vec<u8>,
    /// Our answer to `last_rx`, resent when `last_rx` comes again.
    pub last_tx: Option<Transmit>,
    pub errors: u32,
    pub started: Instant,
    pub timers: TimerTable,
    pub qm: HashMap<u32, Qm>,
    /// Requests (crypto map indices) waiting for phase 1.
    pub waiting: Vec<(usize, Option<u32>)>,
    pub dpd: Dpd,
    pub last_peer_activity: Instant,
}

impl P1Sa {
    pub fn new(
        now: Instant,
        conn_id: u32,
        initiator: bool,
        mode: Phase1Mode,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> P1Sa {
        let mut timers = TimerTable::default();
        timers.set(Timer::Negotiation, now + NEGOTIATION_LIMIT);
        P1Sa {
            conn_id,
            initiator,
            mode,
            local,
            remote,
            icookie: [0; 8],
            rcookie: [0; 8],
            state: P1State::Ready,
            ios: IosState::Ready,
            nat: NatT::default(),
            peer_dpd: false,
            frag: Default::default(),
            retx: None,
            last_rx: vec![],
            last_tx: None,
            errors: 0,
            started: now,
            timers,
            qm: HashMap::new(),
            waiting: vec![],
            dpd: Dpd::default(),
            last_peer_activity: now,
        }
    }

    /// "I" or "R" in the debug lines.
    pub fn role(&self) -> &'static str {
        if self.initiator {
            "I"
        } else {
            "R"
        }
    }

    /// No more retransmissions of our last message.
    pub fn stop_retx(&mut self) {
        self.retx = None;
        self.timers.stop(Timer::Retransmit);
    }

    /// The SA is dead: it is removed on the next timeout.
    pub fn kill(&mut self) {
        self.state = P1State::Dead;
        self.stop_retx();
        self.timers.set(Timer::Reap, self.started);
    }
}
