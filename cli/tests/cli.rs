//! The `dkp` binary end to end, in temporary folders.
//!
//! random → info → eval → bench → generate/predict for every weight kind, JSON outputs,
//! and readable failures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dkp_lstm::{Model, Session};
use serde_json::Value;

const TEXT: &str = "the cat of the w3\nand a w5 is in the w7\nit was on the cat\n";

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dkp"));
    cmd.current_dir(dir).args(args).env_remove("DKP_KERNELS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the dkp binary runs")
}

/// Runs `dkp` and returns its stdout, failing the test on a non-zero exit.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dkp {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn ok_json(dir: &Path, args: &[&str]) -> Value {
    let stdout = ok(dir, args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("dkp {args:?} printed invalid JSON ({e}): {stdout}"))
}

/// Runs `dkp`, expects it to fail readably, and returns its stderr.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "dkp {args:?} should fail with exit code 1: {stderr}");
    assert!(stderr.starts_with("error: "), "unreadable error: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing or not a number in {v}"))
}

/// `dkp random --out NAME` with small defaults that `extra` may override.
fn random(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["random", "--out", name];
    for (flag, value) in [("--hidden", "16"), ("--vocab", "40"), ("--seed", "1")] {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend_from_slice(extra);
    ok(dir, &args);
    dir.join(name)
}

#[test]
fn every_kind_from_random_to_generate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("text.txt"), TEXT).unwrap();
    for (kind, cf) in [
        ("dense", "1"),
        ("kp", "4"),
        ("dkp", "4"),
        ("lowrank", "4"),
        ("dlowrank", "3"),
        ("sparse", "5"),
        ("hmd", "4"),
        ("dhmd", "3"),
    ] {
        let name = format!("{kind}.safetensors");
        let path = random(d, &name, &["--kind", kind, "--cf", cf, "--output-kind", kind, "--output-cf", cf]);

        let info = ok_json(d, &["info", &name, "--json"]);
        for key in
            ["params", "bytes", "lstm_cf", "lstm_cf_with_indices", "total_cf", "total_cf_with_indices", "file_bytes"]
        {
            assert!(num(&info, key) > 0.0, "{kind}: {key} in {info}");
        }
        assert_eq!(num(&info, "file_bytes") as u64, std::fs::metadata(&path).unwrap().len(), "{kind}");
        assert!(num(&info, "bytes") < num(&info, "file_bytes"), "{kind}: tensors are smaller than the file");
        assert_eq!(info["provenance"]["trained"], Value::Bool(false), "{kind}");
        if !["kp", "lowrank", "hmd"].contains(&kind) {
            // Factor shapes and ranks are whole numbers, so kp, lowrank and hmd only come close
            // to their CF; the doped and sparse kinds fill the budget with non-zeros.
            let want: f64 = cf.parse().unwrap();
            assert!((num(&info, "lstm_cf") - want).abs() / want < 0.02, "{kind}: {info}");
        }
        let table = ok(d, &["info", &name]);
        for needle in ["LSTM weights", "whole model", "layers.0.w", kind, "trained"] {
            assert!(table.contains(needle), "{kind}: `{needle}` not in\n{table}");
        }

        let eval = ok_json(d, &["eval", &name, "--text", "text.txt", "--json"]);
        let ppl = num(&eval, "perplexity");
        assert!(ppl.is_finite() && ppl > 1.0, "{kind}: {eval}");
        assert_eq!(num(&eval, "tokens"), 20.0, "{kind}: 17 words and 3 line ends");
        assert_eq!(num(&eval, "unknown"), 0.0);
        assert!((num(&eval, "nll") / 20.0).exp() - ppl < 1e-9 * ppl);
        assert!(num(&eval, "seconds") >= 0.0);

        let bench = ok_json(d, &["bench", &name, "--tokens", "30", "--warmup", "3", "--json"]);
        let (total, lstm, output) =
            (num(&bench, "us_per_token"), num(&bench, "lstm_us_per_token"), num(&bench, "output_us_per_token"));
        assert!(lstm > 0.0 && output > 0.0, "{kind}: {bench}");
        assert!(total >= lstm.max(output), "{kind}: the median total is at least each part's median: {bench}");
        assert!(!bench["kernels"].as_str().unwrap().is_empty());

        let args = ["generate", &name, "--prompt", "the cat", "--tokens", "12", "--seed", "4"];
        let text = ok(d, &args);
        assert!(text.starts_with("the cat"), "{kind}: {text}");
        assert!(text.split_whitespace().count() > 2, "{kind}: {text}");
        assert_eq!(ok(d, &args), text, "{kind}: a seed fixes the text");

        let top = ok_json(d, &["predict", &name, "--text", "the cat", "--k", "3", "--json"]);
        let probs: Vec<f64> = top.as_array().unwrap().iter().map(|p| num(p, "prob")).collect();
        assert_eq!(probs.len(), 3);
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{kind}: {probs:?}");
        assert!(ok(d, &["predict", &name, "--text", "the cat"]).contains("rank"));
    }
}

