//! Checkpoints: one safetensors file per run holding the whole run state.
//!
//! Every tensor of the state is stored under its name, with a JSON description carrying
//! an integrity hash; the file is written by [`crate::fs::write_atomically`], so a run
//! killed while saving resumes from the previous checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{io_err, Error, Result};
use crate::fs::{write_atomically, Overwrite};

/// Bumped whenever the layout of a checkpoint changes.
pub const CHECKPOINT_VERSION: u32 = 1;
const META_KEY: &str = "dkp_train";

/// 64-bit FNV-1a of a byte stream, as 16 hex digits: the trainer's one integrity hash.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> String {
    let h = bytes.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}

/// FNV-1a over names and bytes, in name order.
fn hash(tensors: &BTreeMap<String, Vec<u8>>) -> String {
    fnv1a(tensors.iter().flat_map(|(name, bytes)| name.bytes().chain([0u8]).chain(bytes.iter().copied())))
}

/// Saves f32 tensors and a JSON description.
pub fn save(path: &Path, meta: &serde_json::Value, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut raw: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
    for (name, t) in tensors {
        let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
        raw.insert(name.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect());
        shapes.insert(name.clone(), t.dims().to_vec());
    }
    let mut meta = meta.clone();
    meta["hash"] = serde_json::Value::String(hash(&raw));
    let views: Vec<(String, TensorView)> = raw
        .iter()
        .map(|(n, b)| {
            (n.clone(), TensorView::new(Dtype::F32, shapes[n].clone(), b).expect("sizes match by construction"))
        })
        .collect();
    let metadata = HashMap::from([(META_KEY.to_string(), meta.to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Checkpoint { path: path.into(), reason: e.to_string() })?;
    write_atomically(path, Overwrite::Replace, &bytes)
}

/// Loads a checkpoint written by [`save`], verifying its hash.
pub fn load(path: &Path, dev: &Device) -> Result<(serde_json::Value, BTreeMap<String, Tensor>)> {
    let bad = |reason: String| Error::Checkpoint { path: path.into(), reason };
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a readable checkpoint ({e})")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a readable checkpoint ({e})")))?;
    let meta_text = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| bad("no dkp-train description (not a trainer checkpoint)".into()))?;
    let meta: serde_json::Value = serde_json::from_str(meta_text).map_err(|e| bad(format!("bad description: {e}")))?;
    if meta["version"].as_u64() != Some(CHECKPOINT_VERSION as u64) {
        return Err(bad(format!(
            "written by checkpoint version {}, this trainer reads {CHECKPOINT_VERSION}",
            meta["version"]
        )));
    }
    let mut raw = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is not f32")));
        }
        let data: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        tensors.insert(name.clone(), Tensor::from_vec(data, view.shape(), dev)?);
        raw.insert(name, view.data().to_vec());
    }
    if meta["hash"].as_str() != Some(hash(&raw).as_str()) {
        return Err(bad("contents do not match their hash (the file is corrupt)".into()));
    }
    Ok((meta, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let t = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let meta = serde_json::json!({"version": CHECKPOINT_VERSION, "x": 5});
        save(&path, &meta, &[("a".into(), t)]).unwrap();
        let (m, ts) = load(&path, &Device::Cpu).unwrap();
        assert_eq!(m["x"], 5);
        assert_eq!(ts["a"].to_vec2::<f32>().unwrap(), [[1.0, 2.0], [3.0, 4.0]]);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let e = load(&path, &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
        std::fs::write(&path, &bytes[..n / 2]).unwrap();
        assert!(matches!(load(&path, &Device::Cpu), Err(Error::Checkpoint { .. })));
    }
}
