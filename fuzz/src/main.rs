//! `fuzz-reader`: runs cases `from..from + execs` of a seeded fuzzing run of `Model::from_bytes`.
//!
//! ```text
//! fuzz-reader [--seed S] [--from N] [--execs N] [--findings DIR] [--trace] [--hard-cap BYTES]
//! fuzz-reader [--seed S] --replay N [--findings DIR]
//! ```
//!
//! Every case whose read panics, holds more heap than `dkp_fuzz::bound`, or loads a
//! model that does not write back or run, is a finding: its first input per distinct
//! defect is minimized and saved to DIR (default `fuzz/findings`) with its recipe. The
//! last lines (`SUMMARY`, `ERR`, `FINDING`) are for `scripts/fuzz.sh` to add up.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dkp_fuzz::alloc::{counting_is_installed, set_refusal_hook, HARD_CAP};
use dkp_fuzz::case::{install_panic_hook, BOUND_BASE, BOUND_PER_BYTE};
use dkp_fuzz::{bound, case, minimize, run, seeds, Counting, Report, Seed};

#[global_allocator]
static ALLOC: Counting = Counting;

static SEED: AtomicU64 = AtomicU64::new(0);
static CURRENT: AtomicU64 = AtomicU64::new(0);

/// Runs inside the allocator just before it refuses a request above the hard cap
/// (the process aborts next): says which case to replay.
fn on_refusal(size: usize) {
    let (seed, case) = (SEED.load(Ordering::Relaxed), CURRENT.load(Ordering::Relaxed));
    let _ = writeln!(
        std::io::stderr(),
        "FINDING refused allocation of {size} bytes: replay with `fuzz-reader --seed {seed} --replay {case}`"
    );
}

struct Args {
    seed: u64,
    from: u64,
    execs: u64,
    findings: PathBuf,
    replay: Option<u64>,
    trace: bool,
}

