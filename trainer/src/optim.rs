//! SGD and AdamW with global-norm clipping, updating parameters in place.
//!
//! Their state can be checkpointed, and the moments of pruned entries can be reset.

use std::cell::RefCell;
use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var};

use crate::config::{OptimConfig, OptimKind};
use crate::error::Result;
use crate::ops::axpby_in_place;
use crate::storage::with_values;

/// AdamW's first and second moments of one parameter.
#[derive(Debug)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
    shape: Vec<usize>,
}

/// An optimiser and its state.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimConfig,
    /// Steps taken.
    pub step: u64,
    /// AdamW moments by parameter name.
    moments: BTreeMap<String, Moments>,
}

/// One AdamW update of a parameter from its (clipped) gradient, moments updated alongside.
struct AdamWUpdate<'a> {
    m: RefCell<&'a mut [f32]>,
    v: RefCell<&'a mut [f32]>,
    /// Gradient scale from clipping.
    scale: f32,
    lr: f32,
    /// `1 / (1 − β^t)` bias corrections.
    bc1: f32,
    bc2: f32,
    cfg: OptimConfig,
}

impl InplaceOp2 for AdamWUpdate<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let err = |m: &str| candle_core::Error::Msg(format!("adamw: {m}"));
        let ((a, b), (ga, gb)) = (
            l1.contiguous_offsets().ok_or_else(|| err("parameter not contiguous"))?,
            l2.contiguous_offsets().ok_or_else(|| err("gradient not contiguous"))?,
        );
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (s1, s2) else {
            return Err(err("f32 only"));
        };
        let (w, g) = (&mut w[a..b], &g[ga..gb]);
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if w.len() != g.len() || m.len() != w.len() || v.len() != w.len() {
            return Err(err("sizes of parameter, gradient and moments differ"));
        }
        let c = &self.cfg;
        let (b1, b2, eps, decay) =
            (c.beta1 as f32, c.beta2 as f32, c.eps as f32, 1.0 - self.lr * c.weight_decay as f32);
        for i in 0..w.len() {
            let gi = g[i] * self.scale;
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            let update = (m[i] * self.bc1) / ((v[i] * self.bc2).sqrt() + eps);
            w[i] = w[i] * decay - self.lr * update;
        }
        Ok(())
    }
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(cfg: OptimConfig) -> Optimizer {
        Optimizer { cfg, step: 0, moments: BTreeMap::new() }
    }

    /// Clips the gradients to the configured global norm and updates every variable at
    /// its learning rate, `lr(name)`. Returns each variable's gradient norm before
    /// clipping (the global norm is their root sum of squares): which parameters dominate
    /// the norm decides how much clipping slows all the others.
    pub fn step(
        &mut self,
        vars: &[(String, Var)],
        grads: &GradStore,
        lr: impl Fn(&str) -> f64,
    ) -> Result<BTreeMap<String, f64>> {
        let present: Vec<(&String, &Var, Tensor)> =
            vars.iter().filter_map(|(n, v)| grads.get(v).map(|g| (n, v, g.clone()))).collect();
        let mut norms = BTreeMap::new();
        for (name, _, g) in &present {
            let sq = with_values(&g.contiguous()?, |v| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>())?;
            norms.insert(name.to_string(), sq.sqrt());
        }
        let norm = norms.values().map(|n| n * n).sum::<f64>().sqrt();
        let scale = if self.cfg.clip > 0.0 && norm > self.cfg.clip { self.cfg.clip / norm } else { 1.0 };
        self.step += 1;
        let c = self.cfg;
        for (name, var, g) in present {
            let g = g.contiguous()?;
            let lr = lr(name);
            match c.kind {
                OptimKind::Sgd => axpby_in_place(var.as_tensor(), 1.0, -(lr * scale) as f32, &g)?,
                OptimKind::Adamw => {
                    let n = g.elem_count();
                    let mo = self.moments.entry(name.clone()).or_insert_with(|| Moments {
                        m: vec![0.0; n],
                        v: vec![0.0; n],
                        shape: g.dims().to_vec(),
                    });
                    let t = self.step as i32;
                    let op = AdamWUpdate {
                        m: RefCell::new(&mut mo.m),
                        v: RefCell::new(&mut mo.v),
                        scale: scale as f32,
                        lr: lr as f32,
                        bc1: (1.0 / (1.0 - c.beta1.powi(t))) as f32,
                        bc2: (1.0 / (1.0 - c.beta2.powi(t))) as f32,
                        cfg: c,
                    };
                    var.as_tensor().inplace_op2(&g, &op)?;
                }
            }
        }
        Ok(norms)
    }

    /// Forgets the moments of entries a new mask pruned.
    pub fn apply_mask(&mut self, name: &str, mask: &Tensor) -> Result<()> {
        if let Some(mo) = self.moments.get_mut(name) {
            with_values(&mask.contiguous()?, |k| {
                for ((m, v), &k) in mo.m.iter_mut().zip(mo.v.iter_mut()).zip(k) {
                    *m *= k;
                    *v *= k;
                }
            })?;
        }
        Ok(())
    }

    /// The state as named tensors (`m.NAME`, `v.NAME`).
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let dev = candle_core::Device::Cpu;
        let mut out = vec![];
        for (n, mo) in &self.moments {
            out.push((format!("m.{n}"), Tensor::from_vec(mo.m.clone(), mo.shape.as_slice(), &dev)?));
            out.push((format!("v.{n}"), Tensor::from_vec(mo.v.clone(), mo.shape.as_slice(), &dev)?));
        }
        Ok(out)
    }

    /// Restores the state saved by [`Optimizer::tensors`].
    pub fn restore(&mut self, step: u64, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        self.step = step;
        self.moments.clear();
        for (k, m) in tensors {
            if let Some(name) = k.strip_prefix("m.") {
                if let Some(v) = tensors.get(&format!("v.{name}")) {
                    let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1()?) };
                    self.moments
                        .insert(name.to_string(), Moments { m: flat(m)?, v: flat(v)?, shape: m.dims().to_vec() });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// SGD on `loss = Σ w²/2` (gradient w): norms are reported per variable before
    /// clipping, and clipping scales every gradient by `clip / global norm`.
    #[test]
    fn reports_gradient_norms_before_clipping() {
        let cfg = OptimConfig { kind: OptimKind::Sgd, clip: 1.0, ..OptimConfig::default() };
        let (a, b) =
            (Var::new(&[3.0f32, 4.0], &Device::Cpu).unwrap(), Var::new(&[0.0f32, 12.0], &Device::Cpu).unwrap());
        let vars = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let loss = ((a.as_tensor().sqr().unwrap().sum_all().unwrap()
            + b.as_tensor().sqr().unwrap().sum_all().unwrap())
        .unwrap()
            * 0.5)
            .unwrap();
        let norms = Optimizer::new(cfg).step(&vars, &loss.backward().unwrap(), |_| 1.0).unwrap();
        assert_eq!(norms.len(), 2);
        assert!((norms["a"] - 5.0).abs() < 1e-9 && (norms["b"] - 12.0).abs() < 1e-9, "{norms:?}");
        // Global norm 13: each parameter moved by 1/13 of its gradient.
        let got = a.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - 3.0 * 12.0 / 13.0).abs() < 1e-6 && (got[1] - 4.0 * 12.0 / 13.0).abs() < 1e-6, "{got:?}");
    }

    /// Two AdamW steps on `loss = Σ w²/2` (gradient w) against the formula written out.
    #[test]
    fn adamw_follows_its_formula_and_survives_a_checkpoint() {
        let cfg = OptimConfig { kind: OptimKind::Adamw, weight_decay: 0.1, clip: 0.0, ..OptimConfig::default() };
        let w = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        let mut opt = Optimizer::new(cfg);
        let (lr, (b1, b2, eps, wd)) = (0.01f64, (0.9f64, 0.999f64, 1e-8f64, 0.1f64));
        let mut expect = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2 {
            let loss = (w.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
            opt.step(&vars, &loss.backward().unwrap(), |_| lr).unwrap();
            for i in 0..2 {
                let g = expect[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let update = (m[i] / (1.0 - b1.powi(t))) / ((v[i] / (1.0 - b2.powi(t))).sqrt() + eps);
                expect[i] = expect[i] * (1.0 - lr * wd) - lr * update;
            }
            if t == 1 {
                // Round-trip the state as a checkpoint would.
                let saved: BTreeMap<String, Tensor> = opt.tensors().unwrap().into_iter().collect();
                opt = Optimizer::new(cfg);
                opt.restore(1, &saved).unwrap();
            }
        }
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        for i in 0..2 {
            assert!((got[i] as f64 - expect[i]).abs() < 1e-6, "{got:?} vs {expect:?}");
        }
    }
}
