//! Symmetric 4-bit storage (one scale per row, value = scale · q / 7, two values a byte) for values widened to f32 when read.
//!
//! The file format's `I4` dtype (`docs/format.md`): half the bytes of `I8` for the values
//! of a weight, at the cost of precision, so it suits the compressed kinds, whose values
//! are few and are widened to f32 when read anyway. Fifteen levels are coarse, so the
//! writer does not take a row's largest magnitude as its scale, which would spend levels
//! on one outlier: it tries that magnitude times 1.00, 0.99, …, 0.40 and keeps the first
//! with the least squared error, clipping the values beyond it to ±7 (on the doped whole
//! model of `docs/results.md` this takes test perplexity from 118.3 to 117.6 against
//! the largest magnitude). Every non-zero row then reaches ±7, so its dequantised largest
//! magnitude is its scale, which the search tries first and which reproduces the row
//! exactly: requantising dequantised values gives the same integers and scales, and a
//! model read from an `I4` file writes the same file again.

use super::int8::{f16_normal, Quantised};
use super::normal_or_zero;

/// The largest magnitude of an `I4` integer: the range is `−7..=7`.
pub const Q4_MAX: i8 = 7;

/// Fractions of a row's largest magnitude that [`quantise4`] tries as its scale, first to last.
const SCALE_STEPS: std::ops::RangeInclusive<u32> = 40..=100;

/// A value's fraction of its row's scale: `q / 7`, rounded to f32.
#[inline]
fn level4(q: i8) -> f32 {
    q as f32 / Q4_MAX as f32
}

/// The integers of `row` on the grid of `scale` (> 0), clipped to `−7..=7`.
fn grid(row: &[f32], scale: f32) -> impl Iterator<Item = i8> + '_ {
    // `v / s · 7` rather than `v · (7 / s)`, as for int8: dequantised values land within a
    // few ulp of their integer.
    row.iter().map(move |&v| (v / scale * Q4_MAX as f32).round().clamp(-7.0, 7.0) as i8)
}

/// Squared error of `row` stored on the grid of `scale`.
fn error(row: &[f32], scale: f32) -> f64 {
    row.iter().zip(grid(row, scale)).map(|(&v, q)| (v as f64 - (scale * level4(q)) as f64).powi(2)).sum()
}

/// Quantises `values` row by row to `−7..=7` (`bounds` as in [`Quantised`]), on the row
/// scales of [`scales4`].
pub fn quantise4(values: &[f32], bounds: &[usize]) -> Quantised {
    let rows = bounds.windows(2).map(|b| &values[b[0]..b[1]]);
    let scale = scales4(values, bounds);
    let mut q = Vec::with_capacity(values.len());
    for (row, &s) in rows.zip(&scale) {
        if s > 0.0 {
            q.extend(grid(row, s));
        } else {
            q.extend(row.iter().map(|_| 0));
        }
    }
    Quantised { q, scale }
}

/// The row scales [`quantise4`] stores: each row's chosen for the least squared error
/// (module docs), rounded to f16 when every one is 0 or a normal f16, as for int8. Apart
/// from `quantise4` so that a file's bytes can be counted without quantising.
pub fn scales4(values: &[f32], bounds: &[usize]) -> Vec<f32> {
    let rows = bounds.windows(2).map(|b| &values[b[0]..b[1]]);
    let mut scale: Vec<f32> = rows
        .map(|row| {
            let top = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if top == 0.0 {
                return 0.0;
            }
            let mut best = (f64::INFINITY, top);
            for step in SCALE_STEPS.rev() {
                let s = top * (step as f32 / 100.0);
                let e = error(row, s);
                if e < best.0 {
                    best = (e, s);
                }
            }
            best.1
        })
        .collect();
    if scale.iter().all(|&m| f16_normal(m)) {
        scale.iter_mut().for_each(|m| *m = half::f16::from_f32(*m).to_f32());
    }
    scale
}

/// The values of 4-bit rows.
pub fn dequantise4(q: &[i8], scale: &[f32], bounds: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(q.len());
    for (b, &s) in bounds.windows(2).zip(scale) {
        out.extend(q[b[0]..b[1]].iter().map(|&q| normal_or_zero(s * level4(q))));
    }
    out
}

/// Two integers a byte, the first in the low nibble (two's complement); an odd count
/// leaves the last byte's high nibble 0.
pub fn pack4(q: &[i8]) -> Vec<u8> {
    q.chunks(2).map(|p| (p[0] as u8 & 0xf) | (p.get(1).map_or(0, |&h| h as u8 & 0xf) << 4)).collect()
}

