//! Running a model token by token: recurrent state, reusable buffers, predictions.

use crate::error::{Error, Result};
use crate::lstm::StepBuffers;
use crate::matrix::MatVec;
use crate::model::Model;
use crate::sample::{self, Rng, Sampling};
use crate::scores::ScoreCache;
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
    history: usize,
    /// What earlier `perplexity` calls scored (see [`Session::perplexity`]).
    scored: ScoreCache<State>,
}

/// How many tokens [`Session::perplexity`] sends through the output layer at once: 32,
/// fewer for vocabularies so large that their logits would pass 2 MiB.
pub fn score_window(vocab: usize) -> usize {
    ((1 << 19) / vocab.max(1)).clamp(1, 32)
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
    /// Leading tokens whose scores were kept from earlier calls rather than computed.
    pub reused: usize,
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
            history: 0,
            scored: ScoreCache::default(),
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
            self.output_layer();
        }
        &self.log_probs
    }

    /// Computes `log_probs`. Predicting and sampling do not check that the logits are
    /// finite (scoring does, see [`Session::perplexity`]).
    fn output_layer(&mut self) {
        let m = &self.model;
        let top = self.h.last().expect("a model has layers");
        self.log_probs.copy_from_slice(&m.output_bias);
        m.output.matrix.matvec(&m.kernels, top, &mut self.log_probs, &mut self.buf.scratch);
        (m.kernels.log_softmax)(&mut self.log_probs);
        self.log_probs_fresh = true;
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
    ///
    /// Tokens that earlier calls scored in the same context (the longest common prefix
    /// of token ids) are not scored again: their log-probabilities are kept and the
    /// state resumes from a checkpoint, so appending to or editing the end of a long
    /// text costs only the new tokens (`reused` counts the others). The result is bit
    /// for bit that of a fresh reading: the same log-probabilities, summed in order.
    pub fn perplexity(&mut self, text: &str) -> Result<Perplexity> {
        self.perplexity_with_progress(text, |_, _| {})
    }

    /// [`Session::perplexity`], calling `progress(scored, total)` as tokens are scored
    /// (every [`score_window`] tokens) so that long texts can show progress while being
    /// scored as one stream.
    pub fn perplexity_with_progress(
        &mut self,
        text: &str,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Perplexity> {
        let enc = self.model.tokenizer().encode_scored(text)?;
        let (ids, total) = (&enc.ids, enc.ids.len());
        let known = self.scored.known_prefix(ids);
        let from = match self.scored.resume_point(known) {
            Some((pos, state)) => {
                let state = state.clone();
                self.restore(&state);
                pos
            }
            None => {
                self.reset();
                0
            }
        };
        for &id in &ids[from..known] {
            self.step(id); // the LSTM only: these scores are known
        }
        let mut before_last = None;
        // The output layer runs on a window of hidden states at a time, as one matrix
        // product that reads its weights once per window (`MatVec::matmat`, bit for bit
        // the per-token product); the LSTM stays sequential.
        let (hidden, vocab) = (self.h.last().expect("a model has layers").len(), self.model.vocab_size());
        let window = score_window(vocab).min(total - known);
        let (mut tops, mut logits) = (vec![0.0; window * hidden], vec![0.0; window * vocab]);
        let mut start = known;
        while start < total {
            let n = window.min(total - start);
            for (j, top) in tops.chunks_exact_mut(hidden).take(n).enumerate() {
                let i = start + j;
                self.scored.checkpoint(i, || State { h: self.h.clone(), c: self.c.clone(), history: self.history });
                if i + 1 == total {
                    before_last = Some(self.state());
                }
                top.copy_from_slice(self.h.last().expect("a model has layers"));
                self.step(ids[i]);
            }
            let m = &self.model;
            let logits = &mut logits[..n * vocab];
            logits.chunks_exact_mut(vocab).for_each(|row| row.copy_from_slice(&m.output_bias));
            m.output.matrix.matmat(&m.kernels, &tops[..n * hidden], logits, &mut self.buf.scratch);
            for (j, row) in logits.chunks_exact_mut(vocab).enumerate() {
                let (i, id) = (start + j, ids[start + j]);
                let finite = crate::kernels::all_finite(row);
                (m.kernels.log_softmax)(row);
                let lp = row[id as usize];
                if !(finite && lp.is_finite()) {
                    self.scored.truncate(i); // forget checkpoints past the last score kept
                    return Err(Error::NonFiniteOutput { position: i });
                }
                self.scored.ids.push(id);
                self.scored.log_probs.push(lp);
            }
            start += n;
            progress(start, total);
        }
        if let Some(state) = before_last {
            self.scored.set_tail(vec![(total - 1, state), (total, self.state())]);
        }
        let log_probs = &self.scored.log_probs[..total];
        let nll = log_probs.iter().fold(0.0f64, |nll, &lp| nll - lp as f64);
        let perplexity = (nll / total as f64).exp();
        if !perplexity.is_finite() {
            // Finite log-probabilities near -f32::MAX: the least likely token is at fault.
            let worst =
                log_probs.iter().enumerate().fold((0, 0.0f32), |w, (i, &lp)| if lp < w.1 { (i, lp) } else { w });
            return Err(Error::NonFiniteOutput { position: worst.0 });
        }
        Ok(Perplexity { perplexity, nll, tokens: total, unknown: enc.unknown, reused: known })
    }

    /// Draws the next token, feeds it, and returns it; never the unknown token unless
    /// `sampling.allow_unk`.
    pub fn sample_next(&mut self, sampling: Sampling, rng: &mut Rng) -> u32 {
        self.log_probs();
        if !sampling.allow_unk {
            // In place: the token drawn is fed next, which invalidates these log-probs.
            self.log_probs[self.model.tokenizer().unk() as usize] = f32::NEG_INFINITY;
        }
        let id = sample::sample(&self.log_probs, sampling, rng);
        self.step(id);
        id
    }

    /// Samples `n` tokens continuing the current state.
    pub fn generate(&mut self, n: usize, sampling: Sampling, rng: &mut Rng) -> Vec<u32> {
        (0..n).map(|_| self.sample_next(sampling, rng)).collect()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::kernels::Kernels;
    use crate::matrix::WeightKind;
    use crate::random::{random_model, RandomSpec};

    fn session() -> Session {
        Session::new(random_model(&RandomSpec { hidden: 16, vocab: 40, seed: 2, ..RandomSpec::default() }).unwrap())
    }

    /// Appending, editing and shortening a text reuse what was scored before and give
    /// exactly the perplexity of a fresh session.
    #[test]
    fn incremental_scoring_equals_a_fresh_reading() {
        let words = "the cat of and to a in N is that for it was on with as";
        let long: String = (0..40).map(|i| format!("{words} w{}\n", i % 20)).collect();
        let mut s = session();
        let mut texts = vec![long[..200].to_string(), long[..201].to_string(), long.clone()];
        texts.push(format!("{}zebra w3 the\n", &long[..150])); // an edit in the middle
        texts.push(long[..100].to_string()); // shorter
        texts.push(long.clone());
        let mut previous: Option<Vec<u32>> = None;
        for text in &texts {
            let p = s.perplexity(text).unwrap();
            let fresh = session().perplexity(text).unwrap();
            assert_eq!((p.perplexity, p.nll, p.tokens), (fresh.perplexity, fresh.nll, fresh.tokens), "{text:?}");
            assert_eq!(fresh.reused, 0);
            let ids = s.model().tokenizer().encode(text).ids;
            let common = previous.as_ref().map_or(0, |prev| prev.iter().zip(&ids).take_while(|(a, b)| a == b).count());
            assert!(p.reused >= common.min(ids.len()), "{} reused, {common} in common", p.reused);
            // The state is left after the text, as for a fresh reading.
            let mut f = session();
            f.perplexity(text).unwrap();
            assert_eq!(s.log_probs(), f.log_probs());
            previous = Some(ids);
        }
    }

    /// Scoring runs the output layer on windows of tokens; its log-probabilities are bit
    /// for bit those of feeding the text token by token, for every kernel set and for
    /// output layers that batch their weights (dense) and that loop (DKP, low rank).
    #[test]
    fn windowed_scoring_equals_token_by_token() {
        let words = "the cat of and to a in N is that for it was on with as";
        let text: String = (0..9).map(|i| format!("{words} w{i}\n")).collect();
        for output_kind in [WeightKind::Dense, WeightKind::Dkp, WeightKind::LowRank] {
            let spec =
                RandomSpec { hidden: 16, vocab: 40, seed: 3, output_kind, output_cf: 4.0, ..RandomSpec::default() };
            for k in Kernels::available() {
                let model = random_model(&spec).unwrap().with_kernels(k);
                let ids = model.tokenizer().encode(&text).ids;
                assert!(ids.len() > 2 * score_window(40), "several windows and a partial one");
                let mut s = Session::new(model);
                let mut nll = 0.0f64;
                for &id in &ids {
                    nll -= s.log_probs()[id as usize] as f64;
                    s.feed(id).unwrap();
                }
                let after = s.log_probs().to_vec();
                let p = Session::new(s.into_model()).perplexity(&text).unwrap();
                assert_eq!(p.nll.to_bits(), nll.to_bits(), "{} {output_kind}: {} vs {nll}", k.name, p.nll);
                assert_eq!(p.tokens, ids.len());
                let mut s2 = Session::new(random_model(&spec).unwrap().with_kernels(k));
                s2.perplexity(&text).unwrap();
                assert_eq!(s2.log_probs(), &after[..], "the state is left after the text");
            }
        }
    }

    #[test]
    fn sampling_leaves_out_the_unknown_token_unless_allowed() {
        let mut s = session();
        let unk = s.model().tokenizer().unk();
        // Make <unk> by far the likeliest next token, then sample greedily.
        s.log_probs();
        s.log_probs.fill(-10.0);
        s.log_probs[unk as usize] = 0.0;
        let greedy = Sampling { temperature: 0.0, ..Sampling::default() };
        assert_ne!(s.sample_next(greedy, &mut Rng::new(1)), unk);
        let mut s = session();
        s.log_probs();
        s.log_probs.fill(-10.0);
        s.log_probs[unk as usize] = 0.0;
        s.log_probs_fresh = true;
        assert_eq!(s.sample_next(Sampling { allow_unk: true, ..greedy }, &mut Rng::new(1)), unk);
    }
}
