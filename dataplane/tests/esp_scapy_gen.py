#!/usr/bin/python3
"""Builds ESP test captures with scapy's own ESP (scapy.layers.ipsec), the independent
implementation `espgw pcap decap` is judged against.

Usage: esp_scapy_gen.py JOB.json OUTDIR
JOB.json: {"sas": [{"name", "spi", "crypt", "crypt_key", "auth", "auth_key", "udp"}],
           "local", "remote", "sizes": [...]}
For each SA it writes OUTDIR/<name>.pcap (Ethernet frames, ESP from remote to local) and
OUTDIR/<name>.json: {"delivered": [inner packet hex, ...], "drops": {reason: count}}.
"""
import json
import os
import sys

from scapy.all import Ether, IP, UDP, Raw, raw  # noqa: E402
from scapy.utils import RawPcapWriter  # noqa: E402
from scapy.layers.ipsec import SecurityAssociation, ESP  # noqa: E402

job = json.load(open(sys.argv[1]))
outdir = sys.argv[2]
LOCAL, REMOTE = job["local"], job["remote"]
MAC_US, MAC_PEER = "02:00:00:00:00:0a", "02:00:00:00:00:14"


def inner(size, tag):
    payload = bytes(((i * 7) + tag) & 0xFF for i in range(size))
    return IP(src="10.1.2.2", dst="10.1.1.2", proto=253, id=(tag << 8) | (size & 0xFF), ttl=63) / Raw(payload)


def frame(sa_cfg, sa, pkt, seq):
    e = sa.encrypt(pkt, seq_num=seq)
    if sa_cfg["udp"]:
        # scapy 2.5 leaves the NAT-T UDP length at 8: recompute lengths and checksums.
        del e[UDP].len
        e[UDP].chksum = 0
    del e[IP].len
    del e[IP].chksum
    return Ether(src=MAC_PEER, dst=MAC_US) / IP(raw(e))


def fix_lengths(b, udp):
    """Rewrites IP total length, IP checksum and UDP length after cutting bytes."""
    p = Ether(b)
    del p[IP].len
    del p[IP].chksum
    if udp:
        del p[UDP].len
        p[UDP].chksum = 0
    return raw(p)


def bad_padding(sa_cfg, sa, pkt, seq):
    algo = sa.crypt_algo
    orig = algo.pad

    def pad(esp):
        esp = orig(esp)
        align = max(4, algo.block_size)
        if esp.padlen == 0:
            esp.padlen = align
        # Padding must be 1, 2, 3...; make its last byte wrong.
        pad = bytearray(range(1, esp.padlen + 1))
        pad[-1] ^= 0x80
        esp.padding = bytes(pad)
        return esp

    algo.pad = pad
    try:
        return frame(sa_cfg, sa, pkt, seq)
    finally:
        del algo.pad


for s in job["sas"]:
    kw = dict(spi=s["spi"], crypt_algo=s["crypt"], crypt_key=bytes.fromhex(s["crypt_key"]),
              auth_algo=s["auth"], auth_key=bytes.fromhex(s["auth_key"]) if s["auth_key"] else None,
              tunnel_header=IP(src=REMOTE, dst=LOCAL))
    if s["udp"]:
        kw["nat_t_header"] = UDP(sport=4500, dport=4500)
    sa = SecurityAssociation(ESP, **kw)
    frames, delivered = [], []
    drops = {}

    def good(pkt, seq):
        frames.append(frame(s, sa, pkt, seq))
        delivered.append(raw(pkt).hex())

    def bad(b, reason):
        frames.append(b)
        drops[reason] = drops.get(reason, 0) + 1

    # Every size, in order, sequence numbers 1..n.
    sizes = job["sizes"]
    for i, size in enumerate(sizes):
        good(inner(size, i & 0xFF), i + 1)
    n = len(sizes)
    # A replay of sequence number 3.
    bad(frames[2], "replay")
    # Jump ahead, then a packet left of the 64-packet window.
    good(inner(40, 1), n + 100)
    bad(frame(s, sa, inner(40, 2), n + 100 - 64), "out-of-window")
    # Truncated: cut inside the ICV/ciphertext (misaligned), and cut to a stub.
    t1 = raw(frame(s, sa, inner(100, 3), n + 101))[:-3]
    bad(fix_lengths(t1, s["udp"]), "truncated")
    hdr = 14 + 20 + (8 if s["udp"] else 0)
    t2 = raw(frame(s, sa, inner(100, 4), n + 102))[: hdr + 8 + 6]
    bad(fix_lengths(t2, s["udp"]), "truncated")
    # Authentic packet with wrong padding bytes.
    bad(bad_padding(s, sa, inner(33, 5), n + 103), "bad-padding")
    # Wrong ICV: last byte flipped.
    w = bytearray(raw(frame(s, sa, inner(77, 6), n + 104)))
    w[-1] ^= 0x01
    bad(bytes(w), "auth")
    # The SA still works afterwards.
    good(inner(500, 7), n + 105)
    good(inner(1, 8), n + 106)

    w = RawPcapWriter(os.path.join(outdir, s["name"] + ".pcap"), linktype=1)
    for f in frames:
        w.write(f if isinstance(f, (bytes, bytearray)) else raw(f))
    w.close()
    json.dump({"delivered": delivered, "drops": drops}, open(os.path.join(outdir, s["name"] + ".json"), "w"))
