//! End-to-end behaviour of the trainer: gradients, learning, resume, export, bad inputs.

mod common;

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};
use common::{tiny_config, write_corpus};
use dkp_lstm::plan::Accounting;
use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{Model, Session};
use dkp_train::config::{CmrMode, DistillConfig, OptimKind, WeightKind};
use dkp_train::data::{Batches, Corpus};
use dkp_train::distill::Teacher;
use dkp_train::lm::{Lm, State, TrainCtx};
use dkp_train::rng::{RandomVec, Rng};
use dkp_train::train::{RunOptions, Trainer};
use dkp_train::weights::WeightParam;
use dkp_train::Error;

const KINDS: [WeightKind; WeightKind::ALL.len()] = WeightKind::ALL;

fn scalar(t: &Tensor) -> f64 {
    t.to_scalar::<f32>().unwrap() as f64
}

/// Autograd gradients of a loss against central differences on a few entries of each var.
fn check_gradients(vars: &[(String, Var)], loss: &dyn Fn() -> Tensor, tol: f64) {
    let grads = loss().backward().unwrap();
    for (name, var) in vars {
        let Some(g) = grads.get(var) else { continue };
        let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        let base: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // Five entries spread over the tensor, and its first five with a gradient (inside
        // a sparse mask, say).
        let spread = (0..base.len()).step_by((base.len() / 5).max(1));
        for i in spread.chain((0..base.len()).filter(|&i| g[i] != 0.0).take(5)) {
            let eps = 1e-2f32;
            let at = |d: f32| {
                let mut v = base.clone();
                v[i] += d;
                var.set(&Tensor::from_vec(v, var.shape(), var.device()).unwrap()).unwrap();
                scalar(&loss())
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            var.set(&Tensor::from_vec(base.clone(), var.shape(), var.device()).unwrap()).unwrap();
            let err = (fd - g[i] as f64).abs();
            assert!(err <= tol * (1.0 + fd.abs()), "{name}[{i}]: autograd {} vs finite difference {fd}", g[i]);
        }
    }
}

#[test]
fn doped_layer_gradients_match_finite_differences() {
    for kind in [WeightKind::Dkp, WeightKind::DLowRank, WeightKind::DHmd] {
        doped_layer_gradient(kind);
    }
}

fn doped_layer_gradient(kind: WeightKind) {
    let dev = Device::Cpu;
    let mut w = WeightParam::new("w", kind, 12, 8, 2.0, Accounting::Values, 0.5, &mut Rng::new(1), &dev).unwrap();
    w.update_mask(0.5).unwrap();
    let x = Tensor::from_vec(Rng::new(2).uniform_vec(3 * 8, 1.0), (3, 8), &dev).unwrap();
    let r = Tensor::from_vec(Rng::new(3).uniform_vec(3 * 12, 1.0), (3, 12), &dev).unwrap();
    // Through the materialised matrix and through the structured (vec trick, U·(V·x),
    // stacked blocks) + sparse path.
    let materialised = || {
        x.matmul(&w.materialise().unwrap().t().unwrap()).unwrap().mul(&r).unwrap().tanh().unwrap().sum_all().unwrap()
    };
    let split = || {
        let y = (w.apply_base(&x).unwrap().unwrap() + w.apply_sparse(&x).unwrap().unwrap()).unwrap();
        y.mul(&r).unwrap().tanh().unwrap().sum_all().unwrap()
    };
    check_gradients(&w.vars(), &materialised, 2e-2);
    check_gradients(&w.vars(), &split, 2e-2);
    // Pruned entries get no gradient.
    let g = split().backward().unwrap();
    let m = w.masked.as_ref().unwrap();
    let gs = g.get(&m.var).unwrap().mul(&(1.0 - &m.mask).unwrap()).unwrap().abs().unwrap().sum_all().unwrap();
    assert_eq!(scalar(&gs), 0.0);
}

#[test]
fn whole_model_gradient_matches_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 50);
    let mut cfg = tiny_config(data, dir.path(), WeightKind::Dkp);
    // S's share small enough for density 0.15 below.
    cfg.lstm.cf = 4.0;
    cfg.output.kind = WeightKind::Dkp;
    cfg.output.cf = 2.0;
    cfg.embedding.kind = WeightKind::Kp;
    cfg.embedding.cf = 2.0;
    let corpus = Corpus::load(cfg.data.as_ref().unwrap()).unwrap();
    let mut lm = Lm::new(&cfg, corpus.tokenizer.len(), &mut Rng::new(1), &Device::Cpu).unwrap();
    let (x, y) = (&corpus.train[..8], &corpus.train[1..9]);
    // Each evaluation draws the same co-matrix dropout masks, so the loss is a fixed function.
    // At density 0.15 dropout per element multiplies the gates' S entry by entry.
    for (density, mode, output) in [
        (0.5, CmrMode::Off, true),
        (0.5, CmrMode::Element, true),
        (0.5, CmrMode::Element, false),
        (0.5, CmrMode::Term, true),
        (0.15, CmrMode::Element, false),
    ] {
        for w in lm.weights_mut() {
            w.update_mask(density).unwrap();
        }
        let cmr = dkp_train::config::CmrConfig { mode, rate: 0.5, output };
        let loss = || {
            let mut state = State::zeros(&lm, 2, &Device::Cpu).unwrap();
            let mut rng = Rng::new(0);
            let mut ctx = TrainCtx { dropout: 0.0, cmr, rng: &mut rng, norms: false };
            lm.train_loss(x, y, 2, &mut state, &mut ctx, None).unwrap().0
        };
        check_gradients(&lm.vars(), &loss, 3e-2);
    }
}

