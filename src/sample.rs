//! Seeded random numbers and temperature / top-k sampling from log-probabilities.

/// A small, fast, seedable generator (xoshiro128++ seeded by SplitMix64), identical
/// on every platform so that a seed gives the same text natively and in wasm. Its
/// whole state serializes, so the trainer's checkpoints can hold it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rng {
    s: [u32; 4],
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        let (a, b) = (next(), next());
        Rng { s: [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32 | 1] }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let s = &mut self.s;
        let r = s[0].wrapping_add(s[3]).rotate_left(7).wrapping_add(s[0]);
        let t = s[1] << 9;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        r
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform in `[-a, a)`.
    pub fn symmetric(&mut self, a: f32) -> f32 {
        (2.0 * self.uniform() - 1.0) * a
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u32() as u64 * n as u64) >> 32) as usize
    }
}

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f32,
    /// Sample among the `top_k` most likely tokens only; 0 means all.
    pub top_k: usize,
    /// Whether the unknown token may be drawn ([`crate::Session::sample_next`] masks it
    /// out otherwise, even at temperature 0): generated text reads better without it.
    pub allow_unk: bool,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 1.0, top_k: 0, allow_unk: false }
    }
}

/// The `k` most likely entries of `log_probs` as `(id, log_prob)`, most likely first.
pub fn top_k(log_probs: &[f32], k: usize) -> Vec<(u32, f32)> {
    let k = k.min(log_probs.len());
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &lp) in log_probs.iter().enumerate() {
        if best.len() == k && best.last().is_none_or(|&(_, w)| lp <= w) {
            continue;
        }
        let pos = best.partition_point(|&(_, b)| b >= lp);
        best.insert(pos, (i as u32, lp));
        best.truncate(k);
    }
    best
}

/// Draws a token id from `log_probs`.
pub fn sample(log_probs: &[f32], s: Sampling, rng: &mut Rng) -> u32 {
    if s.temperature <= 0.0 {
        return top_k(log_probs, 1).first().map_or(0, |&(i, _)| i);
    }
    let k = if s.top_k == 0 { log_probs.len() } else { s.top_k };
    let cands: Vec<(u32, f32)> = if k >= log_probs.len() {
        log_probs.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect()
    } else {
        top_k(log_probs, k)
    };
    let max = cands.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = cands.iter().map(|c| ((c.1 - max) / s.temperature).exp()).sum();
    let mut u = rng.uniform() * total;
    for &(i, l) in &cands {
        u -= ((l - max) / s.temperature).exp();
        if u <= 0.0 {
            return i;
        }
    }
    cands.last().map_or(0, |c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_uniformish() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<f32> = (0..10_000).map(|_| a.uniform()).collect();
        assert!(xs.iter().zip((0..).map(|_| b.uniform())).all(|(x, y)| *x == y));
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        assert_ne!(Rng::new(8).next_u32(), Rng::new(7).next_u32());
    }

    #[test]
    fn top_k_orders_and_truncates() {
        let lp = [-3.0, -0.5, -2.0, -0.1, -9.0];
        assert_eq!(top_k(&lp, 3), vec![(3, -0.1), (1, -0.5), (2, -2.0)]);
        assert_eq!(top_k(&lp, 10).len(), 5);
        assert!(top_k(&lp, 0).is_empty());
    }

    #[test]
    fn sampling_respects_top_k_and_greedy() {
        let lp = [(0.1f32).ln(), (0.6f32).ln(), (0.3f32).ln()];
        let mut rng = Rng::new(1);
        assert_eq!(sample(&lp, Sampling { temperature: 0.0, top_k: 0, allow_unk: true }, &mut rng), 1);
        let mut counts = [0; 3];
        for _ in 0..3000 {
            counts[sample(&lp, Sampling { temperature: 1.0, top_k: 2, allow_unk: true }, &mut rng) as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!((counts[1] as f32 / 3000.0 - 0.667).abs() < 0.05, "{counts:?}");
    }
}
