#!/usr/bin/env python3
"""The PTB results tables of docs/results.md (2×200 and 2×650), measured from the model files.

Every figure comes from the `dkp` CLI on the file itself: `dkp eval --json` on
ptb.valid.txt and ptb.test.txt, `dkp info --json` for parameters, indices and bytes,
`dkp bench --json` for native per-token latency (the lowest median of five rounds that
take every model in turn). Runs whose model file does not exist yet are listed as such;
a row whose file is gone (runs/ does not always survive a change of machine) keeps the
line the document already has. Measurements are cached in runs/results-cache.json, keyed
by the file's size and modification time, so rerunning after one more run finishes only
measures that one (`--rebench` times every file again).

    python3 scripts/results.py                         # print the table
    python3 scripts/results.py --write docs/results.md # replace the table there
    python3 scripts/results.py --rebench --write docs/results.md

Latency is machine-dependent: run it with nothing else busy (pause training runs with
`kill -STOP`, resume them with `kill -CONT`).
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "ptb")
CACHE = os.path.join(ROOT, "runs", "results-cache.json")

# (label, model file relative to the repository root, how it was made)
ROWS_2X200 = [
    ("Dense 2×200 (baseline)", "runs/dense-2x200/model.safetensors", "`experiments/dense-2x200.toml`"),
    ("DKP 10x, CMR element", "runs/dkp-10x-cmr/model.safetensors", "`experiments/dkp-10x-cmr.toml`"),
    ("DKP 25x, CMR element 0.5", "runs/dkp-25x-cmr/model.safetensors", "`experiments/dkp-25x-cmr.toml`"),
    ("DKP 25x, CMR element 0.3", "runs/dkp-25x-cmr-element-0.3/model.safetensors", "`experiments/dkp-25x-cmr-element-0.3.toml`"),
    ("DKP 25x, CMR whole term", "runs/dkp-25x-cmr-term/model.safetensors", "`experiments/dkp-25x-cmr-term.toml`"),
    ("DKP 25x, no CMR (CMA ablation)", "runs/dkp-25x-nocmr/model.safetensors", "`experiments/dkp-25x-nocmr.toml`"),
    ("DKP 25x, no CMR, 13 epochs", "runs/dkp-25x-nocmr-13ep/model.safetensors", "`experiments/dkp-25x-nocmr-13ep.toml`"),
    ("Magnitude pruning 25x", "runs/pruned-25x/model.safetensors", "`experiments/pruned-25x.toml`"),
    ("Magnitude pruning 25x, 13 epochs", "runs/pruned-25x-13ep/model.safetensors", "`experiments/pruned-25x-13ep.toml`"),
    ("Low-rank (LMF) 25x", "runs/lowrank-25x/model.safetensors", "`experiments/lowrank-25x.toml` (lr 0.2)"),
    ("Plain KP 25x", "runs/kp-25x/model.safetensors", "`experiments/kp-25x.toml` (lr 0.2)"),
    ("Post-training DKP 25x, decomposed + 1 epoch", "runs/post-dkp25/model.safetensors", "`dkp compress --cf 25 --finetune-epochs 1`"),
    ("Whole model ≤ 1 MB, v1", "runs/whole-model-1mb/model.safetensors", "`experiments/whole-model-1mb.toml`"),
    ("Whole model ≤ 1 MB, v2 (demo)", "runs/whole-model-1mb-v2/model.safetensors", "`experiments/whole-model-1mb-v2.toml`"),
]

# Zaremba's medium model on one session's budget (docs/results.md, "The paper's scale"),
# with Thakker et al.'s figures at 25x beside each method (test perplexity against their
# dense medium model).
ROWS_2X650 = [
    ("Dense 2×650 (baseline)", "runs/dense-2x650/model.safetensors", "`experiments/dense-2x650.toml`", "test 82.7 (Zaremba)"),
    ("DKP 25x, no CMR", "runs/dkp-25x-2x650-nocmr/model.safetensors", "`experiments/dkp-25x-2x650-nocmr.toml`", "– (with CMR: +1.4 %)"),
    ("Magnitude pruning 25x", "runs/pruned-25x-2x650/model.safetensors", "`experiments/pruned-25x-2x650.toml`", "+7.9 %"),
    ("DKP 25x, CMR per element", "runs/dkp-25x-2x650-cmr-element/model.safetensors", "`experiments/dkp-25x-2x650-cmr-element.toml`", "+1.4 %"),
    ("DKP 25x, CMR on the whole term", "runs/dkp-25x-2x650-cmr-term/model.safetensors", "`experiments/dkp-25x-2x650-cmr-term.toml`", "–"),
    ("Low-rank (LMF) 25x", "runs/lowrank-25x-2x650/model.safetensors", "`experiments/lowrank-25x-2x650.toml`", "+27 %"),
    ("Kronecker (KP) 25x", "runs/kp-25x-2x650/model.safetensors", "`experiments/kp-25x-2x650.toml`", "–"),
    ("DKP 25x, no CMR, early anneal", "runs/dkp-25x-2x650-early/model.safetensors", "`experiments/dkp-25x-2x650-early.toml`", "–"),
    ("HMD 25x", "runs/hmd-25x-2x650/model.safetensors", "`experiments/hmd-25x-2x650.toml`", "+15 %"),
    ("Doped HMD 25x, no CMR", "runs/dhmd-25x-2x650/model.safetensors", "`experiments/dhmd-25x-2x650.toml`", "–"),
    ("DKP 25x, no CMR, late anneal", "runs/dkp-25x-2x650-late/model.safetensors", "`experiments/dkp-25x-2x650-late.toml`", "–"),
    ("Magnitude pruning 25x, late anneal", "runs/pruned-25x-2x650-late/model.safetensors", "`experiments/pruned-25x-2x650-late.toml`", "–"),
    ("DKP 25x, no CMR, late anneal, seed 2", "runs/dkp-25x-2x650-late-seed2/model.safetensors", "`experiments/dkp-25x-2x650-late-seed2.toml`", "–"),
    ("Magnitude pruning 25x, late anneal, seed 2", "runs/pruned-25x-2x650-late-seed2/model.safetensors", "`experiments/pruned-25x-2x650-late-seed2.toml`", "–"),
    ("Doped HMD 25x, no CMR, S at lr 1", "runs/dhmd-25x-2x650-s5/model.safetensors", "`experiments/dhmd-25x-2x650-s5.toml`", "–"),
    ("DKP 25x, no CMR, late anneal, distilled from dense", "runs/dkp-25x-2x650-late-distill/model.safetensors", "`experiments/dkp-25x-2x650-late-distill.toml`", "–"),
    ("Magnitude pruning 25x, late anneal, distilled from dense", "runs/pruned-25x-2x650-late-distill/model.safetensors", "`experiments/pruned-25x-2x650-late-distill.toml`", "–"),
    ("Dense 2×650, distilled from itself", "runs/dense-2x650-distill/model.safetensors", "`experiments/dense-2x650-distill.toml`", "–"),
    ("DKP 25x, no CMR, late anneal, dropout 0.3", "runs/dkp-25x-2x650-late-drop03/model.safetensors", "`experiments/dkp-25x-2x650-late-drop03.toml`", "–"),
    ("Magnitude pruning 25x, late anneal, dropout 0.3", "runs/pruned-25x-2x650-late-drop03/model.safetensors", "`experiments/pruned-25x-2x650-late-drop03.toml`", "–"),
    ("Dense 2×650, dropout 0.3", "runs/dense-2x650-drop03/model.safetensors", "`experiments/dense-2x650-drop03.toml`", "–"),
]

# The same model on a 16-epoch budget (docs/results.md, "A longer budget"): a table of its
# own, so that each method is compared with the dense model of its own budget.
ROWS_2X650_16EP = [
    ("Dense 2×650, 16 epochs (baseline)", "runs/dense-2x650-16ep/model.safetensors", "`experiments/dense-2x650-16ep.toml`", "test 82.7 (Zaremba)"),
    ("DKP 25x, no CMR, 16 epochs", "runs/dkp-25x-2x650-16ep/model.safetensors", "`experiments/dkp-25x-2x650-16ep.toml`", "– (with CMR: +1.4 %)"),
    ("Magnitude pruning 25x, 16 epochs", "runs/pruned-25x-2x650-16ep/model.safetensors", "`experiments/pruned-25x-2x650-16ep.toml`", "+7.9 %"),
    ("DKP 25x, no CMR, 16 epochs, distilled from dense", "runs/dkp-25x-2x650-16ep-distill/model.safetensors", "`experiments/dkp-25x-2x650-16ep-distill.toml`", "–"),
    ("Magnitude pruning 25x, 16 epochs, distilled from dense", "runs/pruned-25x-2x650-16ep-distill/model.safetensors", "`experiments/pruned-25x-2x650-16ep-distill.toml`", "–"),
    ("DKP 25x, no CMR, 16 epochs, dropout 0.3, distilled from dense", "runs/dkp-25x-2x650-16ep-drop03-distill/model.safetensors", "`experiments/dkp-25x-2x650-16ep-drop03-distill.toml`", "–"),
    ("Magnitude pruning 25x, 16 epochs, dropout 0.3, distilled from dense", "runs/pruned-25x-2x650-16ep-drop03-distill/model.safetensors", "`experiments/pruned-25x-2x650-16ep-drop03-distill.toml`", "–"),
]

# (markers in the document, rows; the first row is the baseline the others are compared with)
TABLES = [("results", ROWS_2X200), ("results-2x650", ROWS_2X650), ("results-2x650-16ep", ROWS_2X650_16EP)]


def dkp(binary, *args):
    out = subprocess.run([binary, *args, "--json"], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)


def measure(binary, path, cache):
    st = os.stat(os.path.join(ROOT, path))
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    if key not in cache:
        print(f"scoring {path}", file=sys.stderr)
        info = dkp(binary, "info", path)
        test = dkp(binary, "eval", path, "--text", os.path.join(DATA, "ptb.test.txt"), "--no-progress")
        valid = dkp(binary, "eval", path, "--text", os.path.join(DATA, "ptb.valid.txt"), "--no-progress")
        recorded = info["provenance"].get("test_ppl")
        if recorded is not None and abs(recorded - test["perplexity"]) > 1e-6 * recorded:
            print(f"warning: {path} records test_ppl {recorded}, dkp eval gives {test['perplexity']}", file=sys.stderr)
        cache[key] = {
            "valid": valid["perplexity"],
            "test": test["perplexity"],
            "epochs": info["provenance"].get("epochs"),
            "best_epoch": info["provenance"].get("best_epoch"),
            "params": info["params"],
            "indices": sum(info[p]["indices"] for p in ("lstm", "embedding", "output", "biases") if isinstance(info.get(p), dict)),
            "lstm": info["lstm"],
            "file_bytes": info["file_bytes"],
        }
    return cache[key]


def bench(binary, results, rebench, rounds=5):
    """Per-token latencies: the lowest median of `rounds` benchmarks of each model. The
    rounds take every model in turn, so that a slow spell of this shared machine (other
    tenants only ever add time) falls on all models alike and the ratios hold."""
    todo = [p for p, r in results.items() if rebench or "lstm_us" not in r]
    for path in todo:
        results[path]["lstm_us"] = results[path]["total_us"] = float("inf")
    for i in range(rounds if todo else 0):
        print(f"benchmark round {i + 1} of {rounds}: {len(todo)} models", file=sys.stderr)
        for path in todo:
            b = dkp(binary, "bench", path, "--tokens", "2000", "--warmup", "200")
            r = results[path]
            r["lstm_us"] = min(r["lstm_us"], b["lstm_us_per_token"])
            r["total_us"] = min(r["total_us"], b["us_per_token"])


def progress(path):
    """How far the run that will write `path` has got, from its metrics.jsonl."""
    metrics = os.path.join(ROOT, os.path.dirname(path), "metrics.jsonl")
    if not os.path.exists(metrics):
        return "not run yet"
    epochs = sum(1 for line in open(metrics) if '"type":"valid"' in line)
    return f"training ({epochs} epoch{'s' if epochs != 1 else ''} done)"


def save(cache):
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    json.dump(cache, open(CACHE, "w"), indent=1)


def markers(name):
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def kept_lines(doc, name):
    """The rows of the table `name` in the document, by their first cell."""
    if doc is None:
        return {}
    begin, end = markers(name)
    block = doc.split(begin, 1)[-1].split(end, 1)[0] if begin in doc else ""
    rows = (line for line in block.splitlines() if line.startswith("| "))
    # A row that said how far a run had got is not a result to keep.
    return {
        line.split(" | ", 1)[0][2:]: line
        for line in rows
        if not line.split(" | ")[1].startswith(("training (", "not run yet"))
    }


def kept_base(line, head):
    """The baseline's test perplexity and parameter count from its kept row, for when its
    run directory is gone (runs/ does not always survive a session) but later rows are new."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return {"test": float(cells[head.index("test ppl")]), "params": int(cells[head.index("params")].replace(",", ""))}


