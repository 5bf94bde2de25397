#!/usr/bin/env python3
"""Generator for dataplane/src/crypto/tdes/generated.rs.

Emits (1) bitsliced DES S-box circuits: each S-box output bit as a multiplexer tree
over the 6 inputs, leaves being functions of two inputs, hash-consed so that shared
sub-expressions are computed once; (2) the straight-line round body of the AVX-512
byte-sliced kernel (which S-box feeds which E-form group). Run:
    python3 gen.py > generated.rs
"""
import itertools, sys

IP = [58,50,42,34,26,18,10,2,60,52,44,36,28,20,12,4,62,54,46,38,30,22,14,6,64,56,48,40,32,24,16,8,
      57,49,41,33,25,17,9,1,59,51,43,35,27,19,11,3,61,53,45,37,29,21,13,5,63,55,47,39,31,23,15,7]
E = [32,1,2,3,4,5,4,5,6,7,8,9,8,9,10,11,12,13,12,13,14,15,16,17,16,17,18,19,20,21,20,21,22,23,24,25,
     24,25,26,27,28,29,28,29,30,31,32,1]
P = [16,7,20,21,29,12,28,17,1,15,23,26,5,18,31,10,2,8,24,14,32,27,3,9,19,13,30,6,22,11,4,25]
PC1 = [57,49,41,33,25,17,9,1,58,50,42,34,26,18,10,2,59,51,43,35,27,19,11,3,60,52,44,36,
       63,55,47,39,31,23,15,7,62,54,46,38,30,22,14,6,61,53,45,37,29,21,13,5,28,20,12,4]
PC2 = [14,17,11,24,1,5,3,28,15,6,21,10,23,19,12,4,26,8,16,7,27,20,13,2,
       41,52,31,37,47,55,30,40,51,45,33,48,44,49,39,56,34,53,46,42,50,36,29,32]
SH = [1,1,2,2,2,2,2,2,1,2,2,2,2,2,2,1]
S = [
 [14,4,13,1,2,15,11,8,3,10,6,12,5,9,0,7, 0,15,7,4,14,2,13,1,10,6,12,11,9,5,3,8,
  4,1,14,8,13,6,2,11,15,12,9,7,3,10,5,0, 15,12,8,2,4,9,1,7,5,11,3,14,10,0,6,13],
 [15,1,8,14,6,11,3,4,9,7,2,13,12,0,5,10, 3,13,4,7,15,2,8,14,12,0,1,10,6,9,11,5,
  0,14,7,11,10,4,13,1,5,8,12,6,9,3,2,15, 13,8,10,1,3,15,4,2,11,6,7,12,0,5,14,9],
 [10,0,9,14,6,3,15,5,1,13,12,7,11,4,2,8, 13,7,0,9,3,4,6,10,2,8,5,14,12,11,15,1,
  13,6,4,9,8,15,3,0,11,1,2,12,5,10,14,7, 1,10,13,0,6,9,8,7,4,15,14,3,11,5,2,12],
 [7,13,14,3,0,6,9,10,1,2,8,5,11,12,4,15, 13,8,11,5,6,15,0,3,4,7,2,12,1,10,14,9,
  10,6,9,0,12,11,7,13,15,1,3,14,5,2,8,4, 3,15,0,6,10,1,13,8,9,4,5,11,12,7,2,14],
 [2,12,4,1,7,10,11,6,8,5,3,15,13,0,14,9, 14,11,2,12,4,7,13,1,5,0,15,10,3,9,8,6,
  4,2,1,11,10,13,7,8,15,9,12,5,6,3,0,14, 11,8,12,7,1,14,2,13,6,15,0,9,10,4,5,3],
 [12,1,10,15,9,2,6,8,0,13,3,4,14,7,5,11, 10,15,4,2,7,12,9,5,6,1,13,14,0,11,3,8,
  9,14,15,5,2,8,12,3,7,0,4,10,1,13,11,6, 4,3,2,12,9,5,15,10,11,14,1,7,6,0,8,13],
 [4,11,2,14,15,0,8,13,3,12,9,7,5,10,6,1, 13,0,11,7,4,9,1,10,14,3,5,12,2,15,8,6,
  1,4,11,13,12,3,7,14,10,15,6,8,0,5,9,2, 6,11,13,8,1,4,10,7,9,5,0,15,14,2,3,12],
 [13,2,8,4,6,15,11,1,10,9,3,14,5,0,12,7, 1,15,13,8,10,3,7,4,12,5,6,11,0,14,9,2,
  7,11,4,1,9,12,14,2,0,6,10,13,15,3,5,8, 2,1,14,7,4,10,8,13,15,12,9,0,3,5,6,11],
]
for s in S:
    for r in range(4):
        assert sorted(s[16*r:16*r+16]) == list(range(16))

