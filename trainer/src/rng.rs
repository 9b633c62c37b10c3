//! Random draws of a training run, all from the runtime's seeded generator.
//!
//! candle's CPU random tensors come from an unseedable thread RNG, so every random
//! number of a run (initialisation, dropout masks) is drawn here instead, from one
//! generator whose whole state fits in a checkpoint.

pub use dkp_lstm::sample::Rng;

/// Vectors of random numbers for tensors.
pub trait RandomVec {
    /// `n` values uniform in [-r, r).
    fn uniform_vec(&mut self, n: usize, r: f32) -> Vec<f32>;
    /// An inverted-dropout mask: each entry is 0 with probability `p`, else `1/(1-p)`.
    fn dropout_mask(&mut self, n: usize, p: f32) -> Vec<f32>;
}

impl RandomVec for Rng {
    fn uniform_vec(&mut self, n: usize, r: f32) -> Vec<f32> {
        (0..n).map(|_| self.symmetric(r)).collect()
    }

    fn dropout_mask(&mut self, n: usize, p: f32) -> Vec<f32> {
        let keep = 1.0 / (1.0 - p);
        (0..n).map(|_| if self.uniform() < p { 0.0 } else { keep }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_mask_keeps_expectation() {
        let m = Rng::new(1).dropout_mask(20_000, 0.25);
        let mean = m.iter().sum::<f32>() / m.len() as f32;
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    }

    #[test]
    fn uniform_vec_in_range() {
        let v = Rng::new(3).uniform_vec(1000, 0.1);
        assert!(v.iter().all(|x| (-0.1..0.1).contains(x)));
    }
}
