//! SGD and AdamW with global-norm clipping, written out so that their whole state can be
//! checkpointed and the moments of pruned entries reset.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::ops::{axpby_in_place, with_values};

use crate::config::{OptimConfig, OptimKind};
use crate::error::Result;

/// An optimiser and its state.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimConfig,
    /// Steps taken.
    pub step: u64,
    /// AdamW first and second moments by parameter name.
    moments: BTreeMap<String, (Tensor, Tensor)>,
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(cfg: OptimConfig) -> Optimizer {
        Optimizer { cfg, step: 0, moments: BTreeMap::new() }
    }

    /// Clips the gradients to the configured global norm and updates every variable.
    /// Returns the gradient norm before clipping.
    pub fn step(&mut self, vars: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<f64> {
        let present: Vec<(&String, &Var, &Tensor)> = vars.iter().filter_map(|(n, v)| grads.get(v).map(|g| (n, v, g))).collect();
        let mut sq = 0.0f64;
        for (_, _, g) in &present {
            sq += with_values(g, |v| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>())?;
        }
        let norm = sq.sqrt();
        let scale = if self.cfg.clip > 0.0 && norm > self.cfg.clip { self.cfg.clip / norm } else { 1.0 };
        self.step += 1;
        let c = self.cfg;
        for (name, var, g) in present {
            match c.kind {
                // In place: the output and embedding matrices are millions of values.
                OptimKind::Sgd => axpby_in_place(var.as_tensor(), 1.0, -(lr * scale) as f32, g)?,
                OptimKind::Adamw => {
                    let g = g.affine(scale, 0.0)?;
                    let (m, v) = match self.moments.remove(name) {
                        Some(mv) => mv,
                        None => (g.zeros_like()?, g.zeros_like()?),
                    };
                    let m = (m.affine(c.beta1, 0.0)? + g.affine(1.0 - c.beta1, 0.0)?)?;
                    let v = (v.affine(c.beta2, 0.0)? + g.sqr()?.affine(1.0 - c.beta2, 0.0)?)?;
                    let t = self.step as i32;
                    let m_hat = m.affine(1.0 / (1.0 - c.beta1.powi(t)), 0.0)?;
                    let v_hat = v.affine(1.0 / (1.0 - c.beta2.powi(t)), 0.0)?;
                    let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
                    let w = var.as_tensor().affine(1.0 - lr * c.weight_decay, 0.0)?;
                    var.set(&(w - update.affine(lr, 0.0)?)?)?;
                    self.moments.insert(name.clone(), (m, v));
                }
            }
        }
        Ok(norm)
    }

    /// Forgets the moments of entries a new mask pruned.
    pub fn apply_mask(&mut self, name: &str, mask: &Tensor) -> Result<()> {
        if let Some((m, v)) = self.moments.get_mut(name) {
            *m = m.mul(mask)?;
            *v = v.mul(mask)?;
        }
        Ok(())
    }

    /// The state as named tensors (`m.NAME`, `v.NAME`).
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.moments.iter().flat_map(|(n, (m, v))| [(format!("m.{n}"), m.clone()), (format!("v.{n}"), v.clone())]).collect()
    }

    /// Restores the state saved by [`Optimizer::tensors`].
    pub fn restore(&mut self, step: u64, tensors: &BTreeMap<String, Tensor>) {
        self.step = step;
        self.moments.clear();
        for (k, m) in tensors {
            if let Some(name) = k.strip_prefix("m.") {
                if let Some(v) = tensors.get(&format!("v.{name}")) {
                    self.moments.insert(name.to_string(), (m.clone(), v.clone()));
                }
            }
        }
    }
}
