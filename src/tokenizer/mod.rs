//! Word-level (PTB style) and char-level tokenizers over a vocabulary stored in the model.

use std::collections::HashMap;

use crate::error::{config_err, Error, Result};
use lowercase::lowercase;

mod lowercase;

/// How text is split into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// PTB style: whitespace-split, lowercased, numbers → `N`, unknown words → unk,
    /// and an end-of-sentence token at every line end.
    Word,
    /// One token per Unicode scalar value; newlines are ordinary characters.
    Char,
}

impl TokenizerKind {
    /// Its name in model files (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            TokenizerKind::Word => "word",
            TokenizerKind::Char => "char",
        }
    }
}

/// A tokenizer and its vocabulary.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    kind: TokenizerKind,
    tokens: Vec<String>,
    index: HashMap<String, u32>,
    unk: u32,
    eos: Option<u32>,
}

/// A tokenized text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Words (or characters) that were mapped to the unknown token.
    pub unknown: usize,
    /// Words (or characters) in the text, not counting end-of-sentence tokens.
    pub words: usize,
}

const MAX_TOKEN_BYTES: usize = 1024;

impl Tokenizer {
    /// Builds a tokenizer. `unk` must be in `tokens`; `eos` is required for word
    /// tokenizers and must be absent for char tokenizers.
    pub fn new(kind: TokenizerKind, tokens: Vec<String>, unk: &str, eos: Option<&str>) -> Result<Tokenizer> {
        if tokens.is_empty() {
            return Err(config_err("tokenizer.tokens", "the vocabulary is empty"));
        }
        let mut index = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() || t.len() > MAX_TOKEN_BYTES {
                return Err(config_err(format!("tokenizer.tokens[{i}]"), "tokens must hold 1 to 1024 bytes"));
            }
            if kind == TokenizerKind::Char && t.chars().count() != 1 && t != unk {
                return Err(config_err(format!("tokenizer.tokens[{i}]"), format!("`{t}` is not a single character")));
            }
            if index.insert(t.clone(), i as u32).is_some() {
                return Err(config_err(format!("tokenizer.tokens[{i}]"), format!("`{t}` appears twice")));
            }
        }
        let find = |field: &str, t: &str| {
            index.get(t).copied().ok_or_else(|| config_err(field, format!("`{t}` is not in the vocabulary")))
        };
        let unk = find("tokenizer.unk", unk)?;
        let eos = match (kind, eos) {
            (TokenizerKind::Word, Some(e)) => Some(find("tokenizer.eos", e)?),
            (TokenizerKind::Word, None) => {
                return Err(config_err("tokenizer.eos", "word tokenizers need an end-of-sentence token"))
            }
            (TokenizerKind::Char, Some(_)) => {
                return Err(config_err("tokenizer.eos", "char tokenizers have no end-of-sentence token"))
            }
            (TokenizerKind::Char, None) => None,
        };
        Ok(Tokenizer { kind, tokens, index, unk, eos })
    }

    /// The kind of tokenizer.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }
    /// Vocabulary size.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    /// Always false: a vocabulary holds at least one token.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The vocabulary, by id.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }
    /// The token of an id.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|s| s.as_str())
    }
    /// The id of a token, if in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }
    /// The unknown token's id.
    pub fn unk(&self) -> u32 {
        self.unk
    }
    /// The end-of-sentence token's id (word tokenizers).
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// The token that stands for "a new text starts here": `<eos>` for word models,
    /// a newline for char models whose vocabulary has one, otherwise none.
    pub fn boundary(&self) -> Option<u32> {
        match self.kind {
            TokenizerKind::Word => self.eos,
            TokenizerKind::Char => self.id("\n"),
        }
    }

    /// Splits a text into token ids.
    ///
    /// Word models: every line (including the last one if it ends with a newline)
    /// is followed by the end-of-sentence token; a line without its newline is an
    /// unfinished sentence and gets none. Each whitespace-separated word goes through
    /// the rules of [`Tokenizer::word_id`]. Char models map characters outside the
    /// vocabulary to the unknown token.
    pub fn encode(&self, text: &str) -> Encoded {
        let mut out = Encoded::default();
        match self.kind {
            TokenizerKind::Char => {
                for ch in text.chars() {
                    let mut buf = [0u8; 4];
                    let id = self.id(ch.encode_utf8(&mut buf));
                    out.words += 1;
                    out.unknown += id.is_none() as usize;
                    out.ids.push(id.unwrap_or(self.unk));
                }
            }
            TokenizerKind::Word => {
                let eos = self.eos.expect("word tokenizers have eos");
                let mut lines = text.split('\n').peekable();
                while let Some(line) = lines.next() {
                    for word in line.split_whitespace() {
                        match self.word_id(word) {
                            WordId::Known(id) => out.ids.push(id),
                            WordId::Unknown => {
                                out.unknown += 1;
                                out.ids.push(self.unk);
                            }
                            WordId::Dropped => continue,
                        }
                        out.words += 1;
                    }
                    if lines.peek().is_some() {
                        out.ids.push(eos);
                    }
                }
            }
        }
        out
    }

    /// The token of one whitespace-separated word, by the first rule that finds one
    /// (`docs/format.md`, "Word tokenization", says the same):
    ///
    /// 1. the word as it is (PTB's own `N`, `<unk>`, and cased vocabularies);
    /// 2. the word lowercased;
    /// 3. `N`, if the word is a number and `N` is in the vocabulary;
    /// 4. the word stripped of surrounding ASCII punctuation other than `<` and `>`
    ///    (so `<unk>` and `<eos>` survive), through rules 1–3 again: `(N)`, `N.` and
    ///    `Dog,` become `N`, `N` and `dog`; a word that is all punctuation is dropped;
    /// 5. otherwise the unknown token, counted as unknown.
    fn word_id(&self, word: &str) -> WordId {
        let lookup = |w: &str| {
            self.id(w).or_else(|| self.id(&lowercase(w))).or_else(|| if is_number(w) { self.id("N") } else { None })
        };
        if let Some(id) = lookup(word) {
            return WordId::Known(id);
        }
        let core = word.trim_matches(|c: char| c.is_ascii_punctuation() && c != '<' && c != '>');
        if core.is_empty() {
            return WordId::Dropped;
        }
        match lookup(core) {
            Some(id) => WordId::Known(id),
            None => WordId::Unknown,
        }
    }

    /// Encodes a text that is to be scored, rejecting texts with nothing to score.
    pub fn encode_scored(&self, text: &str) -> Result<Encoded> {
        let enc = self.encode(text);
        if enc.ids.is_empty() {
            return Err(Error::EmptyText);
        }
        if enc.words > 0 && enc.unknown == enc.words {
            return Err(Error::AllUnknown { words: enc.words });
        }
        Ok(enc)
    }

    /// Joins tokens back into text (word models: spaces, `<eos>` as a newline).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut s = String::new();
        for &id in ids {
            let Some(t) = self.token(id) else { continue };
            match self.kind {
                TokenizerKind::Char => s.push_str(t),
                TokenizerKind::Word if Some(id) == self.eos => s.push('\n'),
                TokenizerKind::Word => {
                    if !s.is_empty() && !s.ends_with('\n') {
                        s.push(' ');
                    }
                    s.push_str(t);
                }
            }
        }
        s
    }
}

