//! Payload helpers every exchange uses: finding a payload, ID payloads and proxies.

use super::*;

pub(super) fn find(ps: &[Payload], ty: PayloadType) -> Option<&Payload> {
    ps.iter().find(|p| p.payload_type() == ty)
}

/// The body of the KE payload, if there is one (Quick Mode with PFS).
pub(super) fn ke_of(ps: &[Payload]) -> Option<Vec<u8>> {
    match find(ps, PayloadType::Ke) {
        Some(Payload::Ke(k)) => Some(k.clone()),
        _ => None,
    }
}

/// An SPI of 4 bytes (the caller checked the length).
pub(super) fn spi_u32(spi: &[u8]) -> u32 {
    u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]])
}

/// A phase-1 identity: our address, UDP 500.
pub(super) fn id_ipv4(addr: Ipv4Addr) -> IdPayload {
    IdPayload {
        id_type: id_type::IPV4_ADDR,
        protocol: 17,
        port: IKE_PORT,
        data: addr.octets().to_vec(),
    }
}

/// A Quick Mode identity (IDci/IDcr) for a proxy.
pub(super) fn id_proxy(p: &Proxy) -> IdPayload {
    if p.id_type() == 1 {
        IdPayload {
            id_type: id_type::IPV4_ADDR,
            protocol: p.protocol,
            port: p.port,
            data: p.addr.octets().to_vec(),
        }
    } else {
        let mut d = p.addr.octets().to_vec();
        d.extend_from_slice(&p.mask.octets());
        IdPayload {
            id_type: id_type::IPV4_ADDR_SUBNET,
            protocol: p.protocol,
            port: p.port,
            data: d,
        }
    }
}

pub(super) fn proxy_from_id(id: &IdPayload) -> Option<Proxy> {
    let a = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    match id.id_type {
        id_type::IPV4_ADDR if id.data.len() == 4 => Some(Proxy {
            addr: a(&id.data),
            mask: Ipv4Addr::new(255, 255, 255, 255),
            protocol: id.protocol,
            port: id.port,
        }),
        id_type::IPV4_ADDR_SUBNET if id.data.len() == 8 => Some(Proxy {
            addr: a(&id.data[..4]),
            mask: a(&id.data[4..]),
            protocol: id.protocol,
            port: id.port,
        }),
        _ => None,
    }
}
