//! Seeded payload patterns and digests: how every simulated transfer checks its bytes.
//!
//! A sender streams [`pattern_byte`]`(seed, i)` for `i` in `0..len`; a receiver folds what it
//! got into a [`Digest`] and compares it with [`Digest::of_pattern`]. Both ends agree without
//! shipping the payload anywhere else, so "TCP payloads arrive intact" is a checkable fact.

/// Byte `offset` of the pattern for `seed`: cheap, position-dependent and seed-dependent, so a
/// dropped, duplicated or reordered run of bytes changes the digest.
pub fn pattern_byte(seed: u64, offset: u64) -> u8 {
    let x = offset
        .wrapping_add(seed.rotate_left(17))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (offset as u8)
}

/// Fills `buf` with the pattern for `seed`, starting at stream offset `offset`.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(seed, offset + i as u64);
    }
}

/// A running FNV-1a (64-bit) digest of a byte stream, with its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    hash: u64,
    len_bytes: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Self::new()
    }
}

impl Digest {
    /// The digest of nothing.
    pub const fn new() -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            len_bytes: 0,
        }
    }

    /// Folds `bytes` in.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.len_bytes += bytes.len() as u64;
    }

    /// The digest of the first `len_bytes` bytes of the pattern for `seed`.
    pub fn of_pattern(seed: u64, len_bytes: u64) -> Self {
        let mut d = Self::new();
        let mut buf = [0u8; 4096];
        let mut offset = 0;
        while offset < len_bytes {
            let n = (len_bytes - offset).min(buf.len() as u64) as usize;
            fill_pattern(seed, offset, &mut buf[..n]);
            d.update(&buf[..n]);
            offset += n as u64;
        }
        d
    }

    /// The hash value.
    pub const fn value(&self) -> u64 {
        self.hash
    }

    /// Bytes folded in.
    pub const fn len_bytes(&self) -> u64 {
        self.len_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_and_whole_digests_agree() {
        let mut d = Digest::new();
        let mut buf = [0u8; 1000];
        for chunk in 0..10u64 {
            fill_pattern(3, chunk * 1000, &mut buf);
            d.update(&buf);
        }
        assert_eq!(d, Digest::of_pattern(3, 10_000));
        assert_ne!(d, Digest::of_pattern(4, 10_000));
        assert_ne!(d, Digest::of_pattern(3, 9_999));
    }

    #[test]
    fn a_swapped_pair_changes_the_digest() {
        let mut bytes = vec![0u8; 64];
        fill_pattern(9, 0, &mut bytes);
        let mut swapped = bytes.clone();
        swapped.swap(10, 11);
        assert_ne!(bytes[10], bytes[11]);
        let (mut a, mut b) = (Digest::new(), Digest::new());
        a.update(&bytes);
        b.update(&swapped);
        assert_ne!(a, b);
    }
}
