//! Unicode lowercasing for the word tokenizer: what `str::to_lowercase` does, from a
//! table of runs 8x smaller than the standard library's.
//!
//! Written out for the WebAssembly module's size (docs/benchmarks.md, "Where 71 KB went"):
//! `str::to_lowercase` carries a string-slicing panic whose message prints a `char` with
//! `Debug`, which brings Unicode's printable tables along, and `char::to_lowercase` reads
//! a table of 1 400 code point pairs (12 KB); the 185 runs below hold the same mapping in
//! 1.5 KB. A test derives the runs from the standard library again and prints them if
//! they differ (a toolchain with a newer Unicode), and compares every code point.

/// `word` lowercased as `str::to_lowercase` does it: each character by its Unicode
/// mapping, and a capital sigma as final ς where it ends a word (Unicode's Final_Sigma:
/// a cased letter before it and none after it, either side skipping case-ignorable
/// characters).
pub(super) fn lowercase(word: &str) -> String {
    /// Whether the first character of `it` that is not case-ignorable is cased.
    fn cased_next(it: impl Iterator<Item = char>) -> bool {
        let mut it = it.skip_while(|&c| case_ignorable(c));
        // Cased: lowercase, uppercase or titlecase (Lt: the Latin digraphs and the Greek
        // capitals with prosgegrammeni).
        it.next().is_some_and(|c| {
            c.is_lowercase()
                || c.is_uppercase()
                || matches!(c, 'ǅ' | 'ǈ' | 'ǋ' | 'ǲ' | 'ᾈ'..='ᾏ' | 'ᾘ'..='ᾟ' | 'ᾨ'..='ᾯ' | 'ᾼ' | 'ῌ' | 'ῼ')
        })
    }
    let mut out = String::with_capacity(word.len());
    for (i, c) in word.char_indices() {
        match c {
            'Σ' => {
                // `get`, not indexing: `i` is a char boundary, and indexing's panic path is
                // what this function avoids.
                let (before, after) = (word.get(..i).unwrap_or(""), word.get(i + c.len_utf8()..).unwrap_or(""));
                let last = cased_next(before.chars().rev()) && !cased_next(after.chars());
                out.push(if last { 'ς' } else { 'σ' });
            }
            // The one character whose lowercase is two: i with a combining dot above.
            'İ' => out.push_str("i\u{307}"),
            c => out.push(lower_char(c)),
        }
    }
    out
}

/// One character's lowercase by [`RUNS`] (any character but `İ`).
fn lower_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let i = RUNS.partition_point(|&(packed, _)| packed & FIRST <= c as u32);
    let Some(&(packed, delta)) = i.checked_sub(1).and_then(|i| RUNS.get(i)) else { return c };
    let (k, len, step) = (c as u32 - (packed & FIRST), packed >> 21 & 0x3ff, 1 + (packed >> 31));
    if k % step != 0 || k / step >= len {
        return c;
    }
    char::from_u32((c as u32).wrapping_add_signed(delta)).unwrap_or(c)
}

/// Unicode's Case_Ignorable characters of the Latin, Greek and Cyrillic blocks, the
/// combining blocks and general punctuation: those that stand next to a sigma in real
/// words. Other scripts' marks (Hebrew, Arabic, Indic…), which the standard library also
/// skips, are not listed: they matter only between a Greek letter and a sigma.
fn case_ignorable(c: char) -> bool {
    matches!(c,
        '\'' | '.' | ':' | '^' | '`' | '¨' | '\u{ad}' | '¯' | '´' | '·' | '¸'
        | '\u{2b0}'..='\u{36f}' | '\u{374}'..='\u{375}' | '\u{37a}' | '\u{384}'..='\u{385}' | '\u{387}'
        | '\u{483}'..='\u{489}' | '\u{1ab0}'..='\u{1add}' | '\u{1ae0}'..='\u{1aeb}' | '\u{1dc0}'..='\u{1dff}'
        | '\u{1fbd}' | '\u{1fbf}'..='\u{1fc1}' | '\u{1fcd}'..='\u{1fcf}' | '\u{1fdd}'..='\u{1fdf}' | '\u{1fed}'..='\u{1fef}' | '\u{1ffd}'..='\u{1ffe}'
        | '\u{200b}'..='\u{200f}' | '\u{2018}'..='\u{2019}' | '\u{2024}' | '\u{2027}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{20d0}'..='\u{20f0}' | '\u{fe00}'..='\u{fe0f}' | '\u{fe13}' | '\u{fe20}'..='\u{fe2f}' | '\u{feff}')
}

