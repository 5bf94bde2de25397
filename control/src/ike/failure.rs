//! Why a negotiation failed: one typed reason, chosen where the endpoint gives the
//! negotiation up, counted per phase and scraped as
//! `espgw_ike_negotiations_total{phase,result="failed",reason}`.

/// Why a negotiation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// Our policy and the peer's proposals have nothing in common (IOS: "phase 1/2 SA
    /// policy not acceptable"), either side's verdict (NO_PROPOSAL_CHOSEN).
    NoProposalChosen,
    /// The peer's proof of identity failed: a pre-shared key that differs (its first
    /// message under the phase-1 keys does not decrypt or its HASH does not verify), a
    /// bad signature, AUTHENTICATION_FAILED from the peer.
    AuthFailed,
    /// The peer's certificate is missing, unparsable, untrusted, expired or revoked.
    CertInvalid,
    /// The peer's identity or proxy identities are not ones we accept
    /// (INVALID_ID_INFORMATION, or an ID its certificate does not carry).
    InvalidId,
    /// No pre-shared key (nor certificate) for the peer, or an unknown Easy VPN group.
    NoKey,
    /// Every retransmission went unanswered (IOS: "Death by retransmission").
    RetransmissionsExhausted,
    /// The exchange did not complete in the time allowed (phase 1, XAUTH).
    Timeout,
    /// The peer deleted the SA before the negotiation was done.
    PeerDelete,
    /// The peer answered with an error notify other than those above.
    PeerError,
    /// Too many of the peer's messages were malformed.
    Malformed,
    /// XAUTH: the user's name or password was refused.
    XauthFailed,
    /// Mode Config: the group's address pool has no address left (or does not exist).
    PoolExhausted,
    /// The Easy VPN group already has its `max-users` sessions.
    MaxUsers,
    /// The operator (`clear crypto …`) or a new configuration ended it.
    Cleared,
}

impl FailReason {
    pub const COUNT: usize = 14;
    pub const ALL: [FailReason; FailReason::COUNT] = [
        FailReason::NoProposalChosen,
        FailReason::AuthFailed,
        FailReason::CertInvalid,
        FailReason::InvalidId,
        FailReason::NoKey,
        FailReason::RetransmissionsExhausted,
        FailReason::Timeout,
        FailReason::PeerDelete,
        FailReason::PeerError,
        FailReason::Malformed,
        FailReason::XauthFailed,
        FailReason::PoolExhausted,
        FailReason::MaxUsers,
        FailReason::Cleared,
    ];

    /// The `reason` label value.
    pub const fn name(self) -> &'static str {
        match self {
            FailReason::NoProposalChosen => "no_proposal_chosen",
            FailReason::AuthFailed => "auth_failed",
            FailReason::CertInvalid => "cert_invalid",
            FailReason::InvalidId => "invalid_id",
            FailReason::NoKey => "no_key",
            FailReason::RetransmissionsExhausted => "retransmissions_exhausted",
            FailReason::Timeout => "timeout",
            FailReason::PeerDelete => "peer_delete",
            FailReason::PeerError => "peer_error",
            FailReason::Malformed => "malformed",
            FailReason::XauthFailed => "xauth_failed",
            FailReason::PoolExhausted => "pool_exhausted",
            FailReason::MaxUsers => "max_users",
            FailReason::Cleared => "cleared",
        }
    }

    /// The reason an error notify from the peer gives (RFC 2408 §3.14.1).
    pub fn of_notify(nt: crate::isakmp::NotifyType) -> FailReason {
        use crate::isakmp::NotifyType as N;
        match nt {
            N::NoProposalChosen | N::AttributesNotSupported | N::BadProposalSyntax => {
                FailReason::NoProposalChosen
            }
            N::AuthenticationFailed | N::InvalidHashInformation => FailReason::AuthFailed,
            N::InvalidIdInformation => FailReason::InvalidId,
            // INVALID-CERT-ENCODING … INVALID-CERT-AUTHORITY, CERTIFICATE-UNAVAILABLE.
            N::Unknown(19..=22 | 28) => FailReason::CertInvalid,
            _ => FailReason::PeerError,
        }
    }
}

/// Failed negotiations of one phase, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures([u64; FailReason::COUNT]);

impl Failures {
    pub fn add(&mut self, r: FailReason) {
        self.0[r as usize] += 1;
    }
    pub fn get(&self, r: FailReason) -> u64 {
        self.0[r as usize]
    }
    /// All failures, whatever the reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_once_in_all_with_its_own_name() {
        for (i, r) in FailReason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
        }
        let mut names: Vec<_> = FailReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FailReason::COUNT);
        let mut f = Failures::default();
        f.add(FailReason::AuthFailed);
        f.add(FailReason::AuthFailed);
        f.add(FailReason::Timeout);
        assert_eq!((f.get(FailReason::AuthFailed), f.total()), (2, 3));
    }
}
