use super::*;
use proptest::prelude::*;

fn sample() -> Message {
    Message {
        header: HeaderRepr {
            icookie: [1, 2, 3, 4, 5, 6, 7, 8],
            rcookie: [0; 8],
            next_payload: 1,
            version: VERSION_1_0,
            exchange: ExchangeType::Main,
            flags: 0,
            message_id: 0,
            length: 0,
        },
        payloads: vec![
            Payload::Sa(SaPayload {
                doi: DOI_IPSEC,
                situation: SIT_IDENTITY_ONLY,
                proposals: vec![Proposal {
                    number: 1,
                    protocol: proto::ISAKMP,
                    spi: vec![],
                    transforms: vec![Transform {
                        number: 1,
                        id: 1,
                        attrs: vec![
                            Attr::basic(attr::p1::ENCRYPTION, 5),
                            Attr::basic(attr::p1::HASH, 2),
                            Attr::basic(attr::p1::AUTH, 1),
                            Attr::basic(attr::p1::GROUP, 1),
                            Attr::basic(attr::p1::LIFE_TYPE, 1),
                            Attr::number(attr::p1::LIFE_DURATION, 86400),
                        ],
                    }],
                }],
            }),
            Payload::VendorId(hex("afcad71368a1f1c96b8696fc77570100")),
        ],
    }
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn header_view_accessors_and_check() {
    let bytes = sample().to_bytes();
    let h = Header::new_checked(&bytes[..]).unwrap();
    assert_eq!(h.initiator_cookie(), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(h.next_payload(), 1);
    assert_eq!(h.version(), 0x10);
    assert_eq!(h.exchange_type(), ExchangeType::Main);
    assert_eq!(h.length() as usize, bytes.len());
    assert!(Header::new_checked(&bytes[..27]).is_err());
    assert!(Header::new_checked(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn sa_round_trip_and_vpi_lifetime() {
    let m = sample();
    let bytes = m.to_bytes();
    let back = Message::parse(&bytes).unwrap();
    assert_eq!(back.payloads, m.payloads);
    assert_eq!(back.to_bytes(), bytes);
    // 86400 needs the variable-length form: 00 0c 00 04 00 01 51 80
    let needle = [0x00, 0x0c, 0x00, 0x04, 0x00, 0x01, 0x51, 0x80];
    assert!(bytes.windows(8).any(|w| w == needle));
    if let Payload::Sa(sa) = &back.payloads[0] {
        let a = &sa.proposals[0].transforms[0].attrs[5];
        assert_eq!(a.as_u64(), Some(86400));
        assert_eq!(a.vpi_string(), "0x0 0x1 0x51 0x80");
    } else {
        panic!()
    }
}

#[test]
fn errors_sorted_by_blame() {
    let mut bytes = sample().to_bytes();
    bytes[17] = 0x20;
    let e = Message::parse(&bytes).unwrap_err();
    assert_eq!(e.blame(), Blame::Unsupported);
    assert_eq!(e.notify(), NotifyType::InvalidMajorVersion);
    let mut bytes = sample().to_bytes();
    bytes[16] = 30; // unknown low payload type
    let e = Message::parse(&bytes).unwrap_err();
    assert_eq!(e.notify(), NotifyType::InvalidPayloadType);
    let mut bytes = sample().to_bytes();
    // break the proposal length
    bytes[28 + 4 + 8 + 3] = 0xff;
    let e = Message::parse(&bytes).unwrap_err();
    assert_eq!(e.blame(), Blame::Malformed);
}

#[test]
fn nat_d_draft_alias_accepted() {
    let p = Payload::parse(PayloadType::from_code(130), &[9; 16]).unwrap();
    assert_eq!(
        p,
        Payload::NatD {
            hash: vec![9; 16],
            draft: true
        }
    );
    assert_eq!(p.payload_type().code(), 130);
}

#[test]
fn notify_delete_id_attr_round_trip() {
    let ps = vec![
        Payload::Hash(vec![1; 16]),
        Payload::Notify(NotifyPayload {
            doi: 1,
            protocol: 1,
            notify_type: NotifyType::RUThere.code(),
            spi: vec![7; 16],
            data: 5u32.to_be_bytes().to_vec(),
        }),
        Payload::Delete(DeletePayload {
            doi: 1,
            protocol: 3,
            spi_size: 4,
            spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
        }),
        Payload::Id(IdPayload {
            id_type: id_type::IPV4_ADDR_SUBNET,
            protocol: 0,
            port: 0,
            data: vec![10, 1, 1, 0, 255, 255, 255, 0],
        }),
        Payload::Attr(AttrPayload {
            cfg_type: cfg_type::REQUEST,
            identifier: 7,
            attrs: vec![
                Attr::basic(16520, 0),
                Attr {
                    ty: 16521,
                    value: AttrValue::Var(b"user".to_vec()),
                },
            ],
        }),
        Payload::NatD {
            hash: vec![3; 20],
            draft: false,
        },
    ];
    let mut out = Vec::new();
    emit_chain(&ps, &mut out);
    let back = parse_chain(ps[0].payload_type().code(), &out, false).unwrap();
    assert_eq!(back, ps);
}

fn arb_attr() -> impl Strategy<Value = Attr> {
    prop_oneof![
        (0u16..0x8000, any::<u16>()).prop_map(|(t, v)| Attr::basic(t, v)),
        (0u16..0x8000, proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(t, v)| Attr {
            ty: t,
            value: AttrValue::Var(v)
        }),
    ]
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        bytes().prop_map(Payload::Ke),
        bytes().prop_map(Payload::Nonce),
        bytes().prop_map(Payload::Hash),
        bytes().prop_map(Payload::VendorId),
        (bytes(), any::<bool>()).prop_map(|(h, d)| Payload::NatD { hash: h, draft: d }),
        (any::<u8>(), any::<u8>(), any::<u16>(), bytes()).prop_map(|(t, p, port, data)| {
            Payload::Id(IdPayload {
                id_type: t,
                protocol: p,
                port,
                data,
            })
        }),
        (
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..17),
            bytes()
        )
            .prop_map(
                |(doi, protocol, nt, spi, data)| Payload::Notify(NotifyPayload {
                    doi,
                    protocol,
                    notify_type: nt,
                    spi,
                    data
                })
            ),
        (1u8..17, 0usize..4).prop_map(|(sz, n)| Payload::Delete(DeletePayload {
            doi: 1,
            protocol: 3,
            spi_size: sz,
            spis: vec![vec![0xab; sz as usize]; n]
        })),
        (
            any::<u8>(),
            any::<u16>(),
            proptest::collection::vec(arb_attr(), 0..5)
        )
            .prop_map(|(c, i, attrs)| Payload::Attr(AttrPayload {
                cfg_type: c,
                identifier: i,
                attrs
            })),
        proptest::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..9),
                proptest::collection::vec(
                    (
                        any::<u8>(),
                        any::<u8>(),
                        proptest::collection::vec(arb_attr(), 0..6)
                    ),
                    1..4
                )
            ),
            0..4
        )
        .prop_map(|ps| Payload::Sa(SaPayload {
            doi: 1,
            situation: 1,
            proposals: ps
                .into_iter()
                .map(|(n, p, spi, ts)| Proposal {
                    number: n,
                    protocol: p,
                    spi,
                    transforms: ts
                        .into_iter()
                        .map(|(n, id, attrs)| Transform {
                            number: n,
                            id,
                            attrs
                        })
                        .collect()
                })
                .collect()
        })),
    ]
}

proptest! {
    #[test]
    fn message_round_trip(ps in proptest::collection::vec(arb_payload(), 0..6), ex in any::<u8>(), flags in 0u8..8, mid in any::<u32>()) {
        let m = Message { header: HeaderRepr { icookie: [9; 8], rcookie: [8; 8], next_payload: 0, version: VERSION_1_0,
            exchange: ExchangeType::from_code(ex), flags, message_id: mid, length: 0 }, payloads: ps };
        let bytes = m.to_bytes();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let back = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&back.payloads, &m.payloads);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::parse(&b);
        let _ = parse_chain(b.first().copied().unwrap_or(1), &b, true);
    }
}