fn args() -> Args {
    let mut a = Args { seed: 1, from: 0, execs: 100_000, findings: "fuzz/findings".into(), replay: None, trace: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = |s: String| s.replace('_', "").parse::<u64>().unwrap_or_else(|_| panic!("not a number: {s}"));
        match flag.as_str() {
            "--seed" => a.seed = num(value()),
            "--from" => a.from = num(value()),
            "--execs" => a.execs = num(value()),
            "--findings" => a.findings = value().into(),
            "--replay" => a.replay = Some(num(value())),
            "--trace" => a.trace = true,
            "--hard-cap" => HARD_CAP.store(num(value()) as usize, Ordering::Relaxed),
            _ => {
                eprintln!(
                    "usage: fuzz-reader [--seed S] [--from N] [--execs N] [--findings DIR] [--trace] [--hard-cap B] | --replay N"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

fn describe(r: &Report) -> String {
    let result = match &r.result {
        Ok(None) => "Ok".to_string(),
        Ok(Some(v)) => format!("Err({v})"),
        Err(p) => format!("PANIC at {}: {}\n{}", p.location, p.message, p.backtrace),
    };
    format!(
        "result: {result}\nafter: {:?}\nlen: {} bytes\npeak heap: {} bytes (bound {}), largest request {} bytes, {} allocations\n",
        r.after,
        r.len,
        r.usage.peak,
        bound(r.len),
        r.usage.largest,
        r.usage.count
    )
}

fn save(a: &Args, key: &str, corpus: &[Seed], case_no: u64) {
    let slug: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let slug = format!("{}-", slug.trim_matches('-'));
    // One example per defect across the processes of a run (scripts/fuzz.sh runs several).
    let known = std::fs::read_dir(&a.findings).into_iter().flatten().flatten();
    if known.into_iter().any(|f| f.file_name().to_string_lossy().starts_with(&slug)) {
        return;
    }
    let (s, mutations, _) = case(corpus, a.seed, case_no);
    let minimal = minimize(&corpus[s], &mutations, true);
    let bytes = dkp_fuzz::mutant(&corpus[s], &minimal);
    let report = run(&bytes, true);
    let _ = std::fs::create_dir_all(&a.findings);
    let base = a.findings.join(format!("{slug}{case_no}"));
    let _ = std::fs::write(base.with_extension("bin"), &bytes);
    let text = format!(
        "finding: {key}\nreplay: fuzz-reader --seed {} --replay {case_no}\nseed file: {} ({})\nminimized mutations: {minimal:#?}\n{}",
        a.seed,
        s,
        corpus[s].name,
        describe(&report)
    );
    let _ = std::fs::write(base.with_extension("txt"), &text);
    eprintln!("\n{text}");
}

fn main() {
    let a = args();
    assert!(counting_is_installed(), "the counting allocator is not installed");
    install_panic_hook();
    SEED.store(a.seed, Ordering::Relaxed);
    set_refusal_hook(on_refusal);
    let corpus = seeds();

    if let Some(n) = a.replay {
        let (s, mutations, bytes) = case(&corpus, a.seed, n);
        println!("case {n} of seed {}: seed file {s} ({})\nmutations: {mutations:#?}", a.seed, corpus[s].name);
        let r = run(&bytes, true);
        print!("{}", describe(&r));
        println!("finding: {:?}", dkp_fuzz::finding_key(&r, &mutations));
        if r.finding().is_some() {
            println!("minimized: {:#?}", minimize(&corpus[s], &mutations, true));
        }
        return;
    }

    println!(
        "fuzz-reader: seed {}, cases {}..{}, bound {} B/byte + {} B, hard cap {} B per request",
        a.seed,
        a.from,
        a.from + a.execs,
        BOUND_PER_BYTE,
        BOUND_BASE,
        HARD_CAP.load(Ordering::Relaxed)
    );
    for (i, s) in corpus.iter().enumerate() {
        let r = run(&s.bytes, true);
        assert!(
            r.result == Ok(None) && r.finding().is_none(),
            "seed {} does not load cleanly: {}",
            s.name,
            describe(&r)
        );
        println!(
            "  seed {i:2} {:48} {:6} bytes, peak heap {:7} bytes ({:.1}x)",
            s.name,
            s.bytes.len(),
            r.usage.peak,
            r.usage.peak as f64 / s.bytes.len() as f64
        );
    }

    let start = Instant::now();
    let mut errors: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut findings: BTreeMap<String, (u64, u64)> = BTreeMap::new(); // key -> (first case, count)
    let (mut panics, mut over, mut after, mut accepted) = (0u64, 0u64, 0u64, 0u64);
    let (mut max_ratio, mut max_ratio_case, mut max_peak, mut max_peak_case) = (0f64, 0u64, 0usize, 0u64);
    let (mut max_use, mut max_use_case) = (0f64, 0u64);
    let (mut max_within, mut max_within_case) = (0f64, 0u64);
    let mut unchanged = 0u64;
    let step = (a.execs / 10).max(1);
    for n in a.from..a.from + a.execs {
        CURRENT.store(n, Ordering::Relaxed);
        if a.trace {
            eprintln!("case {n}");
        }
        let (s, mutations, bytes) = case(&corpus, a.seed, n);
        // A mutant that is its seed again (the mutations undid each other or changed nothing
        // that is written) is read, but its model is not checked again.
        let same = bytes == corpus[s].rebuilt;
        unchanged += same as u64;
        let r = run(&bytes, !same);
        match &r.result {
            Ok(None) => accepted += 1,
            Ok(Some(v)) => *errors.entry(v).or_default() += 1,
            Err(_) => panics += 1,
        }
        if !r.within_bound() {
            over += 1;
        }
        if r.after.is_some() {
            after += 1;
        }
        let ratio = r.usage.peak as f64 / r.len.max(1) as f64;
        if ratio > max_ratio {
            (max_ratio, max_ratio_case) = (ratio, n);
        }
        // Among large inputs, where the per-byte part of the bound dominates.
        if ratio > max_within && r.within_bound() && r.len >= 100_000 {
            (max_within, max_within_case) = (ratio, n);
        }
        let used = r.usage.peak as f64 / bound(r.len) as f64;
        if used > max_use {
            (max_use, max_use_case) = (used, n);
        }
        if r.usage.peak > max_peak {
            (max_peak, max_peak_case) = (r.usage.peak, n);
        }
        if let Some(key) = dkp_fuzz::finding_key(&r, &mutations) {
            let slot = findings.entry(key.clone()).or_insert((n, 0));
            slot.1 += 1;
            if slot.1 == 1 {
                save(&a, &key, &corpus, n);
            }
        }
        let done = n + 1 - a.from;
        if done.is_multiple_of(step) {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "  {done:>10} cases  {secs:7.1} s  {:8.0}/s  accepted {accepted}  panics {panics}  over-bound {over}  after-load {after}",
                done as f64 / secs
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "SUMMARY execs={} secs={secs:.1} panics={panics} overbound={over} afterload={after} accepted={accepted} unchanged={unchanged} unique={}",
        a.execs,
        findings.len()
    );
    println!("MAXPEAK peak={max_peak} case={max_peak_case}");
    println!("MAXRATIO ratio={max_ratio:.2} case={max_ratio_case}");
    println!("MAXUSE fraction={max_use:.4} case={max_use_case}");
    println!("MAXWITHIN ratio={max_within:.2} case={max_within_case}");
    for (v, n) in &errors {
        println!("ERR {v} {n}");
    }
    for (k, (first, n)) in &findings {
        println!("FINDING {n} first_case={first} {k}");
    }
}