#[test]
fn co_matrix_dropout_leaves_the_output_layer_alone_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 50);
    let mut cfg = tiny_config(data, dir.path(), WeightKind::Dense);
    cfg.output.kind = WeightKind::Dkp;
    cfg.output.cf = 2.0;
    let corpus = Corpus::load(cfg.data.as_ref().unwrap()).unwrap();
    let mut lm = Lm::new(&cfg, corpus.tokenizer.len(), &mut Rng::new(1), &Device::Cpu).unwrap();
    lm.output.update_mask(0.5).unwrap();
    let (x, y) = (&corpus.train[..8], &corpus.train[1..9]);
    let loss = |mode, output| {
        let cmr = dkp_train::config::CmrConfig { mode, rate: 0.5, output };
        let mut state = State::zeros(&lm, 2, &Device::Cpu).unwrap();
        let mut rng = Rng::new(0);
        let mut ctx = TrainCtx { dropout: 0.0, cmr, rng: &mut rng, norms: false };
        scalar(&lm.train_loss(x, y, 2, &mut state, &mut ctx, None).unwrap().0)
    };
    // The only doped weight is the output layer, so only `output = true` can change the loss.
    let clean = loss(CmrMode::Off, true);
    assert_eq!(loss(CmrMode::Element, false), clean);
    assert_ne!(loss(CmrMode::Element, true), clean);
}

#[test]
fn a_tiny_model_learns_the_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 300);
    let mut cfg = tiny_config(data, dir.path(), WeightKind::Dkp);
    cfg.epochs = 3;
    cfg.bptt = 10;
    cfg.model.hidden = 16;
    cfg.cmr.mode = CmrMode::Element;
    cfg.optim.kind = OptimKind::Adamw;
    cfg.optim.lr = 0.01;
    cfg.doping.end_epoch = 2.0;
    let mut t = Trainer::new(cfg, false).unwrap();
    let before = t.valid_ppl(t.lm()).unwrap();
    let report = t.run(&RunOptions::default()).unwrap();
    assert!(report.valid_ppl < 0.5 * before, "valid ppl {before} → {}", report.valid_ppl);
    assert!(report.test_ppl < 0.5 * before);
    assert_eq!(report.unknown, [0, 1], "`zebra` is the one unknown test word");
    let lines = std::fs::read_to_string(dir.path().join("t/metrics.jsonl")).unwrap();
    assert!(lines.lines().any(|l| l.contains("\"norms\":[{")), "path norms are logged");
    assert!(dir.path().join("t/ppl.svg").is_file() && dir.path().join("t/norms.svg").is_file());
}

