//! The IOS system messages the sans-IO core produces (`%CRYPTO-4-IKMP_BAD_MESSAGE: …`), as
//! values: facility, severity, mnemonic and text. The endpoint queues them whatever the
//! debug switches say ([`Endpoint::poll_syslog`](super::Endpoint::poll_syslog)); the
//! daemon decides where they go (`logging host`, `logging buffered`, its own log).

use std::fmt;

/// IOS severities, by number (the digit in the tag).
pub const EMERGENCIES: u8 = 0;
pub const ALERTS: u8 = 1;
pub const CRITICAL: u8 = 2;
pub const ERRORS: u8 = 3;
pub const WARNINGS: u8 = 4;
pub const NOTIFICATIONS: u8 = 5;
pub const INFORMATIONAL: u8 = 6;
pub const DEBUGGING: u8 = 7;

/// One system message. `Display` writes it as IOS prints it: `%FAC-SEV-MNEMONIC: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// `CRYPTO` (or `PKI` for certificate validation).
    pub facility: &'static str,
    /// 0 (emergencies) … 7 (debugging): the digit in the tag.
    pub severity: u8,
    pub mnemonic: &'static str,
    pub text: String,
}

impl SyslogMessage {
    /// A `%CRYPTO-severity-mnemonic` message.
    pub fn crypto(severity: u8, mnemonic: &'static str, text: impl Into<String>) -> Self {
        SyslogMessage {
            facility: "CRYPTO",
            severity: severity.min(DEBUGGING),
            mnemonic,
            text: text.into(),
        }
    }

    /// A message from a whole static tag such as `"%PKI-3-CERTIFICATE_INVALID"` (the
    /// tags the PKI code names its errors by). A tag not of that shape becomes a CRYPTO
    /// error message with the tag as its mnemonic.
    pub fn from_tag(tag: &'static str, text: impl Into<String>) -> Self {
        let body = tag.strip_prefix('%').unwrap_or(tag);
        let mut it = body.splitn(3, '-');
        let parsed = match (it.next(), it.next(), it.next()) {
            (Some(f), Some(s), Some(m)) if s.len() == 1 => s
                .parse::<u8>()
                .ok()
                .filter(|s| *s <= DEBUGGING)
                .map(|s| (f, s, m)),
            _ => None,
        };
        let (facility, severity, mnemonic) = parsed.unwrap_or(("CRYPTO", ERRORS, body));
        SyslogMessage {
            facility,
            severity,
            mnemonic,
            text: text.into(),
        }
    }

    /// `%FAC-SEV-MNEMONIC`
    pub fn tag(&self) -> String {
        format!("%{}-{}-{}", self.facility, self.severity, self.mnemonic)
    }
}

impl fmt::Display for SyslogMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.tag(), self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_ios_prints_it() {
        let m = SyslogMessage::crypto(
            WARNINGS,
            "IKMP_BAD_MESSAGE",
            "IKE message from 172.16.172.10 failed its sanity check or is malformed",
        );
        assert_eq!(m.tag(), "%CRYPTO-4-IKMP_BAD_MESSAGE");
        assert_eq!(
            m.to_string(),
            "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 172.16.172.10 failed its sanity check or is malformed"
        );
    }

    #[test]
    fn static_tags_split_into_their_parts() {
        let m = SyslogMessage::from_tag("%PKI-3-CERTIFICATE_INVALID_EXPIRED", "x");
        assert_eq!(
            (m.facility, m.severity, m.mnemonic),
            ("PKI", 3, "CERTIFICATE_INVALID_EXPIRED")
        );
        let m = SyslogMessage::from_tag("%CRYPTO-6-IKMP_NO_ID_CERT_DN_MATCH", "y");
        assert_eq!((m.facility, m.severity), ("CRYPTO", 6));
        assert_eq!(m.to_string(), "%CRYPTO-6-IKMP_NO_ID_CERT_DN_MATCH: y");
        // Not a tag: kept whole, as an error.
        let m = SyslogMessage::from_tag("ODD-X-Y", "z");
        assert_eq!(
            (m.facility, m.severity, m.mnemonic),
            ("CRYPTO", 3, "ODD-X-Y")
        );
    }
}