/// What [`Tokenizer::word_id`] makes of a word.
enum WordId {
    /// A token of the vocabulary.
    Known(u32),
    /// Not in the vocabulary by any rule: the unknown token.
    Unknown,
    /// Punctuation only, which the vocabulary does not hold: no token at all.
    Dropped,
}

/// PTB writes every number as `N`: digits with optional separators, like `1,000`,
/// `3.5`, `12/31` or `-4`.
fn is_number(w: &str) -> bool {
    let body = w.strip_prefix(['-', '+']).unwrap_or(w);
    body.chars().any(|c| c.is_ascii_digit())
        && body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '/' | ':' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word() -> Tokenizer {
        let v = ["<unk>", "<eos>", "the", "cat", "N", "mr.", "sat"];
        Tokenizer::new(TokenizerKind::Word, v.iter().map(|s| s.to_string()).collect(), "<unk>", Some("<eos>")).unwrap()
    }

    #[test]
    fn kind_names_are_the_serde_names() {
        for k in [TokenizerKind::Word, TokenizerKind::Char] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }

    #[test]
    fn ptb_rules() {
        let t = word();
        let e = t.encode("The cat sat 1,000 mr. Dog.\nthe cat\n");
        let words: Vec<_> = e.ids.iter().map(|&i| t.token(i).unwrap()).collect();
        assert_eq!(words, ["the", "cat", "sat", "N", "mr.", "<unk>", "<eos>", "the", "cat", "<eos>"]);
        assert_eq!((e.words, e.unknown), (8, 1));
        // PTB text writes numbers as a literal `N`, which must not be lowercased away.
        assert_eq!(t.encode("N <unk>").ids, vec![4, 0]);
        assert_eq!(t.encode("N <unk>").unknown, 0);
    }

    /// One assertion per rule of `word_id`, in its order.
    #[test]
    fn each_word_rule() {
        let t = word();
        let tokens = |text: &str| -> Vec<String> {
            t.encode(text).ids.iter().map(|&i| t.token(i).unwrap().to_string()).collect()
        };
        // 1. as it is: `N` and `<unk>` map to themselves and are not unknown.
        assert_eq!(tokens("N <unk> mr."), ["N", "<unk>", "mr."]);
        assert_eq!(t.encode("<unk>").unknown, 0);
        // 2. lowercased.
        assert_eq!(tokens("THE Cat"), ["the", "cat"]);
        // 3. numbers: digits with . , / : - separators and an optional sign.
        assert_eq!(tokens("1,000 3.5 12/31 10:30 -4 +7 1-2"), ["N"; 7]);
        assert_eq!(tokens("1a 4th"), ["<unk>", "<unk>"]);
        // 4. surrounding punctuation stripped, then rules 1-3 again.
        assert_eq!(tokens("(N) N. \"cat\" Cat, (1,000)."), ["N", "N", "cat", "cat", "N"]);
        assert_eq!(tokens("<unk>. (<eos>)"), ["<unk>", "<eos>"]);
        assert_eq!(tokens("... -- !"), Vec::<String>::new());
        assert_eq!(t.encode("... cat").words, 1);
        // `<` and `>` are kept, so bare ones are unknown words rather than dropped.
        assert_eq!(tokens("< >"), ["<unk>", "<unk>"]);
        // 5. the rest: unknown, and counted.
        let e = t.encode("dog. the Zebra");
        assert_eq!((e.words, e.unknown), (3, 2));
    }

    #[test]
    fn unfinished_line_has_no_eos() {
        let t = word();
        assert_eq!(t.encode("the cat").ids, vec![2, 3]);
        assert_eq!(t.decode(&[2, 3, 1, 2]), "the cat\nthe");
    }

    #[test]
    fn scored_text_errors() {
        let t = word();
        assert_eq!(t.encode_scored("   ").unwrap_err(), Error::EmptyText);
        assert_eq!(t.encode_scored("dog bird").unwrap_err(), Error::AllUnknown { words: 2 });
        assert!(t.encode_scored("dog cat").is_ok());
    }

    #[test]
    fn char_tokenizer() {
        let v = ["<unk>", "a", "b", "\n"];
        let t = Tokenizer::new(TokenizerKind::Char, v.iter().map(|s| s.to_string()).collect(), "<unk>", None).unwrap();
        let e = t.encode("ab\nz");
        assert_eq!(e.ids, vec![1, 2, 3, 0]);
        assert_eq!(e.unknown, 1);
        assert_eq!(t.boundary(), Some(3));
        assert_eq!(t.decode(&e.ids[..3]), "ab\n");
    }

    #[test]
    fn vocabulary_errors() {
        let dup = vec!["a".to_string(), "a".to_string()];
        assert!(Tokenizer::new(TokenizerKind::Char, dup, "a", None).is_err());
        let no_unk = vec!["a".to_string()];
        assert!(Tokenizer::new(TokenizerKind::Word, no_unk, "<unk>", Some("a")).is_err());
    }
}
