#!/usr/bin/python3
"""Writes tdes-md5-esp.txt: 3DES-CBC + HMAC-MD5-96 over ESP-shaped messages, computed by
Python's `cryptography` (OpenSSL underneath), an implementation we did not write.
Usage: python3 gen-tdes-md5-esp.py > tdes-md5-esp.txt"""
import random, warnings
warnings.simplefilter("ignore")
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, modes
try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

rng = random.Random(1414)
print("# 3DES-CBC (EDE3) + HMAC-MD5-96 over ESP header || IV || ciphertext [|| ESN high bits].")
print("# Made by gen-tdes-md5-esp.py with Python cryptography (OpenSSL). Format (hex):")
print("# ENC_KEY AUTH_KEY CT_START CT_END MSG_IN MSG_OUT ICV96; the IV is MSG_IN[CT_START-8..CT_START].")
for blocks, esn in [(0, False), (1, False), (5, False), (6, False), (7, False), (8, False),
                    (9, False), (14, True), (15, False), (176, False), (177, True), (190, False)]:
    enc = bytes(rng.randrange(256) for _ in range(24))
    auth = bytes(rng.randrange(256) for _ in range(16))
    hdr = bytes(rng.randrange(256) for _ in range(16))  # SPI, seq, IV
    pt = bytes(rng.randrange(256) for _ in range(8 * blocks))
    tail = bytes(rng.randrange(256) for _ in range(4)) if esn else b""
    e = Cipher(TripleDES(enc), modes.CBC(hdr[8:16])).encryptor()
    ct = e.update(pt) + e.finalize()
    out = hdr + ct + tail
    h = hmac.HMAC(auth, hashes.MD5())
    h.update(out)
    icv = h.finalize()[:12]
    print(enc.hex(), auth.hex(), 16, 16 + 8 * blocks, (hdr + pt + tail).hex(), out.hex(), icv.hex())
