//! What the operator screens read of phase 1 beyond `show crypto isakmp sa`
//! (`show crypto isakmp peers`, `show crypto engine connections active`, `show crypto
//! session detail`) and the targeted clears: `clear crypto sa peer A`, `clear crypto sa
//! map NAME`, `clear crypto session remote A`. A clear sends DELETE to the peer for every
//! SA it removes, as IOS does.

use super::phase1::P1Sa;
use super::*;
use crate::ike::crypto::{EncAlg, HashAlg};

/// One phase-1 SA as the operator screens show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase1Info {
    pub conn_id: u32,
    pub local: Ipv4Addr,
    pub local_port: u16,
    pub peer: Ipv4Addr,
    pub peer_port: u16,
    /// The peer's phase-1 identity: its group name for a remote-access client (ID_KEY_ID),
    /// its address otherwise (espgw authenticates site-to-site peers by address).
    pub phase1_id: String,
    /// `SHA+3DES`: IOS's engine name of the agreed hash and cipher (None before MM2/AM2).
    pub algorithm: Option<String>,
    pub established: bool,
    /// Seconds since the SA was created.
    pub uptime_secs: u64,
    /// Seconds of lifetime left (None before it is established).
    pub lifetime_left_secs: Option<u64>,
    /// Capability letters of `show crypto session detail`: D (DPD), N (NAT-T), X (XAUTH),
    /// C (Mode Config).
    pub capabilities: String,
}

/// IOS's engine name of an IKE SA's algorithms: hash first, then cipher.
pub fn ike_algorithm(hash: HashAlg, enc: EncAlg) -> String {
    let h = match hash {
        HashAlg::Md5 => "MD5",
        HashAlg::Sha1 => "SHA",
        HashAlg::Sha256 => "SHA256",
    };
    let e = match enc {
        EncAlg::Des3 => "3DES".to_string(),
        EncAlg::Aes(128) => "AES".to_string(),
        EncAlg::Aes(bits) => format!("AES{bits}"),
    };
    format!("{h}+{e}")
}

/// IOS's engine name of an IPsec SA's transform: cipher first, then hash.
pub fn ipsec_algorithm(t: &TransformSet) -> String {
    let e = match t.enc {
        EspEnc::Des3 => "3DES".to_string(),
        EspEnc::Aes(128) => "AES".to_string(),
        EspEnc::Aes(bits) => format!("AES{bits}"),
        EspEnc::Gcm(bits) => format!("AES{bits}GCM"),
        EspEnc::Null => "NULL".to_string(),
    };
    match t.auth {
        None => e,
        Some(EspAuth::Md5) => format!("{e}+MD5"),
        Some(EspAuth::Sha1) => format!("{e}+SHA"),
        Some(EspAuth::Sha256) => format!("{e}+SHA256"),
    }
}

impl Endpoint {
    fn phase1_info(&self, now: Instant, key: &[u8; 8], sa: &P1Sa) -> Phase1Info {
        let client = self.ra.sessions.get(key);
        let keys = sa.state.keys();
        let mut capabilities = String::new();
        if client.is_some() {
            capabilities.push('C');
        }
        if sa.peer_dpd {
            capabilities.push('D');
        }
        if sa.nat.floated {
            capabilities.push('N');
        }
        if client.is_some_and(|c| c.server.as_ref().is_some_and(|s| s.user.is_some())) {
            capabilities.push('X');
        }
        let lifetime_left_secs = if sa.state.is_established() {
            sa.timers
                .get(super::timers::Timer::Expire)
                .map(|t| t.saturating_duration_since(now).as_secs())
        } else {
            None
        };
        Phase1Info {
            conn_id: sa.conn_id,
            local: v4(sa.local),
            local_port: sa.local.port(),
            peer: v4(sa.remote),
            peer_port: sa.remote.port(),
            phase1_id: client
                .map(|c| c.group.clone())
                .unwrap_or_else(|| v4(sa.remote).to_string()),
            algorithm: keys.map(|k| ike_algorithm(k.neg.hash, k.neg.enc)),
            established: sa.state.is_established(),
            uptime_secs: now.saturating_duration_since(sa.started).as_secs(),
            lifetime_left_secs,
            capabilities,
        }
    }

    /// Every phase-1 SA that is not dead, by connection id.
    pub fn phase1_infos(&self, now: Instant) -> Vec<Phase1Info> {
        let mut v: Vec<Phase1Info> = self
            .p1
            .iter()
            .filter(|(_, sa)| !sa.state.is_dead())
            .map(|(k, sa)| self.phase1_info(now, k, sa))
            .collect();
        v.sort_by_key(|i| i.conn_id);
        v
    }

    /// `clear crypto sa peer A`: deletes the IPsec SAs with `peer` (DELETE sent). The
    /// number of SA pairs removed.
    pub fn clear_ipsec_peer(&mut self, _now: Instant, peer: Ipv4Addr) -> usize {
        self.remove_pairs_where(|ep, i| ep.pairs[i].peer == peer)
    }

    /// `clear crypto sa map NAME`: deletes the IPsec SAs of every entry of crypto map
    /// `map` (DELETE sent). The number of SA pairs removed.
    pub fn clear_ipsec_map(&mut self, _now: Instant, map: &str) -> usize {
        self.remove_pairs_where(|ep, i| {
            ep.cfg
                .maps
                .get(ep.pairs[i].map_idx)
                .is_some_and(|m| m.map == map)
        })
    }

    /// `clear crypto session remote A`: the whole session with `peer`: its IPsec SAs, then
    /// its ISAKMP SAs (DELETE sent for each); a remote-access client's address goes back
    /// to its pool. The number of SAs (pairs and phase-1 SAs) removed.
    pub fn clear_session_remote(&mut self, now: Instant, peer: Ipv4Addr) -> usize {
        let pairs = self.clear_ipsec_peer(now, peer);
        let keys: Vec<[u8; 8]> = self
            .p1
            .iter()
            .filter(|(_, sa)| v4(sa.remote) == peer && !sa.state.is_dead())
            .map(|(k, _)| *k)
            .collect();
        for k in &keys {
            self.with_sa(*k, |ep, sa| {
                ep.delete_p1(sa, "clear crypto session", FailReason::Cleared)
            });
            if self.ra.sessions.contains_key(k) {
                self.ra_gone(*k);
            }
        }
        pairs + keys.len()
    }

    fn remove_pairs_where(&mut self, pick: impl Fn(&Self, usize) -> bool) -> usize {
        let idxs: Vec<usize> = (0..self.pairs.len()).filter(|&i| pick(self, i)).collect();
        for i in idxs.iter().rev() {
            self.remove_pair(*i, true);
        }
        idxs.len()
    }
}
