//! The fuzz driver in CI: every seed is valid and within the allocation bound, the
//! file rebuilt from its pieces is the same file, and a short seeded run finds nothing.

use dkp_fuzz::alloc::counting_is_installed;
use dkp_fuzz::case::install_panic_hook;
use dkp_fuzz::{bound, case, run, seeds, Counting};
use dkp_lstm::Model;

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn seeds_cover_every_kind_and_load_within_the_bound() {
    assert!(counting_is_installed());
    let corpus = seeds();
    for kind in dkp_lstm::WeightKind::ALL.map(|k| k.name()) {
        assert!(corpus.iter().any(|s| s.name.starts_with(kind)), "no seed with {kind} gates");
        assert!(corpus.iter().any(|s| s.name.contains(&format!("out_{kind}-"))), "no seed with a {kind} output");
    }
    for part in ["fused", "split", "emb_tied", "f16", "f32", "word", "char"] {
        assert!(corpus.iter().any(|s| s.name.contains(part)), "no seed with {part}");
    }
    for s in &corpus {
        let r = run(&s.bytes, true);
        assert_eq!(r.result, Ok(None), "{}", s.name);
        assert_eq!(r.after, None, "{}", s.name);
        assert!(r.usage.peak > 0 && r.usage.peak <= bound(s.bytes.len()), "{}: {:?}", s.name, r.usage);
        // Taking a seed apart and putting it back together gives an equivalent file.
        let rebuilt = Model::from_bytes(&s.doc.build()).unwrap().to_bytes().unwrap();
        assert_eq!(rebuilt, s.bytes, "{}", s.name);
    }
}

#[test]
fn cases_replay_exactly() {
    let corpus = seeds();
    for n in [0, 1, 77, 123_456] {
        assert_eq!(case(&corpus, 3, n), case(&corpus, 3, n), "case {n}");
    }
    assert_ne!(case(&corpus, 3, 0).2, case(&corpus, 4, 0).2);
}

/// 2000 cases of run seed 1 (the first ones `scripts/fuzz.sh` runs): no panic, no
/// allocation beyond the bound, and every accepted model writes back and runs.
#[test]
fn two_thousand_cases_find_nothing() {
    install_panic_hook();
    let corpus = seeds();
    let (mut accepted, mut rejected) = (0, 0);
    for n in 0..2000 {
        let (s, mutations, bytes) = case(&corpus, 1, n);
        let r = run(&bytes, true);
        assert_eq!(r.finding(), None, "case {n} (seed file {}): {mutations:?}\n{r:?}", corpus[s].name);
        match r.result {
            Ok(None) => accepted += 1,
            _ => rejected += 1,
        }
    }
    // The mutators reach both outcomes: some mutants stay valid, most are refused.
    assert!(accepted > 20 && rejected > 1000, "accepted {accepted}, rejected {rejected}");
}