def table(results, rows, kept):
    paper = len(rows[0]) > 3
    head = [
        "method", "valid ppl", "test ppl", "test vs dense", *(["paper (medium, 39 epochs)"] if paper else []),
        "LSTM CF", "LSTM CF+idx", "model CF", "model CF+idx", "params", "file bytes",
        "µs/token LSTM", "µs/token all", "made by",
    ]
    base = results.get(rows[0][1])
    if base is None and rows[0][0] in kept:
        base = kept_base(kept[rows[0][0]], head)
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for label, path, how, *theirs in rows:
        r = results.get(path)
        if r is None:
            if not os.path.exists(os.path.join(ROOT, os.path.dirname(path))) and label in kept:
                lines.append(kept[label])
            else:
                lines.append(f"| {label} | {progress(path)} |" + " |" * (len(head) - 3) + f" {how} |")
            continue
        lstm = r["lstm"]
        delta = f"{100 * (r['test'] / base['test'] - 1):+.1f} %".replace("-", "−") if base else "–"
        # The whole model is compared with the dense baseline's parameter count.
        dense = base["params"] if base else float("nan")
        n = r.get("epochs")
        epochs = f", {n} epoch{'s' if n != 1 else ''} (best: {r['best_epoch']})" if n else ""
        lines.append("| " + " | ".join([
            label,
            f"{r['valid']:.2f}",
            f"{r['test']:.2f}",
            delta,
            *theirs,
            f"{lstm['cf']:.1f}",
            f"{lstm['cf_with_indices']:.1f}",
            f"{dense / r['params']:.2f}",
            f"{dense / (r['params'] + r['indices']):.2f}",
            f"{r['params']:,}",
            f"{r['file_bytes']:,}",
            f"{r['lstm_us']:.1f}",
            f"{r['total_us']:.1f}",
            how + epochs,
        ]) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dkp", default=os.path.join(ROOT, "target", "release", "dkp"), help="the dkp binary")
    ap.add_argument("--write", metavar="MD", help="replace the table between the results markers in this file")
    ap.add_argument("--rebench", action="store_true", help="benchmark again even where the cache has latencies")
    args = ap.parse_args()
    cache = json.load(open(CACHE)) if os.path.exists(CACHE) else {}
    results = {}
    for _, rows in TABLES:
        for path in (row[1] for row in rows):
            if os.path.exists(os.path.join(ROOT, path)):
                results[path] = measure(args.dkp, path, cache)
                save(cache)
    bench(args.dkp, results, args.rebench)
    save(cache)
    doc = open(args.write).read() if args.write else None
    for name, rows in TABLES:
        text = table(results, rows, kept_lines(doc, name))
        if doc is None:
            sys.stdout.write(text + "\n")
            continue
        begin, end = markers(name)
        if begin not in doc or end not in doc:
            sys.exit(f"{args.write} has no {begin} … {end} block")
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{text}{end}", doc, flags=re.S)
    if doc is not None:
        open(args.write, "w").write(doc)


if __name__ == "__main__":
    main()
