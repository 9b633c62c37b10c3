//! Readers of untrusted config JSON that bound what they build: sizes, the vocabulary, the provenance.

use serde::Deserialize;

/// Largest vocabulary a file may hold (the largest word vocabularies in use have a few
/// hundred thousand entries).
pub const MAX_VOCAB: usize = 1 << 20;

pub(super) fn capped_tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Tokens;
    impl<'de> serde::de::Visitor<'de> for Tokens {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {MAX_VOCAB} strings")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut tokens = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(t) = seq.next_element()? {
                if tokens.len() == MAX_VOCAB {
                    return Err(serde::de::Error::custom(format!("more than {MAX_VOCAB} tokens")));
                }
                tokens.push(t);
            }
            Ok(tokens)
        }
    }
    d.deserialize_seq(Tokens)
}

/// Most JSON values (objects, arrays, strings, numbers, …) the provenance may hold. It
/// is free-form, read into `serde_json` values whose objects cost a B-tree node of
/// ~630 bytes from as little as 7 bytes of JSON; this bound keeps that under 1 MB
/// (the trainer writes about 80 values).
pub const MAX_PROVENANCE_VALUES: usize = 1024;

pub(super) fn bounded_provenance<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
    use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;

    /// Builds a value, counting every value it holds against one budget.
    struct Budget<'a>(&'a std::cell::Cell<usize>);
    impl Budget<'_> {
        fn take<E: Error>(&self) -> Result<(), E> {
            match self.0.get().checked_sub(1) {
                Some(left) => {
                    self.0.set(left);
                    Ok(())
                }
                None => Err(E::custom(format!("holds more than {MAX_PROVENANCE_VALUES} values"))),
            }
        }
    }
    impl<'de> DeserializeSeed<'de> for Budget<'_> {
        type Value = Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Budget<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E: Error>(self, v: bool) -> Result<Value, E> {
            self.take().map(|_| Value::Bool(v))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Value, E> {
            self.take().map(|_| Value::from(v))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Value, E> {
            self.take().map(|_| Value::from(v))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
            self.take().map(|_| Value::from(v))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
            self.take().map(|_| Value::from(v))
        }
        fn visit_unit<E: Error>(self) -> Result<Value, E> {
            self.take().map(|_| Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            self.take()?;
            let mut v = vec![];
            while let Some(x) = seq.next_element_seed(Budget(self.0))? {
                v.push(x);
            }
            Ok(Value::Array(v))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            self.take()?;
            let mut m = serde_json::Map::new();
            while let Some(k) = map.next_key::<String>()? {
                let v = map.next_value_seed(Budget(self.0))?;
                m.insert(k, v);
            }
            Ok(Value::Object(m))
        }
    }
    let budget = std::cell::Cell::new(MAX_PROVENANCE_VALUES);
    match Budget(&budget).deserialize(d)? {
        Value::Object(m) => Ok(m),
        _ => Err(D::Error::custom("expected an object")),
    }
}

/// Largest size (side, rank, count) a config may give: sizes are read as u64 and must
/// fit 32 bits on every platform. A number that only a 64-bit `usize` holds would
/// otherwise be a parse error in WebAssembly but a range error natively; the same file
/// gives the same message everywhere.
pub const MAX_SIZE: u64 = u32::MAX as u64;

fn checked<E: serde::de::Error>(v: u64) -> Result<usize, E> {
    match usize::try_from(v) {
        Ok(n) if v <= MAX_SIZE => Ok(n),
        _ => Err(E::custom(format!("{v} exceeds {MAX_SIZE}, the largest size a model file may give"))),
    }
}

pub(super) fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    checked(u64::deserialize(d)?)
}

pub(super) fn opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    Option::<u64>::deserialize(d)?.map(checked).transpose()
}

pub(super) fn opt_shape<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<[usize; 2]>, D::Error> {
    Option::<[u64; 2]>::deserialize(d)?.map(|[m, n]| Ok([checked(m)?, checked(n)?])).transpose()
}
