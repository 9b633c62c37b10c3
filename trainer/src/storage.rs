//! Zero-copy f32 views of candle's CPU tensors and storages, for the custom ops.

use candle_core::{CpuStorage, Layout, Storage, Tensor};

/// The values of a contiguous f32 storage under `l`; `what` names the operand in the error.
pub fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{what} must be contiguous")))?;
    match s {
        CpuStorage::F32(d) => Ok(&d[a..b]),
        _ => Err(candle_core::Error::Msg(format!("{what} must be f32"))),
    }
}

/// Runs `f` on the values of a contiguous f32 tensor, without copying them.
pub fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let (a, b) =
        layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("tensor must be contiguous".into()))?;
    match &*storage {
        Storage::Cpu(CpuStorage::F32(d)) => Ok(f(&d[a..b])),
        _ => Err(candle_core::Error::Msg("tensor must be f32 on the CPU".into())),
    }
}
