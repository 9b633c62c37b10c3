//! A model file taken apart into editable pieces — metadata, config JSON, tensor entries
//! and their bytes — and put back together, so that a mutant is well-formed everywhere
//! except where it was edited and so gets deep into the reader.
//!
//! The header is written by hand rather than through `safetensors::serialize`, because
//! mutants must be able to hold what no serializer writes: a key twice, offsets that
//! overlap or leave gaps, shapes that do not match the bytes, non-string metadata.

use serde_json::Value;

/// Where an entry's `data_offsets` point.
#[derive(Debug, Clone, PartialEq)]
pub enum Offsets {
    /// At its own bytes, laid out in entry order (what a writer does).
    Auto,
    /// Its own bytes' offsets plus these deltas (start, end); may go negative.
    Delta(i64, i64),
    /// This JSON value, whatever it is.
    Fixed(Value),
    /// Whatever the first entry of this name (with bytes of its own) gets; the entry has no bytes.
    SameAs(String),
}

/// One tensor entry of the header and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its key in the header.
    pub name: String,
    /// The `dtype` value (a string, unless mutated).
    pub dtype: Value,
    /// The `shape` value (an array of numbers, unless mutated).
    pub shape: Value,
    /// Its bytes in the data section (none for [`Offsets::SameAs`]).
    pub data: Vec<u8>,
    /// How its `data_offsets` are written.
    pub offsets: Offsets,
    /// More fields of the entry, after the three standard ones.
    pub extra: Vec<(String, Value)>,
}

/// An edit of raw bytes (of the config text or of the whole file). Positions are taken
/// modulo the length, so an edit applies to any buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum ByteEdit {
    /// Keeps the first `keep % (len + 1)` bytes.
    Truncate {
        /// Bytes kept (modulo length + 1).
        keep: usize,
    },
    /// Removes up to `len` bytes from the end.
    Cut {
        /// How many.
        len: usize,
    },
    /// Sets one byte.
    Set {
        /// Position (modulo length).
        at: usize,
        /// The new byte.
        value: u8,
    },
    /// Flips one bit.
    Flip {
        /// Position (modulo length).
        at: usize,
        /// Bit 0..8.
        bit: u8,
    },
    /// Inserts bytes.
    Insert {
        /// Position (modulo length + 1).
        at: usize,
        /// What to insert.
        bytes: Vec<u8>,
    },
    /// Deletes up to `len` bytes.
    Delete {
        /// Position (modulo length).
        at: usize,
        /// How many.
        len: usize,
    },
    /// Appends bytes.
    Extend {
        /// What to append.
        bytes: Vec<u8>,
    },
    /// Overwrites the 8-byte header length (file only).
    Length {
        /// The new length prefix.
        value: u64,
    },
    /// Adds to the 8-byte header length, wrapping (file only).
    LengthDelta {
        /// What to add.
        delta: i64,
    },
}

