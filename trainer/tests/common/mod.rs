//! Shared helpers: a generated word corpus with learnable structure and tiny configs.

use std::path::Path;

use dkp_train::config::{TrainConfig, WeightKind};
use dkp_train::data::DataSpec;
use dkp_train::rng::Rng;

/// Writes `train/valid/test.txt` of sentences drawn from a small grammar: a subject, a
/// verb that depends on it, an object, so the next word is predictable.
pub fn write_corpus(dir: &Path, train_lines: usize) -> DataSpec {
    let subjects = ["the cat", "a dog", "my friend", "the bird"];
    let verbs = ["eats", "chases", "sees", "likes"];
    let objects = ["fish", "the ball", "N apples", "a bone", "seeds"];
    let mut rng = Rng::new(42);
    let mut pick = |n: usize| rng.below(n);
    let mut text = |lines: usize| {
        let mut s = String::new();
        for _ in 0..lines {
            let i = pick(subjects.len());
            let o = (i + pick(2)) % objects.len();
            s.push_str(&format!(" {} {} {} \n", subjects[i], verbs[i], objects[o]));
        }
        s
    };
    let (train, valid, test) = (text(train_lines), text(40), text(40) + " the zebra eats fish \n");
    for (name, t) in [("train", train), ("valid", valid), ("test", test)] {
        std::fs::write(dir.join(format!("{name}.txt")), t).unwrap();
    }
    DataSpec::word_dir(dir).unwrap()
}

/// A tiny configuration on `data`, writing runs under `runs`.
pub fn tiny_config(data: DataSpec, runs: &Path, kind: WeightKind) -> TrainConfig {
    let mut c =
        TrainConfig { data: Some(data), runs_dir: runs.to_path_buf(), name: "t".into(), ..TrainConfig::default() };
    c.model.layers = 2;
    c.model.hidden = 8;
    c.model.embedding_dim = Some(6);
    c.batch_size = 4;
    c.bptt = 5;
    c.epochs = 2;
    c.log_every = 5;
    c.checkpoint_minutes = 0.0;
    c.lstm.kind = kind;
    c.lstm.cf = 2.0;
    c.doping.start_epoch = 0.0;
    c.doping.end_epoch = 1.0;
    c.doping.mask_every = 3;
    c
}
