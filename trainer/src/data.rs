//! Corpora: PTB-layout word data (train/valid/test files) and char data (one file split by fraction).
//!
//! The vocabulary is built as a runtime [`Tokenizer`] and every text is mapped to ids with its
//! `encode`, so the ids the trainer learns from are the ids `dkp eval` will feed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dkp_lstm::{Tokenizer, TokenizerKind};
use serde::{Deserialize, Serialize};

use crate::error::{io_err, Error, Result};

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataSpec {
    /// Word level, PTB layout: one sentence a line, `<eos>` at every line end, vocabulary from train.
    Word {
        /// Training text.
        train: PathBuf,
        /// Validation text.
        valid: PathBuf,
        /// Test text.
        test: PathBuf,
    },
    /// Char level: one file, the first part for training, then validation, then test.
    Char {
        /// The text.
        file: PathBuf,
        /// Fraction of characters for validation.
        #[serde(default = "default_fraction")]
        valid_fraction: f64,
        /// Fraction of characters for test.
        #[serde(default = "default_fraction")]
        test_fraction: f64,
    },
}

fn default_fraction() -> f64 {
    0.05
}

impl DataSpec {
    /// Word data if `path` is a directory, char data (default split) if it is a file.
    pub fn from_path(path: &Path) -> Result<DataSpec> {
        if path.is_dir() {
            Self::word_dir(path)
        } else if path.is_file() {
            Ok(DataSpec::Char {
                file: path.to_path_buf(),
                valid_fraction: default_fraction(),
                test_fraction: default_fraction(),
            })
        } else {
            Err(Error::Data { path: path.to_path_buf(), reason: "does not exist".into() })
        }
    }

    /// PTB-layout word data in `dir` (`ptb.{train,valid,test}.txt`, or `{train,valid,test}.txt`,
    /// or WikiText's `wiki.{train,valid,test}.tokens`).
    pub fn word_dir(dir: &Path) -> Result<DataSpec> {
        for (prefix, ext) in [("ptb.", "txt"), ("", "txt"), ("wiki.", "tokens")] {
            let f = |split: &str| dir.join(format!("{prefix}{split}.{ext}"));
            if f("train").is_file() {
                return Ok(DataSpec::Word { train: f("train"), valid: f("valid"), test: f("test") });
            }
        }
        Err(Error::Data {
            path: dir.to_path_buf(),
            reason: "no ptb.train.txt, train.txt or wiki.train.tokens in this directory".into(),
        })
    }

    /// A short description for provenance.
    pub fn describe(&self) -> String {
        let name = |p: &Path| p.display().to_string();
        match self {
            DataSpec::Word { train, .. } => {
                format!("word:{}", train.parent().map(name).unwrap_or_else(|| name(train)))
            }
            DataSpec::Char { file, .. } => format!("char:{}", name(file)),
        }
    }
}

/// A held-out split: its text (for the runtime's perplexity) and its ids.
#[derive(Debug, Clone)]
pub struct Split {
    /// The text exactly as scored.
    pub text: String,
    /// Its token ids (`tokenizer.encode(text)`).
    pub ids: Vec<u32>,
    /// Words (or chars) mapped to the unknown token because they are not in the vocabulary.
    pub unknown: usize,
}

/// A loaded corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Vocabulary and text-to-id mapping.
    pub tokenizer: Tokenizer,
    /// Training ids.
    pub train: Vec<u32>,
    /// Validation split.
    pub valid: Split,
    /// Test split.
    pub test: Split,
    /// Where it came from.
    pub description: String,
}

fn read(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    if text.trim().is_empty() {
        return Err(Error::Data { path: path.to_path_buf(), reason: "the file is empty".into() });
    }
    Ok(text)
}

impl Corpus {
    /// Loads and tokenizes a corpus, building the vocabulary from its training text.
    pub fn load(spec: &DataSpec) -> Result<Corpus> {
        Self::load_with(spec, None)
    }

    /// Loads a corpus; with `tokenizer` (a trained model's) its vocabulary is used instead
    /// of one built from the training text.
    pub fn load_with(spec: &DataSpec, tokenizer: Option<&Tokenizer>) -> Result<Corpus> {
        let expect_kind = |kind: TokenizerKind, path: &Path| match tokenizer {
            Some(t) if t.kind() != kind => Err(Error::Data {
                path: path.to_path_buf(),
                reason: format!("the model's tokenizer is {:?}-level but this is {kind:?}-level data", t.kind()),
            }),
            _ => Ok(()),
        };
        match spec {
            DataSpec::Word { train, valid, test } => {
                expect_kind(TokenizerKind::Word, train)?;
                let (train_text, valid_text, test_text) = (read(train)?, read(valid)?, read(test)?);
                let tokenizer = match tokenizer {
                    Some(t) => t.clone(),
                    None => word_vocab(&train_text)?,
                };
                let enc = tokenizer.encode(&train_text);
                Ok(Corpus {
                    train: enc.ids,
                    valid: split(&tokenizer, valid_text),
                    test: split(&tokenizer, test_text),
                    tokenizer,
                    description: spec.describe(),
                })
            }
            DataSpec::Char { file, valid_fraction, test_fraction } => {
                expect_kind(TokenizerKind::Char, file)?;
                let fractions_ok = |f: f64| (0.0..0.5).contains(&f) && f > 0.0;
                if !fractions_ok(*valid_fraction) || !fractions_ok(*test_fraction) {
                    return Err(Error::Config {
                        field: "data.valid_fraction/test_fraction".into(),
                        reason: "each must be in (0, 0.5)".into(),
                    });
                }
                let text = read(file)?;
                let chars: Vec<char> = text.chars().collect();
                let n = chars.len();
                let n_test = (n as f64 * test_fraction) as usize;
                let n_valid = (n as f64 * valid_fraction) as usize;
                let n_train = n - n_valid - n_test;
                if n_valid == 0 || n_test == 0 {
                    return Err(Error::Data {
                        path: file.clone(),
                        reason: format!("{n} characters are too few to split"),
                    });
                }
                let part = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
                let train_text = part(0, n_train);
                let tokenizer = match tokenizer {
                    Some(t) => t.clone(),
                    None => {
                        let mut cs: Vec<char> = train_text.chars().collect();
                        cs.sort_unstable();
                        cs.dedup();
                        let tokens =
                            std::iter::once("<unk>".to_string()).chain(cs.into_iter().map(String::from)).collect();
                        Tokenizer::new(TokenizerKind::Char, tokens, "<unk>", None)?
                    }
                };
                Ok(Corpus {
                    train: tokenizer.encode(&train_text).ids,
                    valid: split(&tokenizer, part(n_train, n_train + n_valid)),
                    test: split(&tokenizer, part(n_train + n_valid, n)),
                    tokenizer,
                    description: spec.describe(),
                })
            }
        }
    }
}

