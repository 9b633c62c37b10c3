//! The language model: embedding → LSTM layers → output projection, validated as a whole.

use crate::error::{config_err, Error, Result};
use crate::kernels::Kernels;
use crate::lstm::{Gates, LstmLayer};
use crate::matrix::{MatVec, Matrix, ValueType, Weight};
use crate::tokenizer::Tokenizer;
use crate::Provenance;

/// Where the input embedding comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Embedding {
    /// Rows of the output projection (weight tying): embedding size = last hidden size.
    Tied,
    /// Its own `vocab × embedding` matrix of any kind.
    Own(Weight),
}

/// A complete LSTM language model. Build one with [`Model::new`] (which validates
/// every shape) or load one with [`Model::from_bytes`].
///
/// The methods that touch files live with the format, so that this module does not
/// import it (the format imports the model): [`Model::from_bytes`], [`Model::to_bytes`],
/// [`Model::config`] and [`Model::tensor_bytes`] in `src/format/mod.rs` (reading in
/// `read.rs`, writing in `write.rs`);
/// [`Model::info`] in `src/info.rs`.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) tokenizer: Tokenizer,
    pub(crate) embedding: Embedding,
    pub(crate) layers: Vec<LstmLayer>,
    pub(crate) output: Weight,
    pub(crate) output_bias: Vec<f32>,
    pub(crate) provenance: Provenance,
    pub(crate) kernels: Kernels,
}

/// Largest vocabulary, hidden size or matrix side this runtime accepts.
pub const MAX_DIM: usize = 1 << 22;
/// Largest number of LSTM layers.
pub const MAX_LAYERS: usize = 64;

impl Model {
    /// Assembles and validates a model.
    pub fn new(
        tokenizer: Tokenizer,
        embedding: Embedding,
        layers: Vec<LstmLayer>,
        output: Weight,
        output_bias: Vec<f32>,
        provenance: Provenance,
    ) -> Result<Model> {
        let vocab = tokenizer.len();
        if layers.is_empty() {
            return Err(config_err("layers", "a model needs at least one LSTM layer"));
        }
        if layers.len() > MAX_LAYERS {
            return Err(Error::TooLarge {
                what: "layer count".into(),
                value: layers.len() as u64,
                max: MAX_LAYERS as u64,
            });
        }
        let last = layers.last().map(|l| l.hidden).unwrap_or(0);
        let embed_dim = match &embedding {
            Embedding::Tied => last,
            Embedding::Own(w) => {
                if w.matrix.rows() != vocab {
                    return Err(Error::VocabMismatch { vocab, rows: w.matrix.rows(), matrix: "embedding" });
                }
                w.matrix.cols()
            }
        };
        let mut input = embed_dim;
        for (i, l) in layers.iter().enumerate() {
            let field = |f: &str| format!("layers[{i}].{f}");
            if l.hidden == 0 || l.hidden > MAX_DIM {
                return Err(config_err(field("hidden"), format!("hidden size {} is outside 1..={MAX_DIM}", l.hidden)));
            }
            if l.input != input {
                return Err(config_err(field("input"), format!("is {} but the layer below gives {input}", l.input)));
            }
            let h4 = 4 * l.hidden;
            let expect = |name: &str, w: &Weight, cols: usize| -> Result<()> {
                if (w.matrix.rows(), w.matrix.cols()) != (h4, cols) {
                    return Err(config_err(
                        field(name),
                        format!("is {}x{}, expected {h4}x{cols}", w.matrix.rows(), w.matrix.cols()),
                    ));
                }
                Ok(())
            };
            match &l.gates {
                Gates::Fused(w) => expect("w", w, l.input + l.hidden)?,
                Gates::Split { ih, hh } => {
                    expect("w_ih", ih, l.input)?;
                    expect("w_hh", hh, l.hidden)?;
                }
            }
            if l.bias.len() != h4 {
                return Err(config_err(field("bias"), format!("has {} entries, expected {h4}", l.bias.len())));
            }
            input = l.hidden;
        }
        if output.matrix.rows() != vocab {
            return Err(Error::VocabMismatch { vocab, rows: output.matrix.rows(), matrix: "output" });
        }
        if output.matrix.cols() != last {
            return Err(config_err(
                "output",
                format!("has {} columns but the last layer gives {last}", output.matrix.cols()),
            ));
        }
        if output_bias.len() != vocab {
            return Err(config_err("output.bias", format!("has {} entries, expected {vocab}", output_bias.len())));
        }
        Ok(Model { tokenizer, embedding, layers, output, output_bias, provenance, kernels: Kernels::best() })
    }

    /// The same model running on another kernel set.
    pub fn with_kernels(mut self, kernels: Kernels) -> Model {
        self.kernels = kernels;
        self
    }
    /// The kernel set in use.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }
    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.len()
    }
    /// Embedding size.
    pub fn embedding_dim(&self) -> usize {
        self.layers[0].input
    }
    /// The embedding.
    pub fn embedding(&self) -> &Embedding {
        &self.embedding
    }
    /// The LSTM layers, bottom first.
    pub fn layers(&self) -> &[LstmLayer] {
        &self.layers
    }
    /// The output projection (`vocab × last hidden`).
    pub fn output(&self) -> &Weight {
        &self.output
    }
    /// The output bias.
    pub fn output_bias(&self) -> &[f32] {
        &self.output_bias
    }
    /// Free-form provenance: method, dataset, perplexities, whether it was trained.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }
    /// Replaces the provenance.
    pub fn set_provenance(&mut self, p: Provenance) {
        self.provenance = p;
    }

    /// Stores every weight's values as `dtype` when written. Values in memory stay as
    /// they are: reload the written bytes to compute with the rounded ones. Below f32
    /// the biases are rounded to f16 here, in memory, which lets the writer store them in
    /// two bytes (it does so only when that is exact: docs/format.md, *Biases*).
    pub fn store_as(&mut self, dtype: ValueType) {
        if dtype != ValueType::F32 {
            let round = |v: &mut Vec<f32>| v.iter_mut().for_each(|b| *b = half::f16::from_f32(*b).to_f32());
            self.layers.iter_mut().for_each(|l| round(&mut l.bias));
            round(&mut self.output_bias);
        }
        let mut weights: Vec<&mut Weight> = vec![&mut self.output];
        if let Embedding::Own(w) = &mut self.embedding {
            weights.push(w);
        }
        for l in &mut self.layers {
            match &mut l.gates {
                Gates::Fused(w) => weights.push(w),
                Gates::Split { ih, hh } => weights.extend([ih, hh]),
            }
        }
        for w in weights {
            w.dtype = dtype;
        }
    }

    /// The matrix whose rows are the input embeddings.
    pub(crate) fn embedding_matrix(&self) -> &Matrix {
        match &self.embedding {
            Embedding::Tied => &self.output.matrix,
            Embedding::Own(w) => &w.matrix,
        }
    }

    /// Every weight with its name prefix in the file, in file order.
    pub fn weights(&self) -> Vec<(String, &Weight)> {
        let mut v = vec![];
        if let Embedding::Own(w) = &self.embedding {
            v.push(("embedding".to_string(), w));
        }
        for (i, l) in self.layers.iter().enumerate() {
            for (name, w) in l.weights() {
                v.push((format!("layers.{i}.{name}"), w));
            }
        }
        v.push(("output".to_string(), &self.output));
        v
    }
}
