//! One LSTM layer and its time step.

use crate::kernels::Kernels;
use crate::matrix::{MatVec, Weight};

/// The gate weights of one LSTM layer. Gates are stacked in the order
/// input, forget, cell candidate, output (PyTorch's i, f, g, o), H rows each.
#[derive(Debug, Clone, PartialEq)]
pub enum Gates {
    /// One `4H × (I + H)` matrix applied to `[x; h]`.
    Fused(Weight),
    /// `4H × I` on the input and `4H × H` on the recurrent state.
    Split {
        /// Input weights.
        ih: Weight,
        /// Recurrent weights.
        hh: Weight,
    },
}

/// One LSTM layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmLayer {
    /// Input size I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// Gate weights.
    pub gates: Gates,
    /// Gate bias, `4H` (PyTorch: `bias_ih + bias_hh`).
    pub bias: Vec<f32>,
}

impl LstmLayer {
    /// The weights, in file order.
    pub fn weights(&self) -> Vec<(&'static str, &Weight)> {
        match &self.gates {
            Gates::Fused(w) => vec![("w", w)],
            Gates::Split { ih, hh } => vec![("w_ih", ih), ("w_hh", hh)],
        }
    }
}

/// Working memory of [`LstmLayer::step`], allocated once for a stack of layers so
/// that a step allocates nothing. No buffer is read before it is written.
#[derive(Debug, Clone)]
pub struct StepBuffers {
    gates: Vec<f32>,
    concat: Vec<f32>,
    /// Matrix scratch, also lent to other products of the model (the output layer).
    pub scratch: Vec<f32>,
}

impl StepBuffers {
    /// Buffers for `layers`, with at least `scratch` values of matrix scratch.
    pub fn new(layers: &[LstmLayer], scratch: usize) -> StepBuffers {
        let max = |f: fn(&LstmLayer) -> usize| layers.iter().map(f).max().unwrap_or(0);
        StepBuffers {
            gates: vec![0.0; max(|l| 4 * l.hidden)],
            concat: vec![0.0; max(LstmLayer::concat_len)],
            scratch: vec![0.0; max(LstmLayer::scratch_len).max(scratch)],
        }
    }
}

impl LstmLayer {
    /// Length of the `[x; h]` buffer [`LstmLayer::step`] needs (fused gates only).
    pub fn concat_len(&self) -> usize {
        match self.gates {
            Gates::Fused(_) => self.input + self.hidden,
            Gates::Split { .. } => 0,
        }
    }

    /// Largest matrix scratch this layer's weights need.
    pub fn scratch_len(&self) -> usize {
        self.weights().iter().map(|(_, w)| w.matrix.scratch_len()).max().unwrap_or(0)
    }

    /// Advances `(h, c)` by one step on input `x`, using `buf` (sized by
    /// [`StepBuffers::new`] for this layer) as working memory.
    pub fn step(&self, k: &Kernels, x: &[f32], h: &mut [f32], c: &mut [f32], buf: &mut StepBuffers) {
        let hd = self.hidden;
        let (gates, concat, scratch) = (&mut buf.gates[..4 * hd], &mut buf.concat, &mut buf.scratch);
        gates.copy_from_slice(&self.bias);
        match &self.gates {
            Gates::Fused(w) => {
                let xh = &mut concat[..self.input + hd];
                xh[..self.input].copy_from_slice(x);
                xh[self.input..].copy_from_slice(h);
                w.matrix.matvec(k, xh, gates, scratch);
            }
            Gates::Split { ih, hh } => {
                ih.matrix.matvec(k, x, gates, scratch);
                hh.matrix.matvec(k, h, gates, scratch);
            }
        }
        let (ifg, o) = gates.split_at_mut(3 * hd);
        (k.sigmoid)(&mut ifg[..2 * hd]);
        (k.tanh)(&mut ifg[2 * hd..]);
        (k.sigmoid)(o);
        let (i, rest) = ifg.split_at(hd);
        let (f, g) = rest.split_at(hd);
        for j in 0..hd {
            c[j] = f[j] * c[j] + i[j] * g[j];
        }
        h.copy_from_slice(c);
        (k.tanh)(h);
        for (hj, oj) in h.iter_mut().zip(o.iter()) {
            *hj *= oj;
        }
    }
}