/// The bits of a packed run that hold its first code point.
const FIRST: u32 = 0x1f_ffff;

/// A run of `len` code points from `first`, `step` (1 or 2) apart, each lowercased by
/// adding `delta`, packed as `(first | len << 21 | (step − 1) << 31, delta)`.
const fn r(first: u32, len: u32, step: u32, delta: i32) -> (u32, i32) {
    (first | len << 21 | (step - 1) << 31, delta)
}

/// Every character whose lowercase is one other character, as runs in code point order
/// (printed by the test `runs_are_the_standard_librarys` when they need renewing).
#[rustfmt::skip]
const RUNS: [(u32, i32); 185] = [
    r(0x0041, 26, 1, 32), r(0x00c0, 23, 1, 32), r(0x00d8, 7, 1, 32), r(0x0100, 24, 2, 1), r(0x0132, 3, 2, 1),
    r(0x0139, 8, 2, 1), r(0x014a, 23, 2, 1), r(0x0178, 1, 1, -121), r(0x0179, 3, 2, 1), r(0x0181, 1, 1, 210),
    r(0x0182, 2, 2, 1), r(0x0186, 1, 1, 206), r(0x0187, 1, 1, 1), r(0x0189, 2, 1, 205), r(0x018b, 1, 1, 1),
    r(0x018e, 1, 1, 79), r(0x018f, 1, 1, 202), r(0x0190, 1, 1, 203), r(0x0191, 1, 1, 1), r(0x0193, 1, 1, 205),
    r(0x0194, 1, 1, 207), r(0x0196, 1, 1, 211), r(0x0197, 1, 1, 209), r(0x0198, 1, 1, 1), r(0x019c, 1, 1, 211),
    r(0x019d, 1, 1, 213), r(0x019f, 1, 1, 214), r(0x01a0, 3, 2, 1), r(0x01a6, 1, 1, 218), r(0x01a7, 1, 1, 1),
    r(0x01a9, 1, 1, 218), r(0x01ac, 1, 1, 1), r(0x01ae, 1, 1, 218), r(0x01af, 1, 1, 1), r(0x01b1, 2, 1, 217),
    r(0x01b3, 2, 2, 1), r(0x01b7, 1, 1, 219), r(0x01b8, 1, 1, 1), r(0x01bc, 1, 1, 1), r(0x01c4, 1, 1, 2),
    r(0x01c5, 1, 1, 1), r(0x01c7, 1, 1, 2), r(0x01c8, 1, 1, 1), r(0x01ca, 1, 1, 2), r(0x01cb, 9, 2, 1),
    r(0x01de, 9, 2, 1), r(0x01f1, 1, 1, 2), r(0x01f2, 2, 2, 1), r(0x01f6, 1, 1, -97), r(0x01f7, 1, 1, -56),
    r(0x01f8, 20, 2, 1), r(0x0220, 1, 1, -130), r(0x0222, 9, 2, 1), r(0x023a, 1, 1, 10795), r(0x023b, 1, 1, 1),
    r(0x023d, 1, 1, -163), r(0x023e, 1, 1, 10792), r(0x0241, 1, 1, 1), r(0x0243, 1, 1, -195), r(0x0244, 1, 1, 69),
    r(0x0245, 1, 1, 71), r(0x0246, 5, 2, 1), r(0x0370, 2, 2, 1), r(0x0376, 1, 1, 1), r(0x037f, 1, 1, 116),
    r(0x0386, 1, 1, 38), r(0x0388, 3, 1, 37), r(0x038c, 1, 1, 64), r(0x038e, 2, 1, 63), r(0x0391, 17, 1, 32),
    r(0x03a3, 9, 1, 32), r(0x03cf, 1, 1, 8), r(0x03d8, 12, 2, 1), r(0x03f4, 1, 1, -60), r(0x03f7, 1, 1, 1),
    r(0x03f9, 1, 1, -7), r(0x03fa, 1, 1, 1), r(0x03fd, 3, 1, -130), r(0x0400, 16, 1, 80), r(0x0410, 32, 1, 32),
    r(0x0460, 17, 2, 1), r(0x048a, 27, 2, 1), r(0x04c0, 1, 1, 15), r(0x04c1, 7, 2, 1), r(0x04d0, 48, 2, 1),
    r(0x0531, 38, 1, 48), r(0x10a0, 38, 1, 7264), r(0x10c7, 1, 1, 7264), r(0x10cd, 1, 1, 7264), r(0x13a0, 80, 1, 38864),
    r(0x13f0, 6, 1, 8), r(0x1c89, 1, 1, 1), r(0x1c90, 43, 1, -3008), r(0x1cbd, 3, 1, -3008), r(0x1e00, 75, 2, 1),
    r(0x1e9e, 1, 1, -7615), r(0x1ea0, 48, 2, 1), r(0x1f08, 8, 1, -8), r(0x1f18, 6, 1, -8), r(0x1f28, 8, 1, -8),
    r(0x1f38, 8, 1, -8), r(0x1f48, 6, 1, -8), r(0x1f59, 4, 2, -8), r(0x1f68, 8, 1, -8), r(0x1f88, 8, 1, -8),
    r(0x1f98, 8, 1, -8), r(0x1fa8, 8, 1, -8), r(0x1fb8, 2, 1, -8), r(0x1fba, 2, 1, -74), r(0x1fbc, 1, 1, -9),
    r(0x1fc8, 4, 1, -86), r(0x1fcc, 1, 1, -9), r(0x1fd8, 2, 1, -8), r(0x1fda, 2, 1, -100), r(0x1fe8, 2, 1, -8),
    r(0x1fea, 2, 1, -112), r(0x1fec, 1, 1, -7), r(0x1ff8, 2, 1, -128), r(0x1ffa, 2, 1, -126), r(0x1ffc, 1, 1, -9),
    r(0x2126, 1, 1, -7517), r(0x212a, 1, 1, -8383), r(0x212b, 1, 1, -8262), r(0x2132, 1, 1, 28), r(0x2160, 16, 1, 16),
    r(0x2183, 1, 1, 1), r(0x24b6, 26, 1, 26), r(0x2c00, 48, 1, 48), r(0x2c60, 1, 1, 1), r(0x2c62, 1, 1, -10743),
    r(0x2c63, 1, 1, -3814), r(0x2c64, 1, 1, -10727), r(0x2c67, 3, 2, 1), r(0x2c6d, 1, 1, -10780), r(0x2c6e, 1, 1, -10749),
    r(0x2c6f, 1, 1, -10783), r(0x2c70, 1, 1, -10782), r(0x2c72, 1, 1, 1), r(0x2c75, 1, 1, 1), r(0x2c7e, 2, 1, -10815),
    r(0x2c80, 50, 2, 1), r(0x2ceb, 2, 2, 1), r(0x2cf2, 1, 1, 1), r(0xa640, 23, 2, 1), r(0xa680, 14, 2, 1),
    r(0xa722, 7, 2, 1), r(0xa732, 31, 2, 1), r(0xa779, 2, 2, 1), r(0xa77d, 1, 1, -35332), r(0xa77e, 5, 2, 1),
    r(0xa78b, 1, 1, 1), r(0xa78d, 1, 1, -42280), r(0xa790, 2, 2, 1), r(0xa796, 10, 2, 1), r(0xa7aa, 1, 1, -42308),
    r(0xa7ab, 1, 1, -42319), r(0xa7ac, 1, 1, -42315), r(0xa7ad, 1, 1, -42305), r(0xa7ae, 1, 1, -42308), r(0xa7b0, 1, 1, -42258),
    r(0xa7b1, 1, 1, -42282), r(0xa7b2, 1, 1, -42261), r(0xa7b3, 1, 1, 928), r(0xa7b4, 8, 2, 1), r(0xa7c4, 1, 1, -48),
    r(0xa7c5, 1, 1, -42307), r(0xa7c6, 1, 1, -35384), r(0xa7c7, 2, 2, 1), r(0xa7cb, 1, 1, -42343), r(0xa7cc, 8, 2, 1),
    r(0xa7dc, 1, 1, -42561), r(0xa7f5, 1, 1, 1), r(0xff21, 26, 1, 32), r(0x10400, 40, 1, 40), r(0x104b0, 36, 1, 40),
    r(0x10570, 11, 1, 39), r(0x1057c, 15, 1, 39), r(0x1058c, 7, 1, 39), r(0x10594, 2, 1, 39), r(0x10c80, 51, 1, 64),
    r(0x10d50, 22, 1, 32), r(0x118a0, 32, 1, 32), r(0x16e40, 32, 1, 32), r(0x16ea0, 25, 1, 27), r(0x1e900, 34, 1, 34),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `lowercase` against the standard library's `str::to_lowercase`, which it stands in
    /// for: every character alone and after a capital letter; and the final-sigma rule
    /// with every character of the Latin, Greek and Cyrillic blocks, the combining blocks
    /// and general punctuation beside the sigma (other scripts' marks between a Greek
    /// letter and a sigma are where the two may differ: `case_ignorable`).
    #[test]
    fn lowercase_is_str_to_lowercase() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            for w in [c.to_string(), format!("A{c}")] {
                assert_eq!(lowercase(&w), w.to_lowercase(), "{w:?}");
            }
            if matches!(c as u32, 0..=0x52f | 0x1ab0..=0x1aff | 0x1dc0..=0x206f | 0x20d0..=0x20ff | 0xfe00..=0xfe2f | 0xfeff)
            {
                for w in [format!("{c}Σ"), format!("ΑΣ{c}Α"), format!("Α{c}Σ")] {
                    assert_eq!(lowercase(&w), w.to_lowercase(), "{w:?}");
                }
            }
        }
        for w in [
            "ΟΔΥΣΣΕΥΣ",
            "ΣΑΣ",
            "Σ",
            "ΑΣ.",
            "ΑΣ'Α",
            "Α'Σ",
            "ΑΣ\u{301}",
            "Α\u{301}Σ",
            "1Σ",
            "ΑΣ1",
            "ᾼΣ",
            "Émile",
            "İSTANBUL",
        ] {
            assert_eq!(lowercase(w), w.to_lowercase(), "{w:?}");
        }
    }

    /// [`RUNS`] as the standard library's mapping makes them: each character whose
    /// lowercase is one other character, joined into a run with the one before when it
    /// follows at the same distance with the same offset. On a mismatch, prints the table.
    #[test]
    fn runs_are_the_standard_librarys() {
        let mut runs: Vec<(u32, u32, u32, i32)> = vec![];
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let mut lower = c.to_lowercase();
            let (Some(l), None) = (lower.next(), lower.next()) else { continue };
            if l == c {
                continue;
            }
            let (c, delta) = (c as u32, l as i32 - c as i32);
            match runs.last_mut() {
                Some((first, len, step, d))
                    if *d == delta && (*len == 1 && c - *first <= 2 || c == *first + *len * *step) =>
                {
                    *step = (c - *first) / *len;
                    *len += 1;
                }
                _ => runs.push((c, 1, 1, delta)),
            }
        }
        let want: Vec<(u32, i32)> = runs.iter().map(|&(f, n, s, d)| r(f, n, s, d)).collect();
        if want != RUNS {
            let rows: Vec<String> = runs.iter().map(|(f, n, s, d)| format!("r(0x{f:04x}, {n}, {s}, {d})")).collect();
            let rows: Vec<String> = rows.chunks(5).map(|c| format!("    {},", c.join(", "))).collect();
            panic!("RUNS differs from this toolchain's Unicode; {} runs:\n{}", runs.len(), rows.join("\n"));
        }
        // What the packing can hold.
        assert!(runs.iter().all(|&(f, n, s, _)| f <= FIRST && n < 1024 && (1..=2).contains(&s)));
    }
}