def sbox(j, x):  # x: 6-bit, b1 = MSB
    row = ((x >> 4) & 2) | (x & 1)
    col = (x >> 1) & 15
    return S[j][16*row + col]

def bits(v, n):  # MSB first
    return [(v >> (n-1-i)) & 1 for i in range(n)]
def val(bs):
    v = 0
    for b in bs: v = (v << 1) | b
    return v

def subkeys(key):
    kb = bits(key, 64)
    cd = [kb[p-1] for p in PC1]
    c, d = cd[:28], cd[28:]
    out = []
    for s in SH:
        c = c[s:] + c[:s]; d = d[s:] + d[:s]
        out.append([ (c+d)[p-1] for p in PC2 ])
    return out

def f(r, k):
    x = [r[e-1] ^ k[i] for i, e in enumerate(E)]
    so = []
    for j in range(8):
        so += bits(sbox(j, val(x[6*j:6*j+6])), 4)
    return [so[p-1] for p in P]

def des(block, key, dec=False):
    ks = subkeys(key)
    if dec: ks = ks[::-1]
    b = bits(block, 64)
    b = [b[p-1] for p in IP]
    l, r = b[:32], b[32:]
    for k in ks:
        l, r = r, [a ^ c for a, c in zip(l, f(r, k))]
    pre = r + l
    fp = [0]*64
    for i, p in enumerate(IP): fp[p-1] = pre[i]
    return val(fp)

assert des(0x0123456789ABCDEF, 0x133457799BBCDFF1) == 0x85E813540F0AB405
assert des(0x85E813540F0AB405, 0x133457799BBCDFF1, True) == 0x0123456789ABCDEF

# ---- E-form structure for the AVX-512 kernel
def eform(fv):  # fv: u32, DES bit 1 = bit 31
    q = fv | (fv << 32)
    out = []
    for g in range(8):
        o = (27 - 4*g) % 64
        out.append(((q >> o) | (q << (64 - o))) & 0x3F)
    return out
contrib = [[False]*8 for _ in range(8)]
for j in range(8):
    for x in range(64):
        so = [0]*32
        so[4*j:4*j+4] = bits(sbox(j, x), 4)
        fv = val([so[p-1] for p in P])
        for g, v in enumerate(eform(fv)):
            if v: contrib[j][g] = True

# ---- circuits
class Builder:
    def __init__(self):
        self.nodes = {}; self.code = []; self.cost = 0
    def node(self, op, *args):
        key = (op,) + args
        if key in self.nodes: return self.nodes[key]
        name = f"t{len(self.code)}"
        self.nodes[key] = name
        self.code.append((name, op, args))
        self.cost += 3 if op == 'mux' else 1
        return name
    def not_(self, a):
        if a == '0': return '1'
        if a == '1': return '0'
        for k, v in self.nodes.items():
            if v == a and k[0] == 'not': return k[1]
        return self.node('not', a)
    def mux(self, s, a, b):  # s ? b : a
        if a == b: return a
        if a == '0' and b == '1': return s
        if a == '1' and b == '0': return self.not_(s)
        if a == '0': return self.node('and', s, b)
        if b == '0': return self.node('andnot', a, s)
        if a == '1': return self.not_(self.node('andnot', s, b))
        if b == '1': return self.node('or', a, s)
        if self.nodes.get(('not', a)) == b: return self.node('xor', a, s)
        if self.nodes.get(('not', b)) == a: return self.node('xor', b, self.not_(s))
        return self.node('mux', s, a, b)

