"""Cross-checks docs/format.md against an independent implementation.

Writes small models the way docs/format.md tells a PyTorch user to (with
safetensors.numpy instead of torch, same tensors and metadata), computes the
perplexity of a text with a from-scratch NumPy LSTM, and checks that
`dkp eval` on the written files agrees. Covers gate order, the fused and split
gate layouts, the Kronecker convention, CSR doping, F16 storage and tied
embeddings.

Usage: python3 scripts/check_python_export.py PATH/TO/dkp
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

VOCAB = ["<unk>", "<eos>", "the", "cat", "sat", "on", "mat", "a", "dog", "N"]
TEXT = "the cat sat on the mat\na dog sat on N mats\nthe cat\n"


def encode(text):
    ids = []
    for line in text.split("\n")[:-1]:
        ids += [VOCAB.index(w) if w in VOCAB else 0 for w in line.split()] + [1]
    return ids


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def perplexity(emb, layers, out_w, out_b, ids):
    """layers: list of (w_full 4H x (I+H), bias 4H). Feeds <eos> first, scores every id."""
    hs = [np.zeros(b.shape[0] // 4) for _, b in layers]
    cs = [np.zeros_like(h) for h in hs]
    nll = 0.0
    for prev, tok in zip([1] + ids[:-1], ids):
        x = emb[prev]
        for i, (w, b) in enumerate(layers):
            hd = hs[i].shape[0]
            z = w @ np.concatenate([x, hs[i]]) + b
            ig, fg, gg, og = sigmoid(z[:hd]), sigmoid(z[hd:2 * hd]), np.tanh(z[2 * hd:3 * hd]), sigmoid(z[3 * hd:])
            cs[i] = fg * cs[i] + ig * gg
            hs[i] = og * np.tanh(cs[i])
            x = hs[i]
        logits = out_w @ x + out_b
        logp = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
        nll -= logp[tok]
    return float(np.exp(nll / len(ids)))


def csr(dense):
    rows, cols = np.nonzero(dense)
    row_ptr = np.zeros(dense.shape[0] + 1, dtype=np.int32)
    np.add.at(row_ptr, rows + 1, 1)
    return dense[rows, cols].astype(np.float32), cols.astype(np.int32), np.cumsum(row_ptr).astype(np.int32)


def quantise_rows(values, bounds, qmax):
    """docs/format.md, int8 and int4 values: per row a scale (here the row's largest
    magnitude), q = round(v / scale * qmax); the value read is scale * fl32(q / qmax)."""
    q = np.zeros(len(values), np.int8)
    scale = np.zeros(len(bounds) - 1, np.float32)
    for r in range(len(bounds) - 1):
        row = values[bounds[r]:bounds[r + 1]]
        scale[r] = np.abs(row).max() if len(row) else 0
        if scale[r] > 0:
            q[bounds[r]:bounds[r + 1]] = np.clip(np.round(row / scale[r] * qmax), -qmax, qmax)
    rows = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    return q, scale, scale[rows] * (q.astype(np.float32) / np.float32(qmax))


def pack4(q):
    """docs/format.md, int4 values: two a byte, the first in the low nibble."""
    q = np.append(q, np.int8(0)) if len(q) % 2 else q
    n = q.astype(np.int16) & 0xF
    return (n[0::2] | (n[1::2] << 4)).astype(np.uint8)


def col_gaps(col_idx, row_ptr):
    """docs/format.md, s.col_gap: each entry's distance from the previous one in its row,
    a gap g written as g // 255 bytes of 255 and then g % 255."""
    out = []
    for r in range(len(row_ptr) - 1):
        prev = 0
        for c in col_idx[row_ptr[r]:row_ptr[r + 1]]:
            g, prev = int(c) - prev, int(c)
            out += [255] * (g // 255) + [g % 255]
    return np.array(out, np.uint8)


def build(rng, variant):
    v, e, h = len(VOCAB), 8, 6
    f32 = lambda *s: rng.uniform(-0.5, 0.5, s).astype(np.float32)
    t, layers, specs = {}, [], []
    dtype = np.float16 if variant == "f16" else np.float32
    tied = variant == "tied"
    e = h if tied else e
    out_w, out_b = f32(v, h), f32(v)
    emb = out_w if tied else f32(v, e)
    if not tied:
        t["embedding.weight"] = emb.astype(dtype)
    # Layer 0: doped Kronecker, fused gates; 4H x (E+H) = (4x2) kron (6 x (E+H)/2).
    n2 = (e + h) // 2
    a, b = f32(4, 2), f32(6, n2)
    s = f32(4 * h, e + h) * (rng.uniform(size=(4 * h, e + h)) < 0.1)
    if variant == "f16":
        a, b, s = (m.astype(np.float16).astype(np.float32) for m in (a, b, s))
    values, col_idx, row_ptr = csr(s)
    t.update({"layers.0.w.a": a.astype(dtype), "layers.0.w.b": b.astype(dtype),
              "layers.0.w.s.values": values.astype(dtype), "layers.0.w.s.col_idx": col_idx,
              "layers.0.w.s.row_ptr": row_ptr, "layers.0.bias": f32(4 * h)})
    # The doped layer's values quantised: int8 with absmaxes, or int4 packed with scales
    # and S's columns as gaps; the reference computes with the values as the format reads them.
    if variant in ("i8", "i4"):
        qmax = 127 if variant == "i8" else 7
        parts = [("layers.0.w.a", a, np.arange(0, a.size + 1, a.shape[1])),
                 ("layers.0.w.b", b, np.arange(0, b.size + 1, b.shape[1])),
                 ("layers.0.w.s.values", values, row_ptr)]
        for name, m, bounds in parts:
            q, scale, read = quantise_rows(m.reshape(-1), bounds, qmax)
            if variant == "i8":
                t[name], t[name + ".absmax"] = q.reshape(m.shape), scale
            else:
                t[name], t[name + ".scale"] = pack4(q), scale
            if name.endswith(".a"):
                a = read.reshape(a.shape)
            elif name.endswith(".b"):
                b = read.reshape(b.shape)
            else:
                s = np.zeros_like(s)
                s[np.repeat(np.arange(4 * h), np.diff(row_ptr)), col_idx] = read
        if variant == "i4":
            t["layers.0.w.s.col_gap"] = col_gaps(col_idx, row_ptr)
            del t["layers.0.w.s.col_idx"]
    w0 = np.kron(a, b) + s
    layer0_dtype = {"f16": "F16", "i8": "I8", "i4": "I4"}.get(variant, "F32")
    specs.append({"input": e, "hidden": h, "w": {"kind": "dkp", "rows": 4 * h, "cols": e + h,
                  "dtype": layer0_dtype, "a": [4, 2], "b": [6, n2], "nnz": int(values.size)}})
    layers.append((w0, t["layers.0.bias"]))
    # Layer 1: dense, split gates (as PyTorch's weight_ih / weight_hh).
    w_ih, w_hh = f32(4 * h, h), f32(4 * h, h)
    t.update({"layers.1.w_ih.weight": w_ih.astype(dtype), "layers.1.w_hh.weight": w_hh.astype(dtype),
              "layers.1.bias": f32(4 * h)})
    if variant == "f16":
        w_ih, w_hh = w_ih.astype(np.float16).astype(np.float32), w_hh.astype(np.float16).astype(np.float32)
    dt = "F16" if variant == "f16" else "F32"
    specs.append({"input": h, "hidden": h, "w_ih": {"kind": "dense", "rows": 4 * h, "cols": h, "dtype": dt},
                  "w_hh": {"kind": "dense", "rows": 4 * h, "cols": h, "dtype": dt}})
    layers.append((np.concatenate([w_ih, w_hh], axis=1), t["layers.1.bias"]))
    t["output.weight"], t["output.bias"] = out_w.astype(dtype), out_b
    if variant == "f16":
        out_w = out_w.astype(np.float16).astype(np.float32)
        emb = emb.astype(np.float16).astype(np.float32)
    config = {
        "architecture": "lstm-lm",
        "tokenizer": {"kind": "word", "unk": "<unk>", "eos": "<eos>", "tokens": VOCAB},
        "embedding": {"kind": "tied"} if tied else {"kind": "dense", "rows": v, "cols": e, "dtype": dt},
        "layers": specs,
        "output": {"kind": "dense", "rows": v, "cols": h, "dtype": dt},
        "provenance": {"trained": False, "method": "python export check"},
    }
    meta = {"format": "dkp-lstm", "format_version": "1", "config": json.dumps(config)}
    return t, meta, perplexity(emb, layers, out_w, out_b, encode(TEXT))


def main():
    dkp = sys.argv[1]
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as d:
        text = Path(d) / "text.txt"
        text.write_text(TEXT)
        for variant in ["f32", "f16", "tied", "i8", "i4"]:
            tensors, meta, expected = build(rng, variant)
            path = Path(d) / f"{variant}.safetensors"
            save_file(tensors, str(path), metadata=meta)
            out = subprocess.run([dkp, "eval", str(path), "--text", str(text), "--json"],
                                 check=True, capture_output=True, text=True).stdout
            got = json.loads(out)["perplexity"]
            ok = abs(got - expected) <= 1e-4 * expected
            print(f"{variant}: numpy {expected:.6f}  dkp eval {got:.6f}  {'ok' if ok else 'MISMATCH'}")
            if not ok:
                sys.exit(1)


if __name__ == "__main__":
    main()
