//! A model's provenance: free-form JSON (method, data, perplexities), kept as its text.
//!
//! The runtime never looks inside it, so a loaded model keeps the object's text as the
//! reader checked it (syntax, nesting, a budget of values, numbers a 64-bit float holds)
//! rather than a value tree: that tree and the float parser behind it were 28 KB of the
//! WebAssembly module (docs/benchmarks.md). JavaScript reads the text with `JSON.parse`;
//! native tools turn it into a `serde_json` map, edit it and put it back.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The text of a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    json: String,
}

impl Default for Provenance {
    /// No entries: `{}`.
    fn default() -> Provenance {
        Provenance { json: "{}".into() }
    }
}

impl Provenance {
    /// Text that `format::json::Json::raw_value` accepted as an object.
    pub(crate) fn from_checked(json: &str) -> Provenance {
        Provenance { json: json.into() }
    }

    /// The entries of `map`.
    pub fn from_map(map: Map<String, Value>) -> Provenance {
        // `Value`'s `Display` is its compact JSON, and cannot fail.
        Provenance { json: Value::Object(map).to_string() }
    }

    /// The object's JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The entries, to read or edit. An error only for text the reader accepted and
    /// serde_json does not, which the reader's tests rule out.
    pub fn to_map(&self) -> Result<Map<String, Value>> {
        serde_json::from_str(&self.json).map_err(|e| Error::BadMetadata { reason: format!("provenance: {e}") })
    }
}

impl Serialize for Provenance {
    /// As the object itself (the file writer and `dkp info --json`).
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_map().map_err(serde::ser::Error::custom)?.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_map_goes_through_its_text_and_back() {
        let Value::Object(map) = json!({"trained": true, "test_ppl": 99.64, "cf": {"lstm": [25, 12.5]}, "n": null})
        else {
            unreachable!()
        };
        let p = Provenance::from_map(map.clone());
        assert_eq!(p.to_map().unwrap(), map);
        assert_eq!(serde_json::to_value(&p).unwrap(), Value::Object(map), "serialised as the object itself");
        assert_eq!(Provenance::default().json(), "{}");
        assert!(Provenance::default().to_map().unwrap().is_empty());
    }

    #[test]
    fn checked_text_is_kept_as_written() {
        let text = "{ \"b\": 1e3,\n \"a\": [1, 2] }";
        let p = Provenance::from_checked(text);
        assert_eq!(p.json(), text);
        assert_eq!(p.to_map().unwrap()["b"], json!(1000.0));
    }
}