/// Only epochs that end with every mask at its target count of non-zeros compete for the
/// exported model — including the one in which the schedule ends.
#[test]
fn the_best_model_is_the_best_epoch_at_the_target_sparsity() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 120);
    let mut cfg = tiny_config(data, dir.path(), WeightKind::Sparse);
    cfg.epochs = 4;
    cfg.lstm.cf = 4.0;
    cfg.doping.start_epoch = 0.0;
    cfg.doping.end_epoch = 2.0;
    cfg.doping.mask_every = 1;
    let report = Trainer::new(cfg, false).unwrap().run(&RunOptions::default()).unwrap();
    let lines = std::fs::read_to_string(dir.path().join("t/metrics.jsonl")).unwrap();
    let valid: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "valid")
        .collect();
    let target = &valid.last().unwrap()["density"];
    let mut best: Option<(f64, u64)> = None;
    for v in &valid {
        let at = v["density"].as_object().unwrap().iter().all(|(k, d)| d.as_f64() <= target[k].as_f64());
        assert_eq!(v["at_target"].as_bool(), Some(at), "{v}");
        let (ppl, epoch) = (v["valid_ppl"].as_f64().unwrap(), v["epoch"].as_u64().unwrap());
        if at && best.is_none_or(|(b, _)| ppl < b) {
            best = Some((ppl, epoch));
        }
    }
    // Updating the mask every step, the epoch that ends the schedule ends at the target.
    assert_eq!(valid[1]["at_target"].as_bool(), Some(true), "{}", valid[1]);
    assert_eq!(valid[0]["at_target"].as_bool(), Some(false));
    let (ppl, epoch) = best.unwrap();
    assert_eq!(report.valid_ppl, ppl);
    let model = Model::from_bytes(&std::fs::read(dir.path().join("t/model.safetensors")).unwrap()).unwrap();
    assert_eq!(model.provenance().to_map().unwrap()["best_epoch"].as_u64(), Some(epoch));
}

/// `optim.sparse_lr_scale` moves every doped weight's S that many times as far in one SGD
/// step, and leaves the other parameters' steps as they were.
#[test]
fn the_co_matrix_trains_at_its_own_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 60);
    let mut cfg = tiny_config(data, dir.path(), WeightKind::DHmd);
    (cfg.output.kind, cfg.output.cf) = (WeightKind::Dkp, 2.0);
    cfg.model.dropout = 0.0;
    let step = |scale: f64| {
        let mut c = cfg.clone();
        c.optim.sparse_lr_scale = scale;
        let mut t = Trainer::new(c, false).unwrap();
        let values = |t: &Trainer| -> BTreeMap<String, Vec<f32>> {
            t.lm().vars().into_iter().map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap())).collect()
        };
        let before = values(&t);
        t.step(false).unwrap();
        let after = values(&t);
        before.into_iter().map(|(n, b)| (n.clone(), b.iter().zip(&after[&n]).map(|(b, a)| a - b).collect())).collect()
    };
    let (one, three): (BTreeMap<String, Vec<f32>>, BTreeMap<String, Vec<f32>>) = (step(1.0), step(3.0));
    let co_matrices = ["layers.0.w.s", "layers.1.w.s", "output.s"];
    for (name, d1) in &one {
        let factor = if co_matrices.contains(&name.as_str()) { 3.0 } else { 1.0 };
        assert!(d1.iter().any(|&d| d != 0.0), "{name} did not move");
        for (a, b) in d1.iter().zip(&three[name]) {
            // A step is the difference of two f32 weights of up to ~0.1: a few 1e-8 off.
            assert!((b - factor * a).abs() <= 1e-3 * (factor * a).abs() + 3e-8, "{name}: {b} against {factor} × {a}");
        }
    }
    assert!(co_matrices.iter().all(|c| one.contains_key(*c)), "{:?}", one.keys());
    cfg.optim.sparse_lr_scale = 0.0;
    assert!(Trainer::new(cfg, false).is_err(), "a zero scale is refused");
}

fn final_params(t: &Trainer) -> BTreeMap<String, Vec<f32>> {
    t.lm().state_tensors().into_iter().map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap())).collect()
}

