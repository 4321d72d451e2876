//! A small seeded random number generator: SplitMix64 to derive and
//! expand seeds, Xoshiro256** for the draws. Owning it keeps every model
//! reproducible from its `random_state` alone, whatever the thread count or
//! the version of any random-number crate.

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

pub use tessera_core::plugin::seeds::entropy_seed;

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

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift;
    /// the bias is below 2^-40 for any `n` a forest uses.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Draws row indices with probabilities proportional to weights, in
/// constant time per draw (Vose's alias method).
#[derive(Clone, Debug)]
pub struct WeightedIndex {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl WeightedIndex {
    /// A sampler of `0..weights.len()` with `P(i) = weights[i] / sum`
    /// (`sum > 0`, weights finite and non-negative).
    pub fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let sum: f64 = weights.iter().sum();
        let mut prob: Vec<f64> = weights.iter().map(|&w| w * n as f64 / sum).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| prob[i as usize] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s as usize] = l;
            prob[l as usize] -= 1.0 - prob[s as usize];
            if prob[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers are 1 up to rounding.
        for i in small.into_iter().chain(large) {
            prob[i as usize] = 1.0;
        }
        Self { prob, alias }
    }

    /// One index.
    pub fn draw(&self, rng: &mut Rng) -> usize {
        let i = rng.below(self.prob.len());
        if rng.unit() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
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
    fn weighted_draws_follow_the_weights() {
        let w = [1.0, 0.0, 3.0, 6.0];
        let sampler = WeightedIndex::new(&w);
        let mut r = Rng::new(9);
        let mut seen = [0usize; 4];
        for _ in 0..100_000 {
            seen[sampler.draw(&mut r)] += 1;
        }
        assert_eq!(seen[1], 0);
        for (i, &c) in seen.iter().enumerate() {
            let expected = w[i] / 10.0 * 100_000.0;
            assert!((c as f64 - expected).abs() < 1000.0, "{seen:?}");
        }
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn tree_seeds_differ() {
        assert_ne!(tree_seed(0, 0), tree_seed(0, 1));
        assert_ne!(tree_seed(0, 1), tree_seed(1, 0));
        assert!(entropy_seed() < 1 << 52);
    }
}
