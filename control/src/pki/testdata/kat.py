#!/usr/bin/python3
"""Known-answer vectors for IKEv1 public-key authentication (RFC 2409 §5.1, §5.2),
computed with Python's `cryptography` (not espgw's code): SKEYID for signatures and for
public-key encryption, SKEYID_d/a/e, HASH_I/HASH_R, and SIG_I — the PKCS#1 v1.5 block-type-1
signature over HASH_I with no DigestInfo — made with r1.key; for rsa-encr, Ni_b and IDii_b
encrypted to R2's key (r2.key) and Nr_b and IDir_b to R1's (r1.key), PKCS#1 v1.5 block
type 2, which espgw must decrypt to the same bodies, and HASH(1), the hash of R2's
SubjectPublicKeyInfo DER. Writes kat.txt next to it;
control/src/pki/kat.rs checks espgw against that file.

Run: /usr/bin/python3 control/src/pki/testdata/kat.py
"""
import hashlib, hmac, os
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

here = os.path.dirname(os.path.abspath(__file__))
key = serialization.load_pem_private_key(open(os.path.join(here, "r1.key"), "rb").read(), None)
key_r2 = serialization.load_pem_private_key(open(os.path.join(here, "r2.key"), "rb").read(), None)

def prf(alg, k, *parts):
    return hmac.new(k, b"".join(parts), alg).digest()

def h(alg, *parts):
    return hashlib.new(alg, b"".join(parts)).digest()

def sign_raw(hash_value):
    """PKCS#1 v1.5 type 1 over the bare hash: 00 01 FF.. 00 H, raised to d mod n."""
    pn = key.private_numbers()
    n, d = pn.public_numbers.n, pn.d
    k = (n.bit_length() + 7) // 8
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(hash_value)) + b"\x00" + hash_value
    s = pow(int.from_bytes(em, "big"), d, n)
    sig = s.to_bytes(k, "big")
    # cryptography itself agrees that this is the signature of the bare hash.
    assert key.public_key().recover_data_from_signature(sig, padding.PKCS1v15(), None) == hash_value
    return sig

# Fixed inputs (bodies, as IKE hashes them).
ni = bytes(range(0x10, 0x24))                 # Ni_b, 20 bytes
nr = bytes(range(0x80, 0x94))                 # Nr_b
gxy = bytes((i * 7 + 3) % 256 for i in range(128))
gxi = bytes((i * 5 + 1) % 256 for i in range(128))
gxr = bytes((i * 11 + 9) % 256 for i in range(128))
cky_i = bytes.fromhex("0102030405060708")
cky_r = bytes.fromhex("1112131415161718")
sai_b = bytes.fromhex("00000001000000010000002c01010001000000240101000080010005800200028003000380040002800b0001000c000400015180")
idii_b = bytes.fromhex("011101f4ac10ac0a")     # ID_IPV4_ADDR 172.16.172.10, UDP 500
idir_b = bytes.fromhex("011101f4ac10ac14")

out = []
def put(name, v):
    out.append(f"{name} = {v.hex()}")

for v in ["ni", "nr", "gxy", "gxi", "gxr", "cky_i", "cky_r", "sai_b", "idii_b", "idir_b"]:
    put(v, globals()[v])
for alg in ["md5", "sha1"]:
    for method, skeyid in [
        ("sig", prf(alg, ni + nr, gxy)),
        ("encr", prf(alg, h(alg, ni, nr), cky_i, cky_r)),
    ]:
        d = prf(alg, skeyid, gxy, cky_i, cky_r, b"\x00")
        a = prf(alg, skeyid, d, gxy, cky_i, cky_r, b"\x01")
        e = prf(alg, skeyid, a, gxy, cky_i, cky_r, b"\x02")
        hash_i = prf(alg, skeyid, gxi, gxr, cky_i, cky_r, sai_b, idii_b)
        hash_r = prf(alg, skeyid, gxr, gxi, cky_r, cky_i, sai_b, idir_b)
        p = f"{method}_{alg}"
        put(p + "_skeyid", skeyid)
        put(p + "_skeyid_d", d)
        put(p + "_skeyid_a", a)
        put(p + "_skeyid_e", e)
        put(p + "_hash_i", hash_i)
        put(p + "_hash_r", hash_r)
        if method == "sig":
            put(p + "_sig_i", sign_raw(hash_i))

# rsa-encr: the encrypted bodies (random padding: the ciphertexts differ on each run, the
# plaintexts do not) and HASH(1).
for name, body, to in [
    ("encr_ni_to_r2", ni, key_r2),
    ("encr_idii_to_r2", idii_b, key_r2),
    ("encr_nr_to_r1", nr, key),
    ("encr_idir_to_r1", idir_b, key),
]:
    ct = to.public_key().encrypt(body, padding.PKCS1v15())
    assert len(ct) == 256 and to.decrypt(ct, padding.PKCS1v15()) == body
    put(name, ct)
spki_r2 = key_r2.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
for alg in ["md5", "sha1"]:
    put(f"hash1_{alg}_r2", h(alg, spki_r2))

open(os.path.join(here, "kat.txt"), "w").write(
    "# written by kat.py (Python cryptography); do not edit\n" + "\n".join(out) + "\n")