#[test]
fn resuming_from_a_checkpoint_gives_the_uninterrupted_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 60);
    let mut cfg = tiny_config(data, &dir.path().join("a"), WeightKind::Dkp);
    cfg.model.dropout = 0.3;
    cfg.cmr.mode = CmrMode::Element;
    cfg.optim.kind = OptimKind::Adamw;
    cfg.optim.lr = 0.01;
    let per_epoch = {
        let t = Trainer::new(cfg.clone(), false).unwrap();
        let c = t.corpus().train.len() / cfg.batch_size;
        (c - 1).div_ceil(cfg.bptt)
    };
    let (k, n) = (per_epoch - 2, per_epoch + 4); // stop mid-epoch, finish past an epoch end
    let straight = {
        let mut c = cfg.clone();
        c.max_steps = Some(n);
        let mut t = Trainer::new(c, false).unwrap();
        t.run(&RunOptions::default()).unwrap();
        final_params(&t)
    };
    cfg.runs_dir = dir.path().join("b");
    let mut c = cfg.clone();
    c.max_steps = Some(k);
    Trainer::new(c, false).unwrap().run(&RunOptions::default()).unwrap();
    // As if written before `cmr.output` existed: a setting added later resumes as its default.
    let ckpt = cfg.runs_dir.join(&cfg.name).join("checkpoint.safetensors");
    let (mut meta, tensors) = dkp_train::checkpoint::load(&ckpt, &Device::Cpu).unwrap();
    meta["config"]["cmr"].as_object_mut().unwrap().remove("output").unwrap();
    dkp_train::checkpoint::save(&ckpt, &meta, &tensors.into_iter().collect::<Vec<_>>()).unwrap();
    let mut c = cfg.clone();
    c.max_steps = Some(n);
    let mut t = Trainer::new(c, true).unwrap();
    assert_eq!(t.position().step, k);
    t.run(&RunOptions { resume: true, ..RunOptions::default() }).unwrap();
    assert_eq!(t.position().step, n);
    assert_eq!(final_params(&t), straight);
}

/// Log-probabilities of the trainer and of the runtime on the same tokens.
fn compare_with_runtime(lm: &Lm, corpus: &Corpus) {
    let model =
        Model::from_bytes(&lm.to_model(&corpus.tokenizer, Default::default()).unwrap().to_bytes().unwrap()).unwrap();
    compare_lm_with_model(lm, model, corpus);
}

/// Log-probabilities of a trainer model and of a runtime model on the same tokens.
fn compare_lm_with_model(lm: &Lm, model: Model, corpus: &Corpus) {
    let eos = corpus.tokenizer.eos().unwrap();
    let ids: Vec<u32> = std::iter::once(eos).chain(corpus.valid.ids[..12].iter().copied()).collect();
    let mut state = State::zeros(lm, 1, &Device::Cpu).unwrap();
    let logits = lm.logits(&ids, 1, &mut state).unwrap();
    let lse = logits.exp().unwrap().sum_keepdim(1).unwrap().log().unwrap();
    let log_p: Vec<Vec<f32>> = logits.broadcast_sub(&lse).unwrap().to_vec2().unwrap();
    let mut session = Session::new(model);
    for (t, row) in log_p.iter().enumerate() {
        if t > 0 {
            session.feed(ids[t]).unwrap();
        }
        let got = session.log_probs();
        let worst = row.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "step {t}: trainer and runtime differ by {worst}");
    }
}

#[test]
fn exported_models_give_the_trainers_log_probs_for_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 50);
    let corpus = Corpus::load(&data).unwrap();
    for (i, kind) in KINDS.into_iter().enumerate() {
        let mut cfg = tiny_config(data.clone(), dir.path(), kind);
        cfg.output.kind = KINDS[(i + 1) % KINDS.len()];
        cfg.output.cf = 2.0;
        cfg.embedding.kind = KINDS[(i + 2) % KINDS.len()];
        cfg.embedding.cf = 2.0;
        cfg.model.tie_weights = i % 3 == 0;
        if cfg.model.tie_weights {
            cfg.model.embedding_dim = None;
        }
        let mut lm = Lm::new(&cfg, corpus.tokenizer.len(), &mut Rng::new(i as u64), &Device::Cpu).unwrap();
        for w in lm.weights_mut() {
            w.update_mask(0.3).unwrap();
        }
        compare_with_runtime(&lm, &corpus);
    }
}

