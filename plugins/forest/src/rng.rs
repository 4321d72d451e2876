//! The plugin's own small random number generator: SplitMix64 to derive and
//! expand seeds, Xoshiro256** for the draws. Owning it keeps every forest
//! reproducible from its `random_state` alone, whatever the thread count or
//! the version of any random-number crate.

use std::hash::{BuildHasher, Hasher};

/// Advances a SplitMix64 state and returns its next output.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of tree `index` in a forest seeded with `random_state`; depends
/// on nothing else, so trees can be built in any order on any thread.
pub fn tree_seed(random_state: u64, index: u64) -> u64 {
    let mut s = random_state;
    let base = splitmix64(&mut s);
    let mut t = base ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut t)
}

/// A seed from the operating system's hash randomness and the clock, for
/// `random_state = null`.
pub fn entropy_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    h.write_u64(nanos);
    h.write_u32(std::process::id());
    // Keep seeds within JSON's exact integer range and the schema's `int >= 0`,
    // so the recorded seed can be passed back as `random_state`.
    h.finish() >> 12
}

/// Xoshiro256**: fast, small state, good statistical quality.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is expanded from `seed` with SplitMix64.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        Self {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift;
    /// the bias is below 2^-40 for any `n` a forest uses.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(7);
        let mut seen = [0usize; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn tree_seeds_differ() {
        assert_ne!(tree_seed(0, 0), tree_seed(0, 1));
        assert_ne!(tree_seed(0, 1), tree_seed(1, 0));
        assert!(entropy_seed() < 1 << 52);
    }
}
