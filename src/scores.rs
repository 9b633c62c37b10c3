//! What a session's earlier perplexity calls scored, so that a text that extends or edits the previous one is scored from its first changed token only.

/// Scores of the tokens of the longest text scored so far (as long as later texts
/// agree with it), and recurrent states along it to resume from. Checkpoints are every
/// [`CHECKPOINT_EVERY`] tokens, sparser beyond `CHECKPOINT_EVERY · 512` tokens so that
/// their memory grows slower than the text; `tail` holds the states before and after
/// the last token of the latest text, where typing goes on. `S` is the recurrent state
/// (the session's), which this cache only keeps and hands back.
#[derive(Debug, Clone)]
pub(crate) struct ScoreCache<S> {
    /// Token ids, read from a fresh state.
    pub ids: Vec<u32>,
    /// The log-probability of each of `ids` given those before it.
    pub log_probs: Vec<f32>,
    /// `(position, state after ids[..position])`, by increasing position.
    checkpoints: Vec<(usize, S)>,
    tail: Vec<(usize, S)>,
}

impl<S> Default for ScoreCache<S> {
    fn default() -> Self {
        ScoreCache { ids: vec![], log_probs: vec![], checkpoints: vec![], tail: vec![] }
    }
}

const CHECKPOINT_EVERY: usize = 64;

impl<S> ScoreCache<S> {
    /// How many leading tokens of `ids` are known, forgetting what follows a divergence.
    pub fn known_prefix(&mut self, ids: &[u32]) -> usize {
        let same = self.ids.iter().zip(ids).take_while(|(a, b)| a == b).count();
        if same < self.ids.len() && same < ids.len() {
            self.truncate(same);
        }
        same
    }

    /// Forgets every token from `len` on.
    pub fn truncate(&mut self, len: usize) {
        self.ids.truncate(len);
        self.log_probs.truncate(len);
        self.checkpoints.retain(|(pos, _)| *pos <= len);
        self.tail.retain(|(pos, _)| *pos <= len);
    }

    /// The latest state at or before position `pos`.
    pub fn resume_point(&self, pos: usize) -> Option<(usize, &S)> {
        let pos = pos.min(self.ids.len());
        self.checkpoints
            .iter()
            .chain(&self.tail)
            .filter(|(p, _)| *p <= pos)
            .max_by_key(|(p, _)| *p)
            .map(|(p, s)| (*p, s))
    }

    /// Keeps `state` (the state after `ids[..pos]`) if a checkpoint is due at `pos`.
    pub fn checkpoint(&mut self, pos: usize, state: impl FnOnce() -> S) {
        if self.checkpoints.last().is_none_or(|(last, _)| pos - last >= CHECKPOINT_EVERY.max(pos / 512)) {
            self.checkpoints.push((pos, state()));
        }
    }

    /// Keeps the states around the end of the latest text.
    pub fn set_tail(&mut self, tail: Vec<(usize, S)>) {
        self.tail = tail;
    }
}
