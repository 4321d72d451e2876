//! Seeds and a small random stream for meta-learners, so that an ensemble
//! is reproducible from its `random_state` alone, on any thread count and
//! any platform.
//!
//! Seeds are derived by hashing a (seed, tag) pair with the SplitMix64
//! finaliser; draws come from a SplitMix64 stream ([`SplitMix`]), which is
//! small, fast and statistically sound for sampling rows, columns and
//! weighted bootstraps.

use std::hash::{BuildHasher, Hasher};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Tag of the seed handed to a member's learner ([`member_seed`]).
const LEARNER_TAG: u64 = 3;

/// The SplitMix64 output function (a strong 64-bit mixer).
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from `seed` and `tag`: different tags give unrelated
/// streams, and the result depends on nothing else.
pub fn derive_seed(seed: u64, tag: u64) -> u64 {
    let a = finalise(seed.wrapping_add(GOLDEN));
    finalise(a ^ tag.wrapping_mul(0xD6E8_FEB8_6659_FD93).wrapping_add(GOLDEN))
}

/// The `random_state` a meta-learner seeded with `seed` hands to the
/// learner of member `member`: below 2^31, which any learner's seed
/// parameter accepts, and independent of every other member's.
pub fn member_seed(seed: u64, member: usize) -> u64 {
    derive_seed(derive_seed(seed, member as u64), LEARNER_TAG) >> 33
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
pub struct SplitMix {
    state: u64,
}

impl SplitMix {
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

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_and_differ() {
        let draw = |seed| {
            let mut r = SplitMix::new(seed);
            (0..5).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut r = SplitMix::new(11);
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
    fn unit_floats_cover_the_interval() {
        let mut r = SplitMix::new(5);
        let v: Vec<f64> = (0..10_000).map(|_| r.unit()).collect();
        assert!(v.iter().all(|&u| (0.0..1.0).contains(&u)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn derived_seeds_differ() {
        assert_ne!(derive_seed(0, 0), derive_seed(0, 1));
        assert_ne!(derive_seed(0, 1), derive_seed(1, 0));
        assert_eq!(derive_seed(5, 9), derive_seed(5, 9));
        assert!(entropy_seed() < 1 << 52);
        assert!(member_seed(0, 0) < 1 << 31);
        assert_ne!(member_seed(0, 0), member_seed(0, 1));
        assert_eq!(member_seed(9, 4), derive_seed(derive_seed(9, 4), 3) >> 33);
    }
}
