//! Running a model token by token: recurrent state, reusable buffers, predictions.

use crate::error::{Error, Result};
use crate::lstm::StepBuffers;
use crate::matrix::MatVec;
use crate::model::Model;
use crate::sample::{self, Rng, Sampling};
use crate::tokenizer::Encoded;

/// A model with its recurrent state. Every buffer is allocated once, in
/// [`Session::new`]; feeding tokens and computing predictions allocate nothing.
#[derive(Debug, Clone)]
pub struct Session {
    model: Model,
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
    buf: StepBuffers,
    embedded: Vec<f32>,
    log_probs: Vec<f32>,
    log_probs_fresh: bool,
    /// Whether every logit behind `log_probs` was finite: weights so large that f32
    /// overflows give log-probabilities that are NaN or meaningless.
    logits_finite: bool,
    history: usize,
}

/// A snapshot of a session's recurrent state (`h` and `c` of every layer).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
    history: usize,
}

/// One predicted next token.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// Token id.
    pub id: u32,
    /// Token text.
    pub token: String,
    /// Probability.
    pub prob: f32,
}

/// The perplexity of a text.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Perplexity {
    /// `exp(nll / tokens)`.
    pub perplexity: f64,
    /// Total negative log-likelihood in nats.
    pub nll: f64,
    /// Tokens scored (PTB convention: `<eos>` tokens count).
    pub tokens: usize,
    /// Words of the text mapped to the unknown token.
    pub unknown: usize,
}

