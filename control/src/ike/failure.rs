//! Why a negotiation failed: one typed reason, chosen where the endpoint gives the
//! negotiation up, counted per phase and scraped as
//! `espgw_ike_negotiations_total{phase,result="failed",reason}`.

espgw_sadb::named_enum! {
    /// Why a negotiation failed; the name is the `reason` label value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum FailReason {
        /// Our policy and the peer's proposals have nothing in common (IOS: "phase 1/2 SA
        /// policy not acceptable"), either side's verdict (NO_PROPOSAL_CHOSEN).
        NoProposalChosen => "no_proposal_chosen",
        /// The peer's proof of identity failed: a pre-shared key that differs (its first
        /// message under the phase-1 keys does not decrypt or its HASH does not verify), a
        /// bad signature, AUTHENTICATION_FAILED from the peer.
        AuthFailed => "auth_failed",
        /// The peer's certificate is missing, unparsable, untrusted, expired or revoked.
        CertInvalid => "cert_invalid",
        /// The peer's identity or proxy identities are not ones we accept
        /// (INVALID_ID_INFORMATION, or an ID its certificate does not carry).
        InvalidId => "invalid_id",
        /// No pre-shared key (nor certificate) for the peer, no public key for it
        /// (rsa-encr), or an unknown Easy VPN group.
        NoKey => "no_key",
        /// Every retransmission went unanswered (IOS: "Death by retransmission").
        RetransmissionsExhausted => "retransmissions_exhausted",
        /// The exchange did not complete in the time allowed (phase 1, XAUTH).
        Timeout => "timeout",
        /// The peer deleted the SA before the negotiation was done.
        PeerDelete => "peer_delete",
        /// The peer answered with an error notify other than those above.
        PeerError => "peer_error",
        /// Too many of the peer's messages were malformed.
        Malformed => "malformed",
        /// XAUTH: the user's name or password was refused.
        XauthFailed => "xauth_failed",
        /// Mode Config: the group's address pool has no address left (or does not exist).
        PoolExhausted => "pool_exhausted",
        /// The Easy VPN group already has its `max-users` sessions.
        MaxUsers => "max_users",
        /// The operator (`clear crypto …`) or a new configuration ended it.
        Cleared => "cleared",
    }
}

impl FailReason {
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