/// The `n` integers of `bytes` (`n.div_ceil(2)` of them, which the caller checked), or
/// the position of the first bad one and why: −8 lies outside the symmetric range, and
/// the unused high nibble of an odd count must be 0 (its position is then `n`).
pub fn unpack4(bytes: &[u8], n: usize) -> Result<Vec<i8>, (usize, &'static str)> {
    let mut q = Vec::with_capacity(n);
    for (i, &b) in bytes.iter().enumerate() {
        for (j, nibble) in [b & 0xf, b >> 4].into_iter().enumerate() {
            let at = 2 * i + j;
            if at == n {
                return if nibble == 0 { Ok(q) } else { Err((n, "the unused high nibble of the last byte must be 0")) };
            }
            if nibble == 8 {
                return Err((at, "-8 is outside the symmetric range -7..=7"));
            }
            // Sign-extend the nibble.
            q.push(((nibble << 4) as i8) >> 4);
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::super::int8::tests::rows;
    use super::*;
    use crate::matrix::fits_f16;
    use crate::sample::Rng;

    #[test]
    fn quantisation_is_idempotent_and_reaches_the_ends_of_the_range() {
        let mut rng = Rng::new(4);
        for (scale, f16) in [(1.0, true), (1e-5, false), (1e7, false)] {
            let (values, bounds) = rows(&mut rng, scale, true);
            let first = quantise4(&values, &bounds);
            assert_eq!(fits_f16(&first.scale), f16, "scale {scale}");
            let back = dequantise4(&first.q, &first.scale, &bounds);
            assert_eq!(quantise4(&back, &bounds), first, "scale {scale}: requantising changed the integers or scales");
            for (r, (b, &s)) in bounds.windows(2).zip(&first.scale).enumerate() {
                let row = &first.q[b[0]..b[1]];
                assert!(row.iter().all(|q| q.abs() <= Q4_MAX));
                let top = values[b[0]..b[1]].iter().fold(0.0f32, |m, v| m.max(v.abs()));
                if top > 0.0 {
                    assert!(row.iter().any(|q| q.abs() == Q4_MAX), "row {r} reaches ±7");
                    assert!(s <= top * 1.001 && s >= top * 0.399, "row {r}: scale {s} for largest magnitude {top}");
                }
                // Nothing worse than the largest magnitude as the scale would give.
                let plain: f64 = error(&values[b[0]..b[1]], top.max(f32::MIN_POSITIVE));
                let chosen: f64 = values[b[0]..b[1]]
                    .iter()
                    .zip(&back[b[0]..b[1]])
                    .map(|(&v, &d)| (v as f64 - d as f64).powi(2))
                    .sum();
                // (The chosen scale is rounded to f16 after the search: allow for that.)
                let rounding = (b[1] - b[0]) as f64 * (top as f64 * 1e-3).powi(2);
                assert!(chosen <= plain + rounding, "row {r}: {chosen} against {plain}");
            }
        }
    }

    #[test]
    fn an_outlier_gets_clipped_rather_than_coarsening_its_row() {
        // Six hundred values spread over −1..1 and one at 3.
        let mut row: Vec<f32> = (0..600).map(|i| ((i * 37) % 21) as f32 / 10.0 - 1.0).collect();
        row.push(3.0);
        let q = quantise4(&row, &[0, row.len()]);
        assert!(q.scale[0] < 3.0, "scale {}", q.scale[0]);
        assert_eq!(q.q[600], 7);
        let plain = error(&row, 3.0);
        let chosen = error(&row, q.scale[0]);
        assert!(chosen < plain * 0.6, "{chosen} against {plain}");
    }

    #[test]
    fn packing_round_trips_and_rejects_what_is_not_a_value() {
        let q: Vec<i8> = (-7..=7).collect();
        for n in [0, 1, 2, 14, 15] {
            let bytes = pack4(&q[..n]);
            assert_eq!(bytes.len(), n.div_ceil(2));
            assert_eq!(unpack4(&bytes, n), Ok(q[..n].to_vec()));
        }
        assert_eq!(pack4(&[1, -1, -7]), [0xf1, 0x09]);
        assert_eq!(unpack4(&[0x81], 2), Err((1, "-8 is outside the symmetric range -7..=7")));
        assert_eq!(unpack4(&[0x11, 0x31], 3), Err((3, "the unused high nibble of the last byte must be 0")));
        assert_eq!(unpack4(&[0x11, 0x08], 3), Err((2, "-8 is outside the symmetric range -7..=7")));
    }
}
