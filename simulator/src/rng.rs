//! The one seeded PRNG of the simulation.
//!
//! [`SimRng`] is xoshiro256\*\* seeded through SplitMix64. It is not cryptographic; it is small,
//! fast, and the same seed gives the same sequence on every machine. Every component gets its own
//! stream with [`SimRng::fork`], so adding draws in one component does not shift another's.

/// SplitMix64's finaliser: a bijective mixer of one `u64`.
const fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The SplitMix64 increment (the golden-ratio constant).
const SPLITMIX64_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a over `bytes`, used to turn a fork label into a number.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A seeded, deterministic pseudo-random number generator (xoshiro256\*\*).
///
/// **Invariant:** `state` is never all zeros (SplitMix64 seeding cannot produce that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    /// The seed this stream was made from (what [`SimRng::fork`] derives children from).
    seed: u64,
    /// xoshiro256\*\* state.
    state: [u64; 4],
}

impl SimRng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut state = [0u64; 4];
        for word in &mut state {
            sm = sm.wrapping_add(SPLITMIX64_GAMMA);
            *word = splitmix64_mix(sm);
        }
        assert!(state != [0; 4], "xoshiro state must not be all zeros");
        Self { seed, state }
    }

    /// The seed this generator was made from.
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// An independent stream for the component named `label`.
    ///
    /// The child depends only on this generator's seed and the label, not on how many values
    /// were drawn from it, so forks are stable as code changes. Two forks with the same label
    /// are the same stream: give every component its own label.
    #[must_use]
    pub fn fork(&self, label: &str) -> SimRng {
        SimRng::new(splitmix64_mix(
            self.seed ^ splitmix64_mix(fnv1a64(label.as_bytes())),
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// The next 32 random bits (the high half of [`SimRng::next_u64`]).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform value in `0..bound`, without modulo bias (Lemire's method).
    ///
    /// # Panics
    /// If `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "SimRng::below(0) has no values to pick");
        loop {
            let wide = u128::from(self.next_u64()) * u128::from(bound);
            let low = wide as u64;
            if low >= bound.wrapping_neg() % bound {
                return (wide >> 64) as u64;
            }
        }
    }

    /// A uniform value in `low..=high`.
    ///
    /// # Panics
    /// If `low > high`.
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with probability `ppm` in a million (0 never, 1 000 000 or more always).
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        self.below(1_000_000) < u64::from(ppm)
    }

    /// Fills `out` with random bytes.
    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(rng: &mut SimRng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn same_seed_same_sequence() {
        let a = draw(&mut SimRng::new(42), 64);
        let b = draw(&mut SimRng::new(42), 64);
        assert_eq!(a, b);
        assert_ne!(a, draw(&mut SimRng::new(43), 64));
    }

    #[test]
    fn forks_are_stable_and_distinct() {
        let mut parent = SimRng::new(7);
        let before = draw(&mut parent.fork("vmnet"), 16);
        let _ = draw(&mut parent, 100);
        assert_eq!(
            before,
            draw(&mut parent.fork("vmnet"), 16),
            "fork ignores parent draws"
        );
        assert_ne!(before, draw(&mut parent.fork("switch"), 16));
        assert_ne!(before, draw(&mut SimRng::new(8).fork("vmnet"), 16));
        assert_eq!(parent.seed(), 7);
    }

    #[test]
    fn below_and_ranges_stay_in_bounds() {
        let mut rng = SimRng::new(1);
        for bound in [1u64, 2, 3, 7, 200, u64::MAX] {
            for _ in 0..200 {
                assert!(rng.below(bound) < bound);
            }
        }
        for _ in 0..200 {
            let v = rng.range_inclusive(10, 12);
            assert!((10..=12).contains(&v));
        }
        let _ = rng.range_inclusive(0, u64::MAX);
        assert!(!rng.chance_ppm(0));
        assert!(rng.chance_ppm(1_000_000));
    }

    #[test]
    fn fill_bytes_is_deterministic() {
        let mut a = [0u8; 13];
        let mut b = [0u8; 13];
        SimRng::new(9).fill_bytes(&mut a);
        SimRng::new(9).fill_bytes(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, [0u8; 13]);
    }
}