/// Distillation end to end: a trained DKP teacher file, its predictions over the student's
/// batch layout, a student that learns from them, provenance and resume that name the teacher.
#[test]
fn a_student_learns_from_a_teacher_file_that_its_checkpoint_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 300);
    let mut tcfg = tiny_config(data.clone(), &dir.path().join("teacher"), WeightKind::Dkp);
    (tcfg.model.hidden, tcfg.optim.kind, tcfg.optim.lr, tcfg.epochs) = (16, OptimKind::Adamw, 0.01, 3);
    let teacher_file = dir.path().join("teacher.safetensors");
    Trainer::new(tcfg, false)
        .unwrap()
        .run(&RunOptions { out: Some(teacher_file.clone()), ..Default::default() })
        .unwrap();
    let teacher_model = Model::from_bytes(&std::fs::read(&teacher_file).unwrap()).unwrap();
    let corpus = Corpus::load(&data).unwrap();
    // The teacher is the file's function, though its DKP weights are materialised dense.
    let teacher_lm = Lm::materialised(&teacher_model, &Device::Cpu).unwrap();
    compare_lm_with_model(&teacher_lm, teacher_model.clone(), &corpus);

    let mut cfg = tiny_config(data, &dir.path().join("student"), WeightKind::Dkp);
    (cfg.model.hidden, cfg.epochs, cfg.bptt, cfg.optim.kind, cfg.optim.lr) = (16, 3, 10, OptimKind::Adamw, 0.01);
    cfg.distill = DistillConfig { teacher: Some(teacher_file.clone()), weight: 0.5, temperature: 2.0, top_k: 5 };

    // Soft targets of window 1, row 2: the teacher reading that row alone from a zero state.
    let batches = Batches::new(&corpus.train, cfg.batch_size, cfg.bptt).unwrap();
    let cache = dir.path().join("teacher-cache.safetensors");
    let load = |d: &DistillConfig| Teacher::load(d, &corpus.tokenizer, &batches, Some(&cache), &Device::Cpu).unwrap();
    let soft = load(&cfg.distill).window(&batches, 1, &cfg.distill);
    let ((start, len), row, b) = (batches.span(1), corpus.train.len() / cfg.batch_size, 2);
    let stream = &corpus.train[b * row..b * row + start + len];
    let logits = teacher_lm.logits(stream, 1, &mut State::zeros(&teacher_lm, 1, &Device::Cpu).unwrap()).unwrap();
    let logits: Vec<Vec<f32>> = logits.to_vec2().unwrap();
    for t in 0..len {
        let z = &logits[start + t];
        let mut order: Vec<usize> = (0..z.len()).collect();
        order.sort_by(|&i, &j| z[j].total_cmp(&z[i]));
        let top = &order[..5];
        // The teacher's own probabilities at T = 2 (not renormalised over the top 5) and
        // the rest of its distribution.
        let e: Vec<f64> = z.iter().map(|&x| (x as f64 / 2.0).exp()).collect();
        let sum: f64 = e.iter().sum();
        let at = (t * cfg.batch_size + b) * 5;
        assert_eq!(soft.ids[at..at + 5].iter().map(|&i| i as usize).collect::<Vec<_>>(), top, "step {t}");
        for (j, &i) in top.iter().enumerate() {
            let q = e[i] / sum;
            assert!((soft.probs[at + j] as f64 - q).abs() < 1e-5, "step {t}: q {} vs {q}", soft.probs[at + j]);
        }
        let rest = 1.0 - top.iter().map(|&i| e[i] / sum).sum::<f64>();
        let r = soft.rest[t * cfg.batch_size + b] as f64;
        assert!((r - rest).abs() < 1e-5 && rest > 0.01, "step {t}: rest {r} vs {rest}");
    }

    // The predictions are cached: a second load reads the file (here doctored to zero
    // probabilities, so all of each row is the rest), and another top_k recomputes them.
    let (meta, mut tensors) = dkp_train::checkpoint::load(&cache, &Device::Cpu).unwrap();
    let zeros = tensors["probs"].zeros_like().unwrap();
    tensors.insert("probs".into(), zeros);
    dkp_train::checkpoint::save(&cache, &meta, &tensors.into_iter().collect::<Vec<_>>()).unwrap();
    let doctored = load(&cfg.distill).window(&batches, 1, &cfg.distill);
    assert_eq!(doctored.ids, soft.ids);
    assert!(doctored.probs.iter().all(|&q| q == 0.0) && doctored.rest.iter().all(|&r| r == 1.0));
    let k3 = DistillConfig { top_k: 3, ..cfg.distill.clone() };
    let three = load(&k3).window(&batches, 1, &k3);
    assert_eq!((three.k, &three.ids[..3]), (3, &soft.ids[..3]));

    let mut student = Trainer::new(cfg.clone(), false).unwrap();
    let before = student.valid_ppl(student.lm()).unwrap();
    let report = student.run(&RunOptions::default()).unwrap();
    assert!(report.valid_ppl < 0.5 * before, "valid ppl {before} → {}", report.valid_ppl);
    let model = Model::from_bytes(&std::fs::read(&report.model).unwrap()).unwrap();
    let prov = &model.provenance().to_map().unwrap()["distillation"];
    let hash = dkp_train::distill::file_hash(&std::fs::read(&teacher_file).unwrap());
    assert_eq!(prov["teacher_hash"].as_str(), Some(hash.as_str()), "{prov}");
    assert_eq!((prov["temperature"].as_f64(), prov["top_k"].as_u64()), (Some(2.0), Some(5)));
    assert!(prov["teacher_test_ppl"].as_f64().is_some());

    // The checkpoint resumes with the same teacher, and refuses another file at its path.
    Trainer::new(cfg.clone(), true).unwrap();
    std::fs::copy(&report.model, &teacher_file).unwrap();
    let err = Trainer::new(cfg.clone(), true).err().expect("a different teacher").to_string();
    assert!(err.contains("teacher had hash") && err.contains(&hash), "{err}");
    // A teacher over another vocabulary is refused before any training.
    let other = random_model(&RandomSpec { vocab: 30, ..RandomSpec::default() }).unwrap();
    std::fs::write(&teacher_file, other.to_bytes().unwrap()).unwrap();
    let err = Trainer::new(cfg, false).err().expect("another vocabulary").to_string();
    assert!(err.contains("vocabulary"), "{err}");
}