def build_sbox(j, order):
    # order: permutation of input indexes 0..5 (0 = b1); the last two are leaf vars
    bld = Builder()
    xs = [f"x{i}" for i in range(6)]
    outs = []
    for ob in range(4):
        tt = [(sbox(j, x) >> (3 - ob)) & 1 for x in range(64)]
        def rec(depth, assign):
            if depth == 6:
                x = 0
                for i, v in assign.items(): x |= v << (5 - i)
                return '1' if tt[x] else '0'
            var = order[depth]
            a = rec(depth + 1, {**assign, var: 0})
            b = rec(depth + 1, {**assign, var: 1})
            return bld.mux(xs[var], a, b)
        outs.append(rec(0, {}))
    return bld, outs

best = []
for j in range(8):
    cands = []
    for order in itertools.permutations(range(6)):
        bld, outs = build_sbox(j, order)
        cands.append((bld.cost, order, bld, outs))
    cands.sort(key=lambda c: c[0])
    best.append(cands[0])
    print(f"// S{j+1}: cost {cands[0][0]} order {cands[0][1]}", file=sys.stderr)

w = sys.stdout.write
w("// @generated by gen.py in this directory: do not edit by hand.\n")
w("// Bitsliced DES S-boxes (multiplexer trees, hash-consed) and the AVX-512 round's\n")
w("// S-box -> E-form group contribution pattern.\n\n")
w("use super::bitslice::Word;\n\n")
for j, (cost, order, bld, outs) in enumerate(best):
    w(f"/// S-box {j+1}: inputs b1..b6 (b1 = row MSB), outputs MSB first. {len(bld.code)} gates.\n")
    w("#[inline(always)]\n")
    w(f"pub(super) fn s{j+1}<W: Word>(x0: W, x1: W, x2: W, x3: W, x4: W, x5: W) -> [W; 4] {{\n")
    uses_one = any('1' in args for _, _, args in bld.code) or '1' in outs
    uses_zero = any('0' in args for _, _, args in bld.code) or '0' in outs
    if uses_one: w("    let one = W::ones();\n")
    if uses_zero: w("    let zero = W::zero();\n")
    def nm(a): return {'1': 'one', '0': 'zero'}.get(a, a)
    for name, op, args in bld.code:
        a = [nm(x) for x in args]
        if op == 'not': e = f"{a[0]}.not()"
        elif op == 'and': e = f"{a[0]}.and({a[1]})"
        elif op == 'or': e = f"{a[0]}.or({a[1]})"
        elif op == 'xor': e = f"{a[0]}.xor({a[1]})"
        elif op == 'andnot': e = f"{a[0]}.andnot({a[1]})"
        elif op == 'mux': e = f"W::mux({a[0]}, {a[1]}, {a[2]})"
        w(f"    let {name} = {e};\n")
    w(f"    [{', '.join(nm(o) for o in outs)}]\n}}\n\n")

w("/// `CONTRIB[j][g]`: S-box j's output (after P) reaches E-form group g.\n")
w("#[allow(dead_code)]\n")
w("pub(super) const CONTRIB: [[bool; 8]; 8] = [\n")
for j in range(8):
    w("    [" + ", ".join("true" if c else "false" for c in contrib[j]) + "],\n")
w("];\n")
print("contrib count", sum(sum(r) for r in contrib), [ [g for g in range(8) if contrib[j][g]] for j in range(8)], file=sys.stderr)
print("per group", [[j for j in range(8) if contrib[j][g]] for g in range(8)], file=sys.stderr)