#[test]
fn dkp_at_cf_10_reports_cf_10() {
    let dir = tempfile::tempdir().unwrap();
    random(dir.path(), "m.st", &["--kind", "dkp", "--cf", "10", "--hidden", "50"]);
    let info = ok_json(dir.path(), &["info", "m.st", "--json"]);
    let cf = num(&info, "lstm_cf");
    assert!((cf - 10.0).abs() / 10.0 < 0.02, "{cf}");
    assert!(num(&info, "lstm_cf_with_indices") < cf);
    assert!(num(&info, "total_cf") < cf, "the dense embedding and output dilute the whole model's CF");
}

#[test]
fn eval_equals_one_perplexity_call() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = random(d, "m.st", &["--kind", "dkp", "--cf", "4"]);
    let text = TEXT.repeat(50);
    std::fs::write(d.join("long.txt"), &text).unwrap();
    let eval = ok_json(d, &["eval", "m.st", "--text", "long.txt", "--json", "--kernels", "scalar"]);
    let model = Model::from_bytes(&std::fs::read(path).unwrap()).unwrap().with_kernels(dkp_lstm::Kernels::scalar());
    let want = Session::new(model).perplexity(&text).unwrap();
    // Equal up to the JSON round trip of an f64.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    assert!(close(num(&eval, "perplexity"), want.perplexity), "{eval} vs {want:?}");
    assert!(close(num(&eval, "nll"), want.nll), "{eval} vs {want:?}");
    assert_eq!(num(&eval, "tokens") as usize, want.tokens);
    assert!(ok(d, &["eval", "m.st", "--text", "long.txt"]).contains("perplexity"));
}

#[test]
fn other_shapes_char_f16_split_and_tied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let extra = ["--kind", "dkp", "--cf", "4", "--char", "--dtype", "f16", "--split-gates", "--embedding-kind", "tied"];
    random(d, "c.st", &extra);
    let info = ok_json(d, &["info", "c.st", "--json"]);
    assert_eq!(info["tied"], Value::Bool(true));
    assert_eq!(info["tokenizer"], "char");
    let names: Vec<&str> = info["weights"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"layers.0.w_ih") && names.contains(&"layers.0.w_hh"), "{names:?}");
    let greedy = ["generate", "c.st", "--tokens", "20", "--temperature", "0"];
    let text = ok(d, &greedy);
    assert!(text.chars().count() > 20, "{text:?}");
    assert_eq!(ok(d, &greedy), text);
    std::fs::write(d.join("t.txt"), "hello world\n").unwrap();
    assert!(num(&ok_json(d, &["eval", "c.st", "--text", "t.txt", "--json"]), "perplexity") > 1.0);
}

#[test]
fn convert_to_f16_halves_the_values_and_records_the_converted_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    random(d, "m.st", &["--hidden", "32", "--vocab", "300"]);
    std::fs::write(d.join("t.txt"), TEXT.repeat(5)).unwrap();
    let wrote = ok(d, &["convert", "m.st", "--out", "h.st", "--test", "t.txt"]);
    assert!(wrote.contains("test_ppl"), "{wrote}");
    let (f32_info, f16_info) = (ok_json(d, &["info", "m.st", "--json"]), ok_json(d, &["info", "h.st", "--json"]));
    let values = |i: &Value| i["weights"].as_array().unwrap().iter().map(|w| num(w, "bytes")).sum::<f64>();
    assert_eq!(values(&f16_info) * 2.0, values(&f32_info), "f16 halves every value's bytes");
    // The recorded perplexity is what `dkp eval` measures on the converted file.
    let eval = num(&ok_json(d, &["eval", "h.st", "--text", "t.txt", "--json"]), "perplexity");
    let recorded = num(&f16_info["provenance"], "test_ppl");
    assert!((eval - recorded).abs() <= 1e-9 * eval, "{eval} vs {recorded}");
    assert_eq!(f16_info["provenance"]["converted"]["dtype"], "f16");
    assert!(fails(d, &["convert", "m.st", "--out", "h.st"]).contains("--force"));
    ok(d, &["convert", "h.st", "--out", "h.st", "--dtype", "f32", "--force"]);
    assert!(f16_info["provenance"].get("valid_ppl").is_none());
}

