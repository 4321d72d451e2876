//! The plugin's own random numbers, so that a bagging model is reproducible
//! from its `random_state` alone, on any thread count and any platform.
//!
//! Seeds are derived by hashing (a seed, a tag) pair with the SplitMix64
//! finaliser; draws come from a SplitMix64 stream, which is small, fast and
//! statistically sound for sampling rows and columns.

use std::hash::{BuildHasher, Hasher};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (a strong 64-bit mixer).
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from `seed` and `tag`: different tags give unrelated
/// streams, and the result depends on nothing else.
pub fn derive(seed: u64, tag: u64) -> u64 {
    let a = finalise(seed.wrapping_add(GOLDEN));
    finalise(a ^ tag.wrapping_mul(0xD6E8_FEB8_6659_FD93).wrapping_add(GOLDEN))
}

/// A seed from the process's hash randomness and the clock, for
/// `random_state = null`. Kept below 2^52 so that JSON carries it exactly
/// and it can be passed back as `random_state`.
pub fn entropy_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    h.write_u64(now);
    h.write_u32(std::process::id());
    h.finish() >> 12
}

/// A SplitMix64 stream.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        finalise(self.state)
    }

    /// A uniform integer in `0..n` (`n > 0`): the high half of a 128-bit
    /// product, whose bias is at most `n / 2^64`.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_and_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(3);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(3);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::new(3).next_u64(), Rng::new(4).next_u64());
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut r = Rng::new(11);
        let mut seen = [0u32; 7];
        for _ in 0..70_000 {
            seen[r.below(7)] += 1;
        }
        assert!(
            seen.iter().all(|&c| (9_400..10_600).contains(&c)),
            "{seen:?}"
        );
    }

    #[test]
    fn derived_seeds_differ() {
        assert_ne!(derive(0, 0), derive(0, 1));
        assert_ne!(derive(0, 1), derive(1, 0));
        assert_eq!(derive(5, 9), derive(5, 9));
        assert!(entropy_seed() < 1 << 52);
    }
}