#[test]
fn trainer_perplexity_is_what_the_runtime_computes() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 50);
    let mut cfg = tiny_config(data, dir.path(), WeightKind::Dkp);
    cfg.epochs = 1;
    let report = Trainer::new(cfg.clone(), false).unwrap().run(&RunOptions::default()).unwrap();
    let model = Model::from_bytes(&std::fs::read(&report.model).unwrap()).unwrap();
    let corpus = Corpus::load(cfg.data.as_ref().unwrap()).unwrap();
    let runtime = Session::new(model.clone()).perplexity(&corpus.test.text).unwrap().perplexity;
    assert!((runtime / report.test_ppl - 1.0).abs() < 1e-3, "runtime {runtime} vs trainer {}", report.test_ppl);
    let prov = model.provenance().to_map().unwrap();
    // serde_json's default float parsing may round the last bit.
    assert!((prov["test_ppl"].as_f64().unwrap() / report.test_ppl - 1.0).abs() < 1e-12);
    assert!(prov["cf"]["lstm_values"].as_f64().unwrap() > 1.5);
    assert_eq!(prov["method"]["lstm"], "dkp");
}

#[test]
fn char_models_train_and_agree_with_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..400).map(|i| ["the cat sat. ", "a dog ran! ", "we eat fish\n"][i % 3]).collect();
    let file = dir.path().join("input.txt");
    std::fs::write(&file, &text).unwrap();
    let data = dkp_train::data::DataSpec::from_path(&file).unwrap();
    let mut cfg = tiny_config(data, dir.path(), WeightKind::DLowRank);
    cfg.lstm.cf = 1.5;
    cfg.epochs = 1;
    let report = Trainer::new(cfg.clone(), false).unwrap().run(&RunOptions::default()).unwrap();
    let model = Model::from_bytes(&std::fs::read(&report.model).unwrap()).unwrap();
    assert_eq!(model.tokenizer().kind(), dkp_lstm::TokenizerKind::Char);
    let corpus = Corpus::load(cfg.data.as_ref().unwrap()).unwrap();
    assert!(
        report.test_ppl < corpus.tokenizer.len() as f64,
        "{} over {} chars",
        report.test_ppl,
        corpus.tokenizer.len()
    );
    let runtime = Session::new(model).perplexity(&corpus.test.text).unwrap().perplexity;
    assert!((runtime / report.test_ppl - 1.0).abs() < 1e-3, "runtime {runtime} vs trainer {}", report.test_ppl);
}

