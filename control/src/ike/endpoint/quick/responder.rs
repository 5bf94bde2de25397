//! Quick Mode responder, QM1 → QM2: the initiator's proxies against our crypto maps, its
//! proposals against the entry's transform sets, our answer.

use super::*;

/// A transform of QM1 that our crypto map entry accepts.
struct Accepted {
    proposal: u8,
    transform: Transform,
    ts: TransformSet,
    secs: u32,
    kb: u64,
    peer_spi: u32,
    group: Option<DhGroup>,
}

impl Endpoint {
    /// Refuses a QM1 as IOS does: "phase 2 SA policy not acceptable!" and a notify.
    fn refuse_qm(&mut self, sa: &P1Sa, peer: Ipv4Addr, nt: NotifyType) {
        let me = self.cfg.local_addr;
        self.ik(
            sa.conn_id,
            format!("phase 2 SA policy not acceptable! (local {me} remote {peer})"),
        );
        self.send_info_notify(sa, nt, proto::ISAKMP, vec![]);
        self.counters.p2_failed.add(FailReason::of_notify(nt));
    }

    /// Responder, QM1: a new exchange. Returns it (in `ExpectQm3`), or None when refused
    /// with a notify.
    pub(super) fn r_qm1(&mut self, sa: &P1Sa, rx: &Rx) -> R<Option<Qm>> {
        let P1State::Established(est) = &sa.state else {
            return Ok(None);
        };
        let k = &est.k;
        let (now, conn, local, remote) = (rx.now, sa.conn_id, rx.local, rx.remote);
        let (hdr, msg) = (rx.hdr, rx.msg);
        let (mid, flags) = (hdr.message_id, hdr.flags);
        let iv = k.phase2_iv(mid);
        let (ps, pt, new_iv) = self.decrypt(k, &iv, &hdr, msg)?;
        self.processing(conn, mid, &["HASH"]);
        check_qm_hash(k, mid, &ps, &pt, None)?;
        let (Some(Payload::Sa(sap)), Some(Payload::Nonce(ni))) =
            (find(&ps, PayloadType::Sa), find(&ps, PayloadType::Nonce))
        else {
            return Err(IkeError::Peer("QM1 without SA/NONCE"));
        };
        self.processing(conn, mid, &["SA"]);
        let ke = ke_of(&ps);
        let ids: Vec<&IdPayload> = ps
            .iter()
            .filter_map(|p| {
                if let Payload::Id(i) = p {
                    Some(i)
                } else {
                    None
                }
            })
            .collect();
        let peer = v4(remote);
        let me = self.cfg.local_addr;
        let (rp, lp) = match ids.as_slice() {
            [] => (Proxy::host(peer), Proxy::host(me)),
            [i, r] => (
                proxy_from_id(i).ok_or(IkeError::Peer("ID type"))?,
                proxy_from_id(r).ok_or(IkeError::Peer("ID type"))?,
            ),
            _ => return Err(IkeError::Peer("QM1 ID count")),
        };
        // The crypto map entry whose peer and ACL cover the proposed identities.
        let idx = self.cfg.maps.iter().position(|m| {
            m.peer == peer && m.local_proxy.contains(&lp) && m.remote_proxy.contains(&rp)
        });
        // An Easy VPN client in network-extension mode proposes its inside network.
        let idx = idx.or_else(|| self.ra_nem_entry(sa, &lp, &rp));
        let Some(idx) = idx else {
            self.refuse_qm(sa, peer, NotifyType::InvalidIdInformation);
            return Err(IkeError::Policy(
                "proxy identities not permitted by any crypto map",
            ));
        };
        let m = self.cfg.maps[idx].clone();
        let Some(acc) = self.choose_qm(sa, &m, sap, ke.is_some()) else {
            self.ik(conn, "IPSec policy invalidated proposal with error 256");
            self.refuse_qm(sa, peer, NotifyType::NoProposalChosen);
            self.events.push_back(Event::NegotiationFailed {
                peer,
                reason: "phase 2 SA policy not acceptable".into(),
            });
            return Ok(None);
        };
        if self.debug_ipsec {
            self.ips("IPsec(validate_proposal_request): proposal part #1,".to_string());
            self.ips(format!(
                "  (key eng. msg.) INBOUND local= {me}, remote= {peer},"
            ));
            self.ips(format!("    local_proxy= {lp},"));
            self.ips(format!("    remote_proxy= {rp},"));
            self.ips(format!(
                "    protocol= ESP, transform= {} ,",
                acc.ts.ios_name()
            ));
            self.ips("    lifedur= 0s and 0kb,".to_string());
            self.ips("    spi= 0x0(0), conn_id= 0, keysize= 0, flags= 0x4".to_string());
        }
        let (secs, kb, peer_spi) = (acc.secs, acc.kb, acc.peer_spi);
        // Our lifetime is the lower of what the peer offered and what we allow.
        let our_secs = secs.min(m.lifetime_secs);
        let our_kb = kb.min(m.lifetime_kb);
        let spi_in = self.new_spi();
        let nr = self.rng.bytes(20);
        let dh = acc.group.map(|g| g.generate(&mut *self.rng));
        if let (Some(d), Some(k)) = (&dh, &ke) {
            d.shared(k).map_err(|_| IkeError::Peer("bad QM KE"))?;
        }
        let mut rest = vec![Payload::Sa(SaPayload {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: acc.proposal,
                protocol: proto::ESP,
                spi: spi_in.to_be_bytes().to_vec(),
                transforms: vec![acc.transform],
            }],
        })];
        rest.push(Payload::Nonce(nr.clone()));
        if let Some(d) = &dh {
            rest.push(Payload::Ke(d.public.clone()));
        }
        for p in &ps {
            if let Payload::Id(_) = p {
                rest.push(p.clone());
            }
        }
        if our_secs < secs || our_kb < kb {
            let mut data = Vec::new();
            let mut attrs = Vec::new();
            if our_secs < secs {
                attrs.push(Attr::basic(p2::LIFE_TYPE, attr::LIFE_SECONDS));
                attrs.push(Attr::number(p2::LIFE_DURATION, our_secs as u64));
            }
            if our_kb < kb {
                attrs.push(Attr::basic(p2::LIFE_TYPE, attr::LIFE_KILOBYTES));
                attrs.push(Attr::number(p2::LIFE_DURATION, our_kb));
            }
            for a in &attrs {
                a.emit(&mut data);
            }
            rest.push(Payload::Notify(NotifyPayload {
                doi: DOI_IPSEC,
                protocol: proto::ESP,
                notify_type: NotifyType::ResponderLifetime.code(),
                spi: peer_spi.to_be_bytes().to_vec(),
                data,
            }));
        }
        let mut rb = Vec::new();
        emit_chain(&rest, &mut rb);
        let mut out_ps = vec![Payload::Hash(qm_hash(k, mid, Some(ni), &rb))];
        out_ps.extend(rest);
        let qm_flags = flags & flags::COMMIT;
        let (out, iv2) = k.seal(sa, &new_iv, ExchangeType::QuickMode, mid, qm_flags, &out_ps);
        let tx = framed(local, remote, out);
        let (timers, retx) = first_timers(now, self.cfg.retransmit_base, &tx);
        let agreed = QmAgreed {
            choice: QmChoice {
                ts: acc.ts,
                secs: our_secs,
                kb: our_kb,
                peer_spi,
            },
            ni: ni.clone(),
            nr,
            dh,
            peer_ke: ke,
            commit: flags & flags::COMMIT != 0,
            rekey_of: None,
        };
        let q = Qm {
            initiator: false,
            iv: iv2,
            map_idx: idx,
            local_proxy: lp,
            remote_proxy: rp,
            spi_in,
            retx: Some(retx),
            last_rx: msg.to_vec(),
            last_tx: Some(tx.clone()),
            timers,
            state: QmState::ExpectQm3(agreed),
            started: now,
        };
        self.qm_begun(conn, mid, &q, QM_FROM_PEER);
        self.ik(conn, format!("sending packet to {peer} (R) QM_IDLE"));
        self.transmits.push_back(tx);
        Ok(Some(q))
    }

    /// The first transform of QM1's proposals that map entry `m` accepts, each printed as
    /// IOS does.
    fn choose_qm(
        &mut self,
        sa: &P1Sa,
        m: &CryptoMapEntry,
        sap: &SaPayload,
        has_ke: bool,
    ) -> Option<Accepted> {
        let conn = sa.conn_id;
        for prop in &sap.proposals {
            self.ik(conn, format!("Checking IPsec proposal {}", prop.number));
            if prop.protocol != proto::ESP || prop.spi.len() != 4 {
                continue;
            }
            for t in &prop.transforms {
                if let Some(acc) = self.check_qm_transform(sa, m, prop, t, has_ke) {
                    return Some(acc);
                }
                self.ik(conn, "atts are not acceptable.");
                if self.debug_ipsec {
                    self.ips("IPSEC(validate_transform_proposal): transform proposal not supported for identity:".to_string());
                    self.ips(format!(
                        "    {{{}}}",
                        m.transform_sets
                            .first()
                            .map(|t| t.ios_name())
                            .unwrap_or_default()
                    ));
                }
            }
        }
        None
    }

    /// One QM1 transform against map entry `m`.
    fn check_qm_transform(
        &mut self,
        sa: &P1Sa,
        m: &CryptoMapEntry,
        prop: &Proposal,
        t: &Transform,
        has_ke: bool,
    ) -> Option<Accepted> {
        let conn = sa.conn_id;
        let enc_name = match t.id {
            3 => "ESP_3DES",
            12 => "ESP_AES",
            2 => "ESP_DES",
            11 => "ESP_NULL",
            _ => "unknown",
        };
        self.ik_raw(format!("ISAKMP: transform {}, {enc_name}", t.number));
        self.ik_raw("ISAKMP:   attributes in transform:");
        let mut auth = None;
        let mut keylen = None;
        let mut encap = None;
        let mut group = None;
        let mut secs = None;
        let mut kb = None;
        let mut life_type = 0;
        let mut bad = false;
        for a in &t.attrs {
            let v = a.as_u64().unwrap_or(u64::MAX);
            match a.ty {
                p2::LIFE_TYPE | p2::LIFE_DURATION => {
                    match self.qm_life_attr(a, v, &mut life_type) {
                        Some((true, v)) => secs = Some(v),
                        Some((false, v)) => kb = Some(v),
                        None => {}
                    }
                }
                p2::ENCAPSULATION => {
                    self.ik_raw(format!("ISAKMP:      encaps is {v}"));
                    encap = Some(v as u16)
                }
                p2::AUTH_ALG => {
                    auth = EspAuth::from_code(v as u16);
                    self.ik_raw(format!(
                        "ISAKMP:      authenticator is {}",
                        auth.map(|a| a.isakmp_name()).unwrap_or("unknown")
                    ));
                }
                p2::KEY_LENGTH => {
                    keylen = Some(v as u16);
                    self.ik_raw(format!("ISAKMP:      key length is {v}"));
                }
                p2::GROUP => {
                    group = DhGroup::from_id(v as u16);
                    self.ik_raw(format!("ISAKMP:      group is {v}"));
                }
                _ => bad = true,
            }
        }
        let enc = match t.id {
            3 => Some(EspEnc::Des3),
            12 => Some(EspEnc::Aes(keylen.unwrap_or(128))),
            20 => Some(EspEnc::Gcm(keylen.unwrap_or(128))),
            _ => None,
        };
        let nat = sa.nat.floated;
        // (mode is transport) for an encapsulation that fits the NAT-T state.
        let encap_mode = match encap {
            Some(ENCAP_UDP_TUNNEL) | Some(ENCAP_UDP_TUNNEL_DRAFT) if nat => Some(false),
            Some(ENCAP_UDP_TRANSPORT) | Some(ENCAP_UDP_TRANSPORT_DRAFT) if nat => Some(true),
            Some(ENCAP_TUNNEL) | None if !nat => Some(false),
            Some(ENCAP_TRANSPORT) if !nat => Some(true),
            _ => None,
        };
        let pfs_ok = match (m.pfs, group) {
            (Some(g), Some(h)) => g == h,
            (Some(_), None) => false,
            (None, _) => true,
        } && (group.is_some() == has_ke);
        let ts = m.transform_sets.iter().find(|ts| {
            Some(ts.enc) == enc && ts.auth == auth && Some(ts.transport) == encap_mode
        })?;
        if bad || encap_mode.is_none() || !pfs_ok {
            return None;
        }
        self.ik(conn, "atts are acceptable.");
        Some(Accepted {
            proposal: prop.number,
            transform: t.clone(),
            ts: ts.clone(),
            secs: secs.map(|s| s.min(u32::MAX as u64) as u32).unwrap_or(28800),
            kb: kb.unwrap_or(4_608_000),
            peer_spi: spi_u32(&prop.spi),
            group,
        })
    }
}
