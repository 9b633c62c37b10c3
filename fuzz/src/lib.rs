//! dkp-fuzz: a structure-aware fuzz driver of `dkp_lstm::Model::from_bytes` on the stable toolchain.
//!
//! Seeds are small valid files of every weight kind ([`seeds`]); each case takes one
//! apart ([`doc`]), applies a seeded list of [`mutate::Mutation`]s and reads the result
//! ([`case`]) under `catch_unwind` and a counting allocator ([`alloc`]). A case is
//! named by (run seed, case number) alone, so any finding replays; its mutation list
//! prints, which is how findings become regression tests (`tests/regressions.rs`).
//! The driver is `src/main.rs` (`fuzz-reader`), run by `scripts/fuzz.sh`; see
//! `docs/fuzzing.md`.

pub mod alloc;
pub mod case;
pub mod doc;
pub mod mutate;
pub mod rng;
pub mod seeds;

pub use alloc::Counting;
pub use case::{bound, run, Report};
pub use mutate::{generate, mutant, Mutation};
pub use rng::Rng;
pub use seeds::{seeds, Seed};

/// The mutations and file of case `case` of run `seed`, over `corpus`.
pub fn case(corpus: &[Seed], seed: u64, case: u64) -> (usize, Vec<Mutation>, Vec<u8>) {
    let mut rng = Rng::for_case(seed, case);
    let s = rng.below(corpus.len());
    let mutations = generate(&corpus[s], &mut rng);
    let bytes = mutant(&corpus[s], &mutations);
    (s, mutations, bytes)
}

/// The key under which a case's finding is counted: [`Report::finding`], and for an
/// allocation beyond the bound also the large structures the recipe built (its
/// amplifiers), which say where the reader spends the memory.
pub fn finding_key(report: &Report, mutations: &[Mutation]) -> Option<String> {
    let key = report.finding()?;
    if report.within_bound() {
        return Some(key);
    }
    let via: Vec<String> = mutations.iter().filter_map(mutate::amplifier_name).collect();
    let via = if via.is_empty() { "no amplifier".into() } else { via.join(" + ") };
    Some(format!("{key} via {via}"))
}

/// Drops mutations from a finding's list while the same finding remains, so that its
/// recipe (and its regression test) holds only what matters.
pub fn minimize(seed: &Seed, mutations: &[Mutation], check_accepted: bool) -> Vec<Mutation> {
    let key = finding_key(&run(&mutant(seed, mutations), check_accepted), mutations);
    let mut kept = mutations.to_vec();
    let mut i = 0;
    while i < kept.len() && kept.len() > 1 {
        let mut fewer = kept.clone();
        fewer.remove(i);
        if finding_key(&run(&mutant(seed, &fewer), check_accepted), &fewer) == key {
            kept = fewer;
        } else {
            i += 1;
        }
    }
    kept
}