#[test]
fn convert_to_int8_quarters_the_dense_memory_and_records_the_converted_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    random(d, "m.st", &["--hidden", "32", "--vocab", "300"]);
    std::fs::write(d.join("t.txt"), TEXT.repeat(5)).unwrap();
    ok(d, &["convert", "m.st", "--out", "q.st", "--dtype", "i8", "--test", "t.txt"]);
    let (f32_info, i8_info) = (ok_json(d, &["info", "m.st", "--json"]), ok_json(d, &["info", "q.st", "--json"]));
    assert!(i8_info["weights"].as_array().unwrap().iter().all(|w| w["dtype"] == "I8"));
    let memory = |i: &Value| num(i, "memory") - num(&i["biases"], "memory");
    assert!(memory(&i8_info) <= 0.3 * memory(&f32_info), "{} vs {}", memory(&i8_info), memory(&f32_info));
    let eval = num(&ok_json(d, &["eval", "q.st", "--text", "t.txt", "--json"]), "perplexity");
    let recorded = num(&i8_info["provenance"], "test_ppl");
    assert!((eval - recorded).abs() <= 1e-9 * eval, "{eval} vs {recorded}");
    assert_eq!(i8_info["provenance"]["converted"]["dtype"], "i8");
    // Converting the int8 file to int8 again keeps every tensor byte (quantisation is
    // idempotent); only the provenance in the header changes.
    ok(d, &["convert", "q.st", "--out", "q2.st", "--dtype", "i8"]);
    let data = |f: &str| {
        let b = std::fs::read(d.join(f)).unwrap();
        b[8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize..].to_vec()
    };
    assert_eq!(data("q2.st"), data("q.st"));
}

#[test]
fn convert_to_int4_halves_the_int8_values_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    random(d, "m.st", &["--hidden", "32", "--vocab", "300", "--kind", "dkp", "--cf", "4"]);
    std::fs::write(d.join("t.txt"), TEXT.repeat(5)).unwrap();
    ok(d, &["convert", "m.st", "--out", "q8.st", "--dtype", "i8"]);
    ok(d, &["convert", "m.st", "--out", "q4.st", "--dtype", "i4", "--test", "t.txt"]);
    let (i8_info, i4_info) = (ok_json(d, &["info", "q8.st", "--json"]), ok_json(d, &["info", "q4.st", "--json"]));
    assert!(i4_info["weights"].as_array().unwrap().iter().all(|w| w["dtype"] == "I4"));
    let size = |f: &str| std::fs::metadata(d.join(f)).unwrap().len();
    assert!(size("q4.st") < size("q8.st"), "{} vs {}", size("q4.st"), size("q8.st"));
    let eval = num(&ok_json(d, &["eval", "q4.st", "--text", "t.txt", "--json"]), "perplexity");
    let recorded = num(&i4_info["provenance"], "test_ppl");
    assert!((eval - recorded).abs() <= 1e-9 * eval, "{eval} vs {recorded}");
    assert_eq!(i4_info["provenance"]["converted"]["dtype"], "i4");
    assert!(num(&i4_info, "file_bytes") < num(&i8_info, "file_bytes"));
    // Int4 of the int4 file: the same tensor bytes.
    ok(d, &["convert", "q4.st", "--out", "q4b.st", "--dtype", "i4"]);
    let data = |f: &str| {
        let b = std::fs::read(d.join(f)).unwrap();
        b[8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize..].to_vec()
    };
    assert_eq!(data("q4b.st"), data("q4.st"));
}

