//! The safetensors container, read: an 8-byte header length, a JSON header of tensor
//! entries and string metadata, then the tensors' bytes, each checked to lie where the
//! header says and to fill the data section exactly.
//!
//! Read here rather than by the `safetensors` crate (which the writer still uses): its
//! serde-derived header parser was a fifth of each WebAssembly module, and its errors
//! did not say which tensor or where.

use std::collections::HashMap;

use super::json::{Fault, Json, Path};
use crate::error::{Dims, Error, Result};

/// Largest safetensors header accepted (the vocabulary lives there).
pub const MAX_HEADER_BYTES: u64 = 64 << 20;

/// A tensor's element type, by its safetensors name. The reader uses a few; the others
/// are known so that a file holding one is refused with the dtype named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum Dtype {
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    const ALL: [Dtype; 15] = [
        Dtype::BOOL,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8_E5M2,
        Dtype::F8_E4M3,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    /// The name in a header, e.g. `F16`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::BOOL | Dtype::U8 | Dtype::I8 | Dtype::F8_E5M2 | Dtype::F8_E4M3 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }
}

/// One tensor of a container: its type, shape and bytes (little-endian, row-major).
#[derive(Debug)]
pub struct Tensor<'d> {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: &'d [u8],
}

/// A read and checked container, borrowing the file's bytes.
#[derive(Debug)]
pub struct Container<'d> {
    /// The `__metadata__` map, if the header has one.
    pub metadata: Option<HashMap<String, String>>,
    tensors: HashMap<String, Tensor<'d>>,
}

/// A tensor entry as the header gives it, before its offsets are checked.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    offsets: [u64; 2],
}

impl<'d> Container<'d> {
    /// Reads the container of a file; any defect is an error that says what and where.
    pub fn read(bytes: &'d [u8]) -> Result<Container<'d>> {
        let found = bytes.len() as u64;
        let Some(prefix) = bytes.get(..8) else {
            return Err(Error::Truncated { needed: 8, found });
        };
        let n = u64::from_le_bytes(super::le(prefix));
        // The safetensors spec requires the header to start with `{`; checking it first
        // tells a text or JSON file (whose first 8 bytes read as a huge length) from a
        // real container with an oversized header.
        if bytes.get(8).is_some_and(|&b| b != b'{') {
            return Err(not("no JSON header follows the 8-byte length prefix"));
        }
        if n > MAX_HEADER_BYTES {
            return Err(Error::HeaderTooLarge { len: n, max: MAX_HEADER_BYTES });
        }
        if 8 + n > found {
            return Err(Error::Truncated { needed: 8 + n, found });
        }
        let (header, data) = bytes[8..].split_at(n as usize);
        let header = std::str::from_utf8(header).map_err(|e| not(&format!("the header is not UTF-8: {e}")))?;
        let (metadata, mut entries) = parse_header(header).map_err(|fault| match fault {
            Fault::Syntax(m) => not(&format!("header JSON: {m}")),
            Fault::Data { path, reason } if path == "." => not(&reason),
            Fault::Data { path, reason } => not(&format!("header at `{path}`: {reason}")),
        })?;

        // The bytes must be there before their layout is judged, so that a cut file is
        // reported as truncated, with the size it needs.
        if let Some(end) = entries.iter().map(|e| e.offsets[1]).max() {
            let needed = (8 + n).saturating_add(end);
            if needed > found {
                return Err(Error::Truncated { needed, found });
            }
        }
        // The tensors tile the data section in offset order: no overlap, no gap, no tail.
        entries.sort_unstable_by_key(|e| e.offsets);
        let mut next = 0u64;
        let mut tensors = HashMap::with_capacity(entries.len());
        for Entry { name, dtype, shape, offsets: [start, end] } in entries {
            if start != next || end < start {
                return Err(not(&format!(
                    "`{name}` lies at bytes {start}..{end} of the data, where {next} was next: \
                     bytes follow the last tensor, or offsets leave gaps or overlap"
                )));
            }
            let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            let len = elements.and_then(|n| n.checked_mul(dtype.size()));
            if len.map(|l| l as u64) != Some(end - start) {
                return Err(not(&format!(
                    "`{name}` ({} {}) needs {} bytes, its offsets give {}",
                    dtype.name(),
                    Dims(&shape),
                    len.map_or("more than usize::MAX".into(), |l| l.to_string()),
                    end - start
                )));
            }
            tensors.insert(name, Tensor { dtype, shape, data: &data[start as usize..end as usize] });
            next = end;
        }
        if next != data.len() as u64 {
            return Err(not(&format!(
                "{} bytes follow the last tensor, which ends at byte {next} of the data",
                data.len() as u64 - next
            )));
        }
        Ok(Container { metadata, tensors })
    }

    /// The tensor of that name.
    pub fn tensor(&self, name: &str) -> Option<&Tensor<'d>> {
        self.tensors.get(name)
    }

    /// Every tensor's name, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }
}

fn not(reason: &str) -> Error {
    Error::NotSafetensors { reason: reason.into() }
}

type Parsed = (Option<HashMap<String, String>>, Vec<Entry>);

fn parse_header(header: &str) -> std::result::Result<Parsed, Fault> {
    let mut j = Json::new(header);
    let root = Path::Root;
    let (mut metadata, mut entries, mut seen) = (None, vec![], std::collections::HashSet::new());
    j.object(&root, |j, key| {
        let at = Path::Field(&root, key);
        // A JSON map keeps the last of two entries of a name; a first entry pointing at
        // another tensor's bytes would make two readers of the same file disagree.
        if !seen.insert(key.to_string()) {
            return Err(root.fault(format!("the header lists `{key}` twice")));
        }
        if key == "__metadata__" {
            if !j.null()? {
                let mut map = HashMap::new();
                j.object(&at, |j, k| {
                    map.insert(k.to_string(), j.string(&Path::Field(&at, k))?);
                    Ok(())
                })?;
                metadata = Some(map);
            }
        } else {
            entries.push(entry(j, &at, key)?);
        }
        Ok(())
    })?;
    j.end()?;
    Ok((metadata, entries))
}

