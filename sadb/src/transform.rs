//! The ESP transforms an SA can use, as one typed code both daemons share: control maps a
//! negotiated transform set onto a [`TransformId`], the record stores its [`code`]
//! (`SaRecord::transform`), and the dataplane builds its crypto
//! (`espgw_dataplane::crypto::transform::Transform`) from it. No transform crosses the
//! region as text.
//!
//! [`code`]: TransformId::code

crate::named_enum! {
    /// An ESP transform set the dataplane implements, named as IOS prints it
    /// (`show crypto ipsec sa`, `crypto ipsec transform-set`).
    ///
    /// The discriminant is the stable 16-bit code stored in the SA record: high byte the
    /// cipher (0x01 null, 0x03 3DES, 0x11/0x12/0x13 AES-CBC 128/192/256, 0x21/0x23
    /// AES-GCM 128/256), low byte the integrity (0 none, 1 HMAC-MD5-96, 2 HMAC-SHA1-96).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(u16)]
    pub enum TransformId {
        /// 3DES-EDE-CBC (RFC 2451) with HMAC-MD5-96 (RFC 2403).
        Esp3desMd5 = 0x0301 => "esp-3des esp-md5-hmac",
        /// 3DES-EDE-CBC with HMAC-SHA1-96 (RFC 2404).
        Esp3desSha = 0x0302 => "esp-3des esp-sha-hmac",
        /// AES-128-CBC (RFC 3602) with HMAC-MD5-96.
        EspAes128Md5 = 0x1101 => "esp-aes esp-md5-hmac",
        /// AES-128-CBC with HMAC-SHA1-96.
        EspAes128Sha = 0x1102 => "esp-aes esp-sha-hmac",
        /// AES-192-CBC with HMAC-MD5-96.
        EspAes192Md5 = 0x1201 => "esp-aes 192 esp-md5-hmac",
        /// AES-192-CBC with HMAC-SHA1-96.
        EspAes192Sha = 0x1202 => "esp-aes 192 esp-sha-hmac",
        /// AES-256-CBC with HMAC-MD5-96.
        EspAes256Md5 = 0x1301 => "esp-aes 256 esp-md5-hmac",
        /// AES-256-CBC with HMAC-SHA1-96.
        EspAes256Sha = 0x1302 => "esp-aes 256 esp-sha-hmac",
        /// No encryption (RFC 2410) with HMAC-MD5-96.
        EspNullMd5 = 0x0101 => "esp-null esp-md5-hmac",
        /// No encryption with HMAC-SHA1-96.
        EspNullSha = 0x0102 => "esp-null esp-sha-hmac",
        /// AES-128-GCM with a 16-byte ICV (RFC 4106); combined mode, no integrity key.
        EspGcm128 = 0x2100 => "esp-gcm",
        /// AES-256-GCM with a 16-byte ICV.
        EspGcm256 = 0x2300 => "esp-gcm 256",
    }
}

impl TransformId {
    /// The code stored in the SA record.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The transform with this record code, if any.
    pub fn from_code(code: u16) -> Option<TransformId> {
        TransformId::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The transform set as IOS prints it, e.g. `esp-aes 256 esp-sha-hmac`.
    pub const fn ios_name(self) -> &'static str {
        self.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for t in TransformId::ALL {
            assert!(seen.insert(t.code()), "duplicate code {:#06x}", t.code());
            assert_eq!(TransformId::from_code(t.code()), Some(t));
        }
        assert_eq!(TransformId::COUNT, 12);
        assert_eq!(TransformId::Esp3desMd5.code(), 0x0301);
        assert_eq!(TransformId::EspGcm256.ios_name(), "esp-gcm 256");
        for bad in [0u16, 0x0300, 0x0303, 0x2101, 0x2200, 0xffff] {
            assert_eq!(TransformId::from_code(bad), None, "{bad:#06x}");
        }
    }
}