impl Session {
    /// Prepares buffers for `model` and resets the state.
    pub fn new(model: Model) -> Session {
        let layers = model.layers();
        let mut s = Session {
            h: layers.iter().map(|l| vec![0.0; l.hidden]).collect(),
            c: layers.iter().map(|l| vec![0.0; l.hidden]).collect(),
            buf: StepBuffers::new(layers, model.output().matrix.scratch_len()),
            embedded: vec![0.0; model.embedding_dim()],
            log_probs: vec![0.0; model.vocab_size()],
            log_probs_fresh: false,
            logits_finite: true,
            history: 0,
            model,
        };
        s.reset();
        s
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Takes the model back.
    pub fn into_model(self) -> Model {
        self.model
    }

    /// Tokens fed since the last reset (including the boundary token).
    pub fn history(&self) -> usize {
        self.history
    }

    /// A copy of the recurrent state, to return to with [`Session::restore`].
    pub fn state(&self) -> State {
        State { h: self.h.clone(), c: self.c.clone(), history: self.history }
    }

    /// Returns to a state taken from a session of the same model.
    ///
    /// # Panics
    /// If the state's layer sizes differ from this model's.
    pub fn restore(&mut self, state: &State) {
        for (dst, src) in self.h.iter_mut().zip(&state.h).chain(self.c.iter_mut().zip(&state.c)) {
            dst.copy_from_slice(src);
        }
        self.history = state.history;
        self.log_probs_fresh = false;
    }

    /// Zeroes the state and feeds the tokenizer's boundary token (`<eos>`, or a
    /// newline for char models), as at the start of a text.
    pub fn reset(&mut self) {
        self.h.iter_mut().chain(self.c.iter_mut()).for_each(|v| v.fill(0.0));
        self.history = 0;
        self.log_probs_fresh = false;
        if let Some(b) = self.model.tokenizer().boundary() {
            self.step(b);
        }
    }

    /// Feeds one token.
    pub fn feed(&mut self, id: u32) -> Result<()> {
        if id as usize >= self.model.vocab_size() {
            return Err(Error::TokenOutOfRange { id, vocab: self.model.vocab_size() });
        }
        self.step(id);
        Ok(())
    }

    /// Tokenizes and feeds a text; returns its tokens.
    pub fn feed_text(&mut self, text: &str) -> Encoded {
        let enc = self.model.tokenizer().encode(text);
        for &id in &enc.ids {
            self.step(id);
        }
        enc
    }

    /// Runs the LSTM layers on one token (whose id is valid). The output layer is
    /// left for [`Session::log_probs`], so feeding a prompt skips it.
    fn step(&mut self, id: u32) {
        let m = &self.model;
        let k = m.kernels;
        m.embedding_matrix().row(id as usize, &mut self.embedded);
        for (i, layer) in m.layers.iter().enumerate() {
            let (below, here) = self.h.split_at_mut(i);
            let x: &[f32] = if i == 0 { &self.embedded } else { &below[i - 1] };
            layer.step(&k, x, &mut here[0], &mut self.c[i], &mut self.buf);
        }
        self.history += 1;
        self.log_probs_fresh = false;
    }

    /// Log-probabilities of the next token (computed once per fed token).
    pub fn log_probs(&mut self) -> &[f32] {
        if !self.log_probs_fresh {
            let m = &self.model;
            let top = self.h.last().expect("a model has layers");
            self.log_probs.copy_from_slice(&m.output_bias);
            m.output.matrix.matvec(&m.kernels, top, &mut self.log_probs, &mut self.buf.scratch);
            // A fold rather than `all`, so that the check vectorises (no early exit).
            self.logits_finite = self.log_probs.iter().fold(true, |ok, x| ok & x.is_finite());
            (m.kernels.log_softmax)(&mut self.log_probs);
            self.log_probs_fresh = true;
        }
        &self.log_probs
    }

    /// The `k` most likely next tokens, most likely first.
    pub fn top_k(&mut self, k: usize) -> Vec<Prediction> {
        let top = sample::top_k(self.log_probs(), k);
        let tok = self.model.tokenizer();
        top.into_iter()
            .map(|(id, lp)| Prediction { id, token: tok.token(id).unwrap_or("").to_string(), prob: lp.exp() })
            .collect()
    }

    /// Perplexity of `text` read from the start of a fresh state. The state is left
    /// after the text, so predictions continue it. A log-probability that is not finite
    /// (weights so large that f32 overflows) is [`Error::NonFiniteOutput`], never a NaN
    /// or infinite perplexity.
    pub fn perplexity(&mut self, text: &str) -> Result<Perplexity> {
        self.perplexity_with_progress(text, |_, _| {})
    }

    /// [`Session::perplexity`], calling `progress(scored, total)` after every token so
    /// that long texts can show progress while being scored as one stream.
    pub fn perplexity_with_progress(
        &mut self,
        text: &str,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Perplexity> {
        let enc = self.model.tokenizer().encode_scored(text)?;
        self.reset();
        let (mut nll, mut worst) = (0.0f64, (0, 0.0f32));
        for (i, &id) in enc.ids.iter().enumerate() {
            let lp = self.log_probs()[id as usize];
            if !(self.logits_finite && lp.is_finite()) {
                return Err(Error::NonFiniteOutput { position: i });
            }
            if lp < worst.1 {
                worst = (i, lp);
            }
            nll -= lp as f64;
            self.step(id);
            progress(i + 1, enc.ids.len());
        }
        let tokens = enc.ids.len();
        let perplexity = (nll / tokens as f64).exp();
        if !perplexity.is_finite() {
            // Finite log-probabilities near -f32::MAX: the least likely token is at fault.
            return Err(Error::NonFiniteOutput { position: worst.0 });
        }
        Ok(Perplexity { perplexity, nll, tokens, unknown: enc.unknown })
    }

    /// Draws the next token, feeds it, and returns it.
    pub fn sample_next(&mut self, sampling: Sampling, rng: &mut Rng) -> u32 {
        let id = sample::sample(self.log_probs(), sampling, rng);
        self.step(id);
        id
    }

    /// Samples `n` tokens continuing the current state.
    pub fn generate(&mut self, n: usize, sampling: Sampling, rng: &mut Rng) -> Vec<u32> {
        (0..n).map(|_| self.sample_next(sampling, rng)).collect()
    }
}