/// `{"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}`; other fields are
/// skipped, as safetensors does.
fn entry(j: &mut Json, at: &Path, name: &str) -> std::result::Result<Entry, Fault> {
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    j.object(at, |j, key| {
        let at = Path::Field(at, key);
        match key {
            "dtype" => {
                let d = j.string(&at)?;
                let known = Dtype::ALL.into_iter().find(|t| t.name() == d);
                dtype = Some(known.ok_or_else(|| at.fault(format!("unknown dtype `{d}`")))?);
            }
            "shape" => {
                let mut dims = vec![];
                j.array(&at, |j, i| {
                    let d = j.integer(&Path::Index(&at, i), usize::MAX as u64)?;
                    dims.push(d as usize);
                    Ok(())
                })?;
                shape = Some(dims);
            }
            "data_offsets" => {
                let mut v = vec![];
                j.array(&at, |j, i| {
                    if i == 2 {
                        return Err(at.fault("more than two offsets"));
                    }
                    v.push(j.integer(&Path::Index(&at, i), u64::MAX)?);
                    Ok(())
                })?;
                let pair: [u64; 2] = v.try_into().map_err(|_| at.fault("fewer than two offsets"))?;
                offsets = Some(pair);
            }
            _ => j.skip()?,
        }
        Ok(())
    })?;
    let missing = |field: &str| at.fault(format!("missing field `{field}` of tensor `{name}`"));
    Ok(Entry {
        name: name.to_string(),
        dtype: dtype.ok_or_else(|| missing("dtype"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
        offsets: offsets.ok_or_else(|| missing("data_offsets"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{random_model, RandomSpec};

    fn file() -> Vec<u8> {
        let spec = RandomSpec { kind: crate::WeightKind::Dkp, cf: 4.0, hidden: 8, vocab: 20, ..RandomSpec::default() };
        random_model(&spec).unwrap().to_bytes().unwrap()
    }

    /// The file with its header replaced (padded to 8 bytes, as writers do).
    fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        edit(&mut header);
        let mut text = serde_json::to_vec(&header).unwrap();
        text.resize(text.len().next_multiple_of(8), b' ');
        [&(text.len() as u64).to_le_bytes()[..], &text, &bytes[8 + n..]].concat()
    }

    fn reason(bytes: &[u8]) -> String {
        match Container::read(bytes) {
            Err(Error::NotSafetensors { reason }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_what_the_safetensors_crate_reads() {
        let bytes = file();
        let ours = Container::read(&bytes).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let theirs = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(ours.metadata.as_ref(), meta.metadata().as_ref());
        assert_eq!(ours.names().count(), theirs.len());
        for (name, t) in theirs.tensors() {
            let o = ours.tensor(&name).unwrap();
            assert_eq!(
                (o.dtype.name(), &o.shape[..], o.data),
                (format!("{:?}", t.dtype()).as_str(), t.shape(), t.data())
            );
        }
    }

    #[test]
    fn offsets_must_tile_the_data() {
        let bytes = file();
        let shift = |h: &mut serde_json::Value, by: i64| {
            let o = &mut h["output.bias"]["data_offsets"];
            *o = serde_json::json!([o[0].as_i64().unwrap() + by, o[1].as_i64().unwrap() + by]);
        };
        // Overlapping the tensor before it.
        assert!(reason(&with_header(&bytes, |h| shift(h, -4))).contains("`output.bias` lies at bytes"));
        // Past the end: the file is cut short of where the header says it ends.
        assert!(matches!(Container::read(&with_header(&bytes, |h| shift(h, 1 << 20))), Err(Error::Truncated { .. })));
        // A shape that does not fill its bytes.
        let r = reason(&with_header(&bytes, |h| h["output.bias"]["shape"] = serde_json::json!([3])));
        assert!(r.contains("`output.bias` (F32 [3]) needs 12 bytes, its offsets give 80"), "{r}");
        let r = reason(&with_header(&bytes, |h| h["output.bias"]["shape"] = serde_json::json!([u64::MAX, 2])));
        assert!(r.contains("needs more than usize::MAX bytes"), "{r}");
        let mut tail = bytes.clone();
        tail.extend([0; 4]);
        assert!(reason(&tail).contains("4 bytes follow the last tensor"));
    }

    #[test]
    fn entries_are_typed() {
        let bytes = file();
        let r = reason(&with_header(&bytes, |h| h["output.bias"]["dtype"] = "F33".into()));
        assert_eq!(r, "header at `output.bias.dtype`: unknown dtype `F33`");
        let r = reason(&with_header(&bytes, |h| drop(h["output.bias"].as_object_mut().unwrap().remove("shape"))));
        assert_eq!(r, "header at `output.bias`: missing field `shape` of tensor `output.bias`");
        let r = reason(&with_header(&bytes, |h| h["output.bias"]["data_offsets"] = serde_json::json!([0, 1, 2])));
        assert_eq!(r, "header at `output.bias.data_offsets`: more than two offsets");
        let r = reason(&with_header(&bytes, |h| h["__metadata__"]["format_version"] = 1.into()));
        assert_eq!(r, "header at `__metadata__.format_version`: expected a string, found a number");
        // Fields safetensors does not know are skipped, as it does.
        let extra = with_header(&bytes, |h| h["output.bias"]["note"] = serde_json::json!({"a": [1, 2]}));
        assert!(Container::read(&extra).is_ok());
    }
}
