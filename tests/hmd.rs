//! HMD and doped-HMD files: the edges of the row split read back, and each malformed HMD
//! spec is refused at its field (the rules of `docs/format.md`).

use dkp_lstm::matrix::{Dense, Hmd, LowRank, Matrix};
use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{Error, Gates, MatVec, Model, Session, Weight, WeightKind};
use serde_json::{json, Value};

/// A small model (hidden 8, 20 tokens, fused gates) whose LSTM gates and output
/// projection are of `kind`.
fn model(kind: WeightKind) -> Model {
    let spec = RandomSpec {
        kind,
        cf: 3.0,
        output_kind: kind,
        output_cf: 2.0,
        hidden: 8,
        vocab: 20,
        seed: 11,
        ..RandomSpec::default()
    };
    random_model(&spec).unwrap()
}

/// `bytes` with its config edited by `edit`; the tensors are left as they are.
fn with_config(bytes: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let slot = &mut header["__metadata__"]["config"];
    let mut config: Value = serde_json::from_str(slot.as_str().unwrap()).unwrap();
    edit(&mut config);
    *slot = Value::String(config.to_string());
    let mut text = serde_json::to_vec(&header).unwrap();
    text.resize(text.len().next_multiple_of(8), b' ');
    [&(text.len() as u64).to_le_bytes()[..], &text, &bytes[8 + n..]].concat()
}

/// The field and reason of an invalid-config error.
fn invalid(bytes: &[u8]) -> (String, String) {
    match Model::from_bytes(bytes) {
        Err(Error::InvalidConfig { field, reason }) => (field, reason),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn planned_hmd_models_split_rows_as_the_spec_says() {
    for kind in [WeightKind::Hmd, WeightKind::DHmd] {
        let m = model(kind);
        let spec = m.config().layers[0].w.clone().unwrap();
        assert_eq!(spec.kind, kind);
        let (d, r) = (spec.dense_rows.unwrap(), spec.rank.unwrap());
        assert!(d >= 1 && d < spec.rows && r >= 1, "{spec:?}");
        assert_eq!(spec.nnz.is_some(), kind == WeightKind::DHmd);
        // Rows 0..d of W are the dense block; the rest is U·V.
        let Gates::Fused(w) = &m.layers()[0].gates else { panic!("split gates") };
        let base = match &w.matrix {
            Matrix::Doped(doped) => doped.base(),
            other => other,
        };
        let Matrix::Hmd(h) = base else { panic!("{base:?} is not an HMD") };
        let mut row = vec![0.0; spec.cols];
        h.row(d - 1, &mut row);
        assert_eq!(row, h.dense().row_slice(d - 1));
        h.row(d, &mut row);
        let mut first_low = vec![0.0; spec.cols];
        h.low_rank().row(0, &mut first_low);
        assert_eq!(row, first_low);
        let info = m.info();
        let w = info.weights.iter().find(|w| w.name == "layers.0.w").unwrap();
        assert!(w.detail.contains(&format!("{d} dense rows, rank {r}")), "{}", w.detail);
        assert_eq!(w.values, d * spec.cols + r * (spec.rows - d + spec.cols) + spec.nnz.unwrap_or(0));
    }
}

#[test]
fn no_dense_rows_and_a_single_low_rank_row_round_trip() {
    let m = model(WeightKind::Hmd);
    let cols = m.output().matrix.cols();
    let vocab = m.vocab_size();
    let values = |n: usize| (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect::<Vec<_>>();
    let dense = |r: usize, c: usize| Dense::new(r, c, values(r * c)).unwrap();
    // All rows low rank (an empty `d` tensor), and all rows but one dense.
    for (d, rank) in [(0, 3), (vocab - 1, 1)] {
        let low = LowRank::new(dense(vocab - d, rank), dense(rank, cols)).unwrap();
        let output = Weight::f32(Matrix::Hmd(Hmd::new(dense(d, cols), low).unwrap()));
        let e = m.embedding().clone();
        let m = Model::new(
            m.tokenizer().clone(),
            e,
            m.layers().to_vec(),
            output,
            m.output_bias().to_vec(),
            Default::default(),
        )
        .unwrap();
        let bytes = m.to_bytes().unwrap();
        let back = Model::from_bytes(&bytes).unwrap();
        assert_eq!(back.output(), m.output(), "dense_rows {d}");
        assert_eq!(back.config().output.dense_rows, Some(d));
        let (mut a, mut b) = (Session::new(m), Session::new(back));
        a.feed_text("the cat");
        b.feed_text("the cat");
        assert_eq!(a.log_probs(), b.log_probs());
    }
}

#[test]
fn malformed_hmd_specs_are_refused_at_their_field() {
    let m = model(WeightKind::Hmd);
    let bytes = m.to_bytes().unwrap();
    let spec = m.config().layers[0].w.clone().unwrap();
    let (rows, cols, d) = (spec.rows, spec.cols, spec.dense_rows.unwrap());
    let w = |c: &mut Value| c["layers"][0]["w"].as_object_mut().unwrap().clone();
    let set = |key: &'static str, v: Value| {
        with_config(&bytes, move |c| {
            c["layers"][0]["w"][key] = v;
        })
    };
    assert_eq!(
        invalid(&set("dense_rows", json!(rows))),
        ("layers.0.w.dense_rows".into(), format!("{rows} is outside 0..={}", rows - 1))
    );
    assert_eq!(invalid(&set("rank", json!(0))).0, "layers.0.w.rank");
    // The rank is bounded by the low-rank block's rows, not the matrix's.
    let low_rows = 1;
    let both = with_config(&bytes, |c| {
        c["layers"][0]["w"]["dense_rows"] = json!(rows - low_rows);
        c["layers"][0]["w"]["rank"] = json!(2);
    });
    assert_eq!(invalid(&both), ("layers.0.w.rank".into(), "2 is outside 1..=1".into()));
    let missing = with_config(&bytes, |c| {
        let mut spec = w(c);
        spec.remove("dense_rows");
        c["layers"][0]["w"] = Value::Object(spec);
    });
    assert_eq!(invalid(&missing), ("layers.0.w.dense_rows".into(), "required for kind `hmd`".into()));
    // A valid split that the tensors do not have.
    match Model::from_bytes(&set("dense_rows", json!(d + 1))) {
        Err(Error::ShapeMismatch { name, expected, found }) => {
            assert_eq!((name.as_str(), expected, found), ("layers.0.w.d", vec![d + 1, cols], vec![d, cols]));
        }
        other => panic!("{other:?}"),
    }
    // A doped HMD needs its `nnz`, and an HMD file read as low rank misses its `u` rows.
    let doped = model(WeightKind::DHmd).to_bytes().unwrap();
    let no_nnz = with_config(&doped, |c| {
        let mut spec = w(c);
        spec.remove("nnz");
        c["layers"][0]["w"] = Value::Object(spec);
    });
    assert_eq!(invalid(&no_nnz), ("layers.0.w.nnz".into(), "required for kind `dhmd`".into()));
    assert!(matches!(
        Model::from_bytes(&set("kind", json!("lowrank"))),
        Err(Error::ShapeMismatch { name, .. }) if name == "layers.0.w.u"
    ));
}
