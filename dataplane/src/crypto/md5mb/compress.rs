//! The MD5 compression function (RFC 1321), generic over a word of parallel lanes.

/// MD5's initial state.
pub(super) const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// A vector of `LANES` independent u32 lanes.
pub(super) trait W32: Copy {
    const LANES: usize;
    fn splat(v: u32) -> Self;
    fn load(v: &[u32; 16]) -> Self;
    fn store(self, v: &mut [u32; 16]);
    fn add(self, o: Self) -> Self;
    /// `(b & c) | (!b & d)`
    fn f(b: Self, c: Self, d: Self) -> Self;
    /// `(b & d) | (c & !d)`
    fn g(b: Self, c: Self, d: Self) -> Self;
    /// `b ^ c ^ d`
    fn h(b: Self, c: Self, d: Self) -> Self;
    /// `c ^ (b | !d)`
    fn i(b: Self, c: Self, d: Self) -> Self;
    /// Rotate left by `L` (`R` = 32 - `L`).
    fn rotl<const L: i32, const R: i32>(self) -> Self;
}

impl W32 for u32 {
    const LANES: usize = 1;
    #[inline(always)]
    fn splat(v: u32) -> Self {
        v
    }
    #[inline(always)]
    fn load(v: &[u32; 16]) -> Self {
        v[0]
    }
    #[inline(always)]
    fn store(self, v: &mut [u32; 16]) {
        v[0] = self;
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn f(b: Self, c: Self, d: Self) -> Self {
        d ^ (b & (c ^ d))
    }
    #[inline(always)]
    fn g(b: Self, c: Self, d: Self) -> Self {
        c ^ (d & (b ^ c))
    }
    #[inline(always)]
    fn h(b: Self, c: Self, d: Self) -> Self {
        b ^ c ^ d
    }
    #[inline(always)]
    fn i(b: Self, c: Self, d: Self) -> Self {
        c ^ (b | !d)
    }
    #[inline(always)]
    fn rotl<const L: i32, const R: i32>(self) -> Self {
        self.rotate_left(L as u32)
    }
}

/// The sine-derived additive constants of RFC 1321 (T[i] = floor(2^32 * |sin(i + 1)|)).
pub(super) const T: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

macro_rules! step {
    ($fun:ident, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $k:expr, $i:expr, $s:expr) => {
        $a = $b.add(
            $a.add(W::$fun($b, $c, $d))
                .add($m[$k].add(W::splat(T[$i])))
                .rotl::<$s, { 32 - $s }>(),
        );
    };
}

/// Four steps of one MD5 round; the state names rotate back to where they started.
macro_rules! round4 {
    ($a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $fun:ident, $i:expr,
     $k0:expr, $k1:expr, $k2:expr, $k3:expr, $s0:expr, $s1:expr, $s2:expr, $s3:expr) => {
        step!($fun, $a, $b, $c, $d, $m, $k0, $i, $s0);
        step!($fun, $d, $a, $b, $c, $m, $k1, $i + 1, $s1);
        step!($fun, $c, $d, $a, $b, $m, $k2, $i + 2, $s2);
        step!($fun, $b, $c, $d, $a, $m, $k3, $i + 3, $s3);
    };
}

/// Steps `8 * P .. 8 * P + 8` of one compression on the working state `s` (a, b, c, d),
/// so that a caller can spread one compression over eight places (the lone-packet
/// 3DES-MD5 path runs one part beside each DES block).
#[inline(always)]
pub(super) fn steps8<W: W32, const P: usize>(s: &mut [W; 4], m: &[W; 16]) {
    let [mut a, mut b, mut c, mut d] = *s;
    match P {
        0 => {
            round4!(a, b, c, d, m, f, 0, 0, 1, 2, 3, 7, 12, 17, 22);
            round4!(a, b, c, d, m, f, 4, 4, 5, 6, 7, 7, 12, 17, 22);
        }
        1 => {
            round4!(a, b, c, d, m, f, 8, 8, 9, 10, 11, 7, 12, 17, 22);
            round4!(a, b, c, d, m, f, 12, 12, 13, 14, 15, 7, 12, 17, 22);
        }
        2 => {
            round4!(a, b, c, d, m, g, 16, 1, 6, 11, 0, 5, 9, 14, 20);
            round4!(a, b, c, d, m, g, 20, 5, 10, 15, 4, 5, 9, 14, 20);
        }
        3 => {
            round4!(a, b, c, d, m, g, 24, 9, 14, 3, 8, 5, 9, 14, 20);
            round4!(a, b, c, d, m, g, 28, 13, 2, 7, 12, 5, 9, 14, 20);
        }
        4 => {
            round4!(a, b, c, d, m, h, 32, 5, 8, 11, 14, 4, 11, 16, 23);
            round4!(a, b, c, d, m, h, 36, 1, 4, 7, 10, 4, 11, 16, 23);
        }
        5 => {
            round4!(a, b, c, d, m, h, 40, 13, 0, 3, 6, 4, 11, 16, 23);
            round4!(a, b, c, d, m, h, 44, 9, 12, 15, 2, 4, 11, 16, 23);
        }
        6 => {
            round4!(a, b, c, d, m, i, 48, 0, 7, 14, 5, 6, 10, 15, 21);
            round4!(a, b, c, d, m, i, 52, 12, 3, 10, 1, 6, 10, 15, 21);
        }
        _ => {
            round4!(a, b, c, d, m, i, 56, 8, 15, 6, 13, 6, 10, 15, 21);
            round4!(a, b, c, d, m, i, 60, 4, 11, 2, 9, 6, 10, 15, 21);
        }
    }
    *s = [a, b, c, d];
}

/// One compression of all lanes: `st` += MD5 rounds over message words `m`.
#[inline(always)]
pub(super) fn compress<W: W32>(st: &mut [W; 4], m: &[W; 16]) {
    let mut s = *st;
    steps8::<W, 0>(&mut s, m);
    steps8::<W, 1>(&mut s, m);
    steps8::<W, 2>(&mut s, m);
    steps8::<W, 3>(&mut s, m);
    steps8::<W, 4>(&mut s, m);
    steps8::<W, 5>(&mut s, m);
    steps8::<W, 6>(&mut s, m);
    steps8::<W, 7>(&mut s, m);
    for (x, y) in st.iter_mut().zip(s) {
        *x = x.add(y);
    }
}

/// Single-lane compression of one 64-byte block.
pub(super) fn compress_one(st: &mut [u32; 4], block: &[u8; 64]) {
    let m: [u32; 16] =
        core::array::from_fn(|w| u32::from_le_bytes(block[4 * w..4 * w + 4].try_into().unwrap()));
    compress::<u32>(st, &m);
}

/// Loads SoA state and message words into `W` vectors, compresses, stores the state back.
#[inline(always)]
pub(super) fn compress_soa<W: W32>(st: &mut [[u32; 16]; 4], m: &[[u32; 16]; 16]) {
    let mut s: [W; 4] = core::array::from_fn(|w| W::load(&st[w]));
    let mv: [W; 16] = core::array::from_fn(|w| W::load(&m[w]));
    compress(&mut s, &mv);
    for (w, v) in s.iter().enumerate() {
        v.store(&mut st[w]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn t_table_is_the_sine_table() {
        for (i, &t) in super::T.iter().enumerate() {
            let v = (((i + 1) as f64).sin().abs() * 4_294_967_296.0) as u32;
            assert_eq!(t, v, "T[{i}]");
        }
    }
}