fn split(tokenizer: &Tokenizer, text: String) -> Split {
    let enc = tokenizer.encode(&text);
    Split { ids: enc.ids, unknown: enc.unknown, text }
}

/// The vocabulary of a word-level training text: `<unk>`, `<eos>`, then every word by
/// falling frequency (ties by first appearance).
fn word_vocab(train: &str) -> Result<Tokenizer> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for w in train.split_whitespace() {
        let n = counts.len();
        counts.entry(w).or_insert((0, n)).0 += 1;
    }
    let mut words: Vec<(&str, (usize, usize))> =
        counts.into_iter().filter(|(w, _)| *w != "<unk>" && *w != "<eos>").collect();
    words.sort_by_key(|&(_, (count, first))| (std::cmp::Reverse(count), first));
    let tokens = ["<unk>", "<eos>"].into_iter().chain(words.into_iter().map(|(w, _)| w)).map(str::to_string).collect();
    Ok(Tokenizer::new(TokenizerKind::Word, tokens, "<unk>", Some("<eos>"))?)
}

/// Lays a token stream out as `batch` parallel rows (Zaremba et al.'s batching): row `b`
/// holds tokens `b·n .. (b+1)·n` with `n = len / batch`; the tail is dropped.
#[derive(Debug, Clone)]
pub struct Batches {
    rows: Vec<Vec<u32>>,
    bptt: usize,
}

impl Batches {
    /// Batches `ids`; errors if a single window does not fit.
    pub fn new(ids: &[u32], batch: usize, bptt: usize) -> Result<Batches> {
        let n = ids.len() / batch.max(1);
        if batch == 0 || bptt == 0 || n < 2 {
            return Err(Error::Config {
                field: "batch_size/bptt".into(),
                reason: format!("{} training tokens cannot fill {batch} rows of at least 2 tokens", ids.len()),
            });
        }
        Ok(Batches { rows: ids[..n * batch].chunks(n).map(<[u32]>::to_vec).collect(), bptt })
    }

    /// Windows per pass over the data.
    pub fn len(&self) -> usize {
        (self.rows[0].len() - 1).div_ceil(self.bptt)
    }

    /// Always false: a batch layout holds at least one window.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Window length (BPTT).
    pub fn bptt(&self) -> usize {
        self.bptt
    }

    /// A hash of the laid-out tokens: names the stream (a teacher's cached predictions).
    pub fn hash(&self) -> String {
        crate::checkpoint::fnv1a(self.rows.iter().flatten().flat_map(|t| t.to_le_bytes()))
    }

    /// Parallel rows (the batch size).
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Window `i`'s first position within a row, and its length.
    pub fn span(&self, i: usize) -> (usize, usize) {
        let start = i * self.bptt;
        (start, self.bptt.min(self.rows[0].len() - 1 - start))
    }

    /// Window `i`: inputs and targets, time-major (`t·batch + b`), and its length.
    pub fn window(&self, i: usize) -> (Vec<u32>, Vec<u32>, usize) {
        let (start, len) = self.span(i);
        let (mut x, mut y) = (Vec::with_capacity(len * self.rows.len()), Vec::with_capacity(len * self.rows.len()));
        for t in start..start + len {
            for r in &self.rows {
                x.push(r[t]);
                y.push(r[t + 1]);
            }
        }
        (x, y, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_the_stream_in_order() {
        let ids: Vec<u32> = (0..23).collect();
        let b = Batches::new(&ids, 2, 4).unwrap();
        // rows: 0..11 and 11..22; 10 targets each → windows of 4, 4, 2
        assert_eq!(b.len(), 3);
        let (x, y, len) = b.window(0);
        assert_eq!(len, 4);
        assert_eq!(x, [0, 11, 1, 12, 2, 13, 3, 14]);
        assert_eq!(y, [1, 12, 2, 13, 3, 14, 4, 15]);
        let (x, y, len) = b.window(2);
        assert_eq!((len, x, y), (2, vec![8, 19, 9, 20], vec![9, 20, 10, 21]));
        assert!(Batches::new(&ids, 20, 4).is_err());
    }

    #[test]
    fn word_vocab_is_exactly_the_training_words() {
        let tok = word_vocab("the cat sat\nthe N dog <unk>\n").unwrap();
        assert_eq!(tok.tokens()[..3], ["<unk>", "<eos>", "the"]);
        assert_eq!(tok.len(), 7);
        let enc = tok.encode("the cat sat\nthe N dog <unk>\n");
        assert_eq!(enc.unknown, 0);
        assert_eq!(tok.decode(&enc.ids), "the cat sat\nthe N dog <unk>\n");
    }
}