impl ByteEdit {
    /// Applies the edit; `Length*` edits need at least 8 bytes and are ignored otherwise.
    pub fn apply(&self, b: &mut Vec<u8>) {
        let n = b.len();
        match self {
            ByteEdit::Truncate { keep } => b.truncate(keep % (n + 1)),
            ByteEdit::Cut { len } => b.truncate(n.saturating_sub(*len)),
            ByteEdit::Set { at, value } if n > 0 => b[at % n] = *value,
            ByteEdit::Flip { at, bit } if n > 0 => b[at % n] ^= 1 << (bit % 8),
            ByteEdit::Insert { at, bytes } => {
                let at = at % (n + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            ByteEdit::Delete { at, len } if n > 0 => {
                let at = at % n;
                b.drain(at..(at + len).min(n));
            }
            ByteEdit::Extend { bytes } => b.extend_from_slice(bytes),
            ByteEdit::Length { value } if n >= 8 => b[..8].copy_from_slice(&value.to_le_bytes()),
            ByteEdit::LengthDelta { delta } if n >= 8 => {
                let v = u64::from_le_bytes(b[..8].try_into().expect("8 bytes")).wrapping_add(*delta as u64);
                b[..8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
}

/// A model file as editable pieces.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// `__metadata__` entries in order (keys may repeat); `None` leaves the key out.
    pub meta: Option<Vec<(String, Value)>>,
    /// The parsed config; when present it replaces every `config` metadata value.
    pub config: Option<Value>,
    /// Keys written twice in the config: (JSON pointer of the object, key).
    pub config_dups: Vec<(String, String)>,
    /// Edits of the config text after it is written.
    pub config_edits: Vec<ByteEdit>,
    /// Tensor entries in header and data order (names may repeat).
    pub entries: Vec<Entry>,
    /// Pads the header with spaces to a multiple of 8 bytes, as the runtime's writer does.
    pub pad: bool,
    /// Edits of the finished file.
    pub file_edits: Vec<ByteEdit>,
}

impl Doc {
    /// Takes apart a valid model file. Panics on anything else: it is for seeds.
    pub fn parse(bytes: &[u8]) -> Doc {
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let header: Value = serde_json::from_slice(&bytes[8..8 + n]).expect("a JSON header");
        let data = &bytes[8 + n..];
        let mut meta = None;
        let mut config = None;
        let mut entries = vec![];
        for (k, v) in header.as_object().expect("an object") {
            if k == "__metadata__" {
                let m: Vec<(String, Value)> =
                    v.as_object().expect("metadata").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                config = m.iter().find(|(k, _)| k == "config").map(|(_, v)| {
                    serde_json::from_str(v.as_str().expect("config is a string")).expect("config is JSON")
                });
                meta = Some(m);
                continue;
            }
            let off = &v["data_offsets"];
            let (s, e) = (off[0].as_u64().expect("offset") as usize, off[1].as_u64().expect("offset") as usize);
            entries.push((
                s,
                Entry {
                    name: k.clone(),
                    dtype: v["dtype"].clone(),
                    shape: v["shape"].clone(),
                    data: data[s..e].to_vec(),
                    offsets: Offsets::Auto,
                    extra: vec![],
                },
            ));
        }
        // Data order, so that `Offsets::Auto` reproduces the file.
        entries.sort_by_key(|(s, _)| *s);
        let entries = entries.into_iter().map(|(_, e)| e).collect();
        Doc { meta, config, config_dups: vec![], config_edits: vec![], entries, pad: true, file_edits: vec![] }
    }

    /// The first entry called `name`.
    pub fn entry_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.name == name)
    }

    /// The first entry called `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The config text as it goes into the metadata.
    pub fn config_text(&self) -> Option<String> {
        let c = self.config.as_ref()?;
        let mut text = if self.config_dups.is_empty() {
            c.to_string()
        } else {
            let mut out = String::new();
            write_json(&mut out, c, &mut String::new(), &self.config_dups);
            out
        };
        if !self.config_edits.is_empty() {
            let mut b = text.into_bytes();
            for e in &self.config_edits {
                e.apply(&mut b);
            }
            text = String::from_utf8_lossy(&b).into_owned();
        }
        Some(text)
    }

    /// The file.
    pub fn build(&self) -> Vec<u8> {
        let config = self.config_text().map(Value::String);
        // Offsets of the entries with bytes of their own, in order.
        let mut own = Vec::with_capacity(self.entries.len());
        let mut pos = 0u64;
        for e in &self.entries {
            if matches!(e.offsets, Offsets::SameAs(_)) {
                own.push(None);
            } else {
                own.push(Some((pos, pos + e.data.len() as u64)));
                pos += e.data.len() as u64;
            }
        }
        let mut h = String::with_capacity(256 + 64 * self.entries.len());
        h.push('{');
        let mut first = true;
        let mut sep = |h: &mut String| {
            if !first {
                h.push(',');
            }
            first = false;
        };
        if let Some(meta) = &self.meta {
            sep(&mut h);
            h.push_str("\"__metadata__\":{");
            for (i, (k, v)) in meta.iter().enumerate() {
                if i > 0 {
                    h.push(',');
                }
                let v = match (&config, k.as_str()) {
                    (Some(c), "config") => c,
                    _ => v,
                };
                push_key(&mut h, k);
                h.push_str(&v.to_string());
            }
            h.push('}');
        }
        for (i, e) in self.entries.iter().enumerate() {
            sep(&mut h);
            push_key(&mut h, &e.name);
            h.push_str("{\"dtype\":");
            h.push_str(&e.dtype.to_string());
            h.push_str(",\"shape\":");
            h.push_str(&e.shape.to_string());
            h.push_str(",\"data_offsets\":");
            let auto = |j: usize| own[j].expect("an entry with bytes");
            let offsets = match &e.offsets {
                Offsets::Auto => format!("[{},{}]", auto(i).0, auto(i).1),
                Offsets::Delta(a, b) => {
                    let (s, t) = auto(i);
                    format!("[{},{}]", s as i128 + *a as i128, t as i128 + *b as i128)
                }
                Offsets::Fixed(v) => v.to_string(),
                Offsets::SameAs(name) => {
                    match self.entries.iter().enumerate().find(|(j, x)| &x.name == name && own[*j].is_some()) {
                        Some((j, _)) => format!("[{},{}]", auto(j).0, auto(j).1),
                        None => "[0,0]".into(),
                    }
                }
            };
            h.push_str(&offsets);
            for (k, v) in &e.extra {
                h.push(',');
                push_key(&mut h, k);
                h.push_str(&v.to_string());
            }
            h.push('}');
        }
        h.push('}');
        if self.pad {
            while !h.len().is_multiple_of(8) {
                h.push(' ');
            }
        }
        let mut file = Vec::with_capacity(8 + h.len() + pos as usize);
        file.extend_from_slice(&(h.len() as u64).to_le_bytes());
        file.extend_from_slice(h.as_bytes());
        for e in &self.entries {
            if !matches!(e.offsets, Offsets::SameAs(_)) {
                file.extend_from_slice(&e.data);
            }
        }
        for edit in &self.file_edits {
            edit.apply(&mut file);
        }
        file
    }
}

fn push_key(h: &mut String, k: &str) {
    h.push_str(&Value::from(k).to_string());
    h.push(':');
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn pointer_token(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Writes `v` as JSON, writing the keys listed in `dups` (object pointer, key) twice.
fn write_json(out: &mut String, v: &Value, path: &mut String, dups: &[(String, String)]) {
    match v {
        Value::Object(m) => {
            out.push('{');
            let mut first = true;
            for (k, x) in m {
                let times = if dups.iter().any(|(p, key)| p == path && key == k) { 2 } else { 1 };
                for _ in 0..times {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_key(out, k);
                    let len = path.len();
                    path.push('/');
                    path.push_str(&pointer_token(k));
                    write_json(out, x, path, dups);
                    path.truncate(len);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                write_json(out, x, path, dups);
                path.truncate(len);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}