#[test]
fn bad_inputs_are_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 50);
    let runs = dir.path().join("runs");
    // Missing and empty data files.
    let mut cfg = tiny_config(data.clone(), &runs, WeightKind::Dense);
    std::fs::write(dir.path().join("valid.txt"), " \n").unwrap();
    let e = Trainer::new(cfg.clone(), false).err().unwrap().to_string();
    assert!(e.contains("valid.txt") && e.contains("empty"), "{e}");
    std::fs::remove_file(dir.path().join("valid.txt")).unwrap();
    let e = Trainer::new(cfg.clone(), false).err().unwrap();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("valid.txt"), "{e}");
    write_corpus(dir.path(), 50);
    // An unreachable compression factor.
    cfg.lstm.kind = WeightKind::LowRank;
    cfg.lstm.cf = 1000.0;
    let e = Trainer::new(cfg.clone(), false).err().unwrap().to_string();
    assert!(e.contains("cannot build") && e.contains("1000"), "{e}");
    assert!(!runs.exists(), "nothing is written before training starts");
    // Resuming without, with a corrupt, and with a mismatched checkpoint.
    cfg.lstm.kind = WeightKind::Dense;
    assert!(Trainer::new(cfg.clone(), true).err().unwrap().to_string().contains("nothing to resume"));
    cfg.max_steps = Some(3);
    Trainer::new(cfg.clone(), false).unwrap().run(&RunOptions::default()).unwrap();
    let mut other = cfg.clone();
    other.model.hidden = 9;
    let e = Trainer::new(other, true).err().unwrap().to_string();
    assert!(e.contains("different configuration") && e.contains("model"), "{e}");
    // A new budget resumes when the epochs trained so far (epoch 0) keep their rate …
    let mut longer = cfg.clone();
    longer.epochs += 5;
    longer.optim.decay_after = 2;
    longer.optim.lr_decay = 0.9;
    Trainer::new(longer, true).unwrap();
    // … and is refused when it would have trained them at another one.
    let mut earlier = cfg.clone();
    earlier.optim.decay_after = 0;
    let e = Trainer::new(earlier, true).err().unwrap().to_string();
    assert!(e.contains("different configuration") && e.contains("optim"), "{e}");
    let ckpt = runs.join("t/checkpoint.safetensors");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x11;
    std::fs::write(&ckpt, &bytes).unwrap();
    let e = Trainer::new(cfg.clone(), true).err().unwrap().to_string();
    assert!(e.contains("corrupt"), "{e}");
}

#[test]
fn compress_decomposes_a_dense_model_and_rejects_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_corpus(dir.path(), 200);
    let mut cfg = tiny_config(data, &dir.path().join("runs"), WeightKind::Dense);
    cfg.model.hidden = 16;
    cfg.epochs = 2;
    let report = Trainer::new(cfg.clone(), false).unwrap().run(&RunOptions::default()).unwrap();
    let out = dir.path().join("small.safetensors");
    let args = |model: &std::path::Path, epochs: usize| dkp_train::cli::CompressArgs {
        model: model.to_path_buf(),
        cf: 4.0,
        out: out.clone(),
        finetune_epochs: epochs,
        data: Some(dir.path().to_path_buf()),
        with_indices: false,
        lr: 0.1,
        dropout: 0.0,
        seed: 1,
        max_eval_tokens: None,
        quiet: true,
    };
    let r = dkp_train::cli::run_compress(&args(&report.model, 1)).unwrap();
    let (before, decomposed, tuned) = (r.ppl_before.unwrap(), r.ppl_decomposed.unwrap(), r.ppl_finetuned.unwrap());
    assert!((before / report.test_ppl - 1.0).abs() < 1e-4);
    assert!(tuned <= decomposed * 1.01, "fine-tuning: {decomposed} → {tuned}");
    assert!(r.lstm_cf[0] > 3.5, "{:?}", r.lstm_cf);
    let m = Model::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(m.layers()[0].weights()[0].1.matrix.kind(), dkp_lstm::WeightKind::Dkp);
    assert!(m.provenance().to_map().unwrap()["compression"]["test_ppl_before"].as_f64().is_some());
    // A compressed model cannot be compressed again; nothing is written.
    std::fs::remove_file(&out).unwrap();
    let e = dkp_train::cli::run_compress(&args(&dir.path().join("small.finetune/model.safetensors"), 0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not dense") || e.contains("only dense"), "{e}");
    assert!(!out.exists());
}
