//! One LSTM layer and its time step.

use crate::kernels::Kernels;
use crate::matrix::MatVec;
use crate::model::Weight;

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

    /// Advances `(h, c)` by one step on input `x`.
    ///
    /// `gates` holds `4H`, `concat` at least [`LstmLayer::concat_len`] and `scratch` at
    /// least [`LstmLayer::scratch_len`] values; none is read before being written.
    pub fn step(
        &self,
        k: &Kernels,
        x: &[f32],
        h: &mut [f32],
        c: &mut [f32],
        gates: &mut [f32],
        concat: &mut [f32],
        scratch: &mut [f32],
    ) {
        let hd = self.hidden;
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