#[test]
fn kernels_from_flag_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    random(d, "m.st", &[]);
    let bench = ok_json(d, &["bench", "m.st", "--tokens", "5", "--warmup", "0", "--json", "--kernels", "scalar"]);
    assert_eq!(bench["kernels"], "scalar");
    let out = run(d, &["bench", "m.st", "--tokens", "5", "--json"], &[("DKP_KERNELS", "scalar")]);
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["kernels"], "scalar");
    let err = fails(d, &["bench", "m.st", "--kernels", "vax"]);
    assert!(err.contains("vax") && err.contains("scalar"), "{err}");
    let out = run(d, &["info", "m.st"], &[("DKP_KERNELS", "vax")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DKP_KERNELS"));
}

#[test]
fn text_of_only_unknown_words_fails_readably() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    random(d, "m.st", &[]);
    std::fs::write(d.join("zoo.txt"), "zebra giraffe okapi").unwrap();
    let err = fails(d, &["eval", "m.st", "--text", "zoo.txt"]);
    assert!(err.contains("zoo.txt") && err.contains("outside the vocabulary"), "{err}");
    std::fs::write(d.join("empty.txt"), "").unwrap();
    assert!(fails(d, &["eval", "m.st", "--text", "empty.txt"]).contains("no tokens"));
    std::fs::write(d.join("bin.txt"), [0xff, 0xfe, 0x00]).unwrap();
    assert!(fails(d, &["eval", "m.st", "--text", "bin.txt"]).contains("not UTF-8"));
    assert!(fails(d, &["eval", "m.st", "--text", "nope.txt"]).contains("nope.txt"));
}

#[test]
fn bad_model_files_fail_readably() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = random(d, "m.st", &[]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(d.join("half.st"), &bytes[..bytes.len() / 2]).unwrap();
    for cmd in ["info", "bench", "generate"] {
        let err = fails(d, &[cmd, "half.st"]);
        assert!(err.contains("half.st") && err.contains("truncated"), "{cmd}: {err}");
    }
    std::fs::write(d.join("notes.txt"), "just some notes, not a model\n").unwrap();
    assert!(fails(d, &["info", "notes.txt"]).contains("not a safetensors file"));
    let err = fails(d, &["info", "missing.st"]);
    assert!(err.contains("cannot read model file") && err.contains("missing.st"), "{err}");
}

#[test]
fn random_writes_atomically_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = random(d, "m.st", &["--seed", "1"]);
    let first = std::fs::read(&path).unwrap();
    let err = fails(d, &["random", "--seed", "2", "--out", "m.st"]);
    assert!(err.contains("m.st") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), first, "the refused write left the file alone");
    ok(d, &["random", "--seed", "2", "--out", "m.st", "--force"]);
    assert_ne!(std::fs::read(&path).unwrap(), first);
    let files: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, ["m.st"], "no temporary file is left behind");
}

#[test]
fn random_rejects_impossible_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(fails(d, &["random", "--kind", "lowrank", "--cf", "1000", "--out", "x.st"]).contains("cannot build"));
    assert!(fails(d, &["random", "--cf", "0.5", "--out", "x.st"]).contains("cf"));
    assert!(fails(d, &["random", "--hidden", "1000000000", "--out", "x.st"]).contains("`hidden`"));
    assert!(fails(d, &["random", "--hidden", "100000", "--out", "x.st"]).contains("elements"));
    // `tied` is an embedding kind only: the argument parser refuses it (usage error, exit 2).
    let out = run(d, &["random", "--kind", "tied", "--out", "x.st"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'tied'"));
    assert!(fails(d, &["generate", "nothing.st", "--temperature=-1"]).contains("temperature"));
    assert!(!d.join("x.st").exists());
}

#[test]
fn help_describes_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let top = ok(dir.path(), &["--help"]);
    for (cmd, flags) in [
        ("info", &["--json", "--kernels"][..]),
        ("eval", &["--text", "--json", "--no-progress"]),
        ("bench", &["--tokens", "--warmup", "--json", "--kernels"]),
        (
            "random",
            &[
                "--layers",
                "--hidden",
                "--vocab",
                "--kind",
                "--cf",
                "--output-kind",
                "--embedding-kind",
                "--split-gates",
                "--char",
                "--dtype",
                "--seed",
                "--out",
                "--force",
            ],
        ),
        ("generate", &["--prompt", "--tokens", "--temperature", "--top-k", "--seed"]),
        ("predict", &["--text", "--k"]),
        ("convert", &["--out", "--dtype", "--test", "--valid", "--force"]),
        ("plot", &["--run", "--what", "--title", "--out"]),
    ] {
        assert!(top.contains(cmd), "`{cmd}` not in --help");
        let help = ok(dir.path(), &[cmd, "--help"]);
        for flag in flags {
            assert!(help.contains(flag), "{cmd} --help lacks {flag}:\n{help}");
        }
    }
    let out = run(dir.path(), &["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}
