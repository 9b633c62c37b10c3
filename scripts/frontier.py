#!/usr/bin/env python3
"""The bytes–perplexity frontier of whole models: docs/frontier.csv → table + SVG plot.

docs/frontier.csv holds one row per model file of the project (dense and compressed,
every scale, every stored dtype): its file bytes, parameters, whole-model compression
factor (values and indices), PTB valid/test perplexity, per-token latency natively and in
WebAssembly, and how it was made. Rows are added by measuring a file (`dkp info --json`
for bytes, parameters and CF, `dkp eval --json` for perplexity, `dkp bench --json` for the
native median, the SIMD128 build's `Model.bench()` in Node for the wasm median, each the
lowest median of three rounds), so every figure is a file's own; rows of files that no
longer exist (the runs/ of earlier sessions) were entered from docs/results.md, where
they were measured the same way, and have no wasm latency. Latency needs a quiet machine:
pause training runs first (`kill -STOP`, then `kill -CONT`).

    python3 scripts/frontier.py --add "Whole model v3" runs/whole-model-v3/model.safetensors \\
        --scale 2x200 --made-by '`experiments/whole-model-v3.toml`'
    python3 scripts/frontier.py --speed "Whole model v2" www/models/whole-model-i8.safetensors  # re-time a row
    python3 scripts/frontier.py --write docs/results.md   # table between the markers + docs/figures/frontier.svg

The frontier is the set of models that no other model beats on both counts (no smaller
file with a lower test perplexity).
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV = os.path.join(ROOT, "docs", "frontier.csv")
SVG = os.path.join(ROOT, "docs", "figures", "frontier.svg")
DATA = os.path.join(ROOT, "..", "shared", "data", "ptb")
BEGIN, END = "<!-- frontier:begin -->", "<!-- frontier:end -->"
FIELDS = ["model", "scale", "dtype", "file_bytes", "params", "cf", "valid_ppl", "test_ppl", "us_native", "us_wasm", "made_by"]

# The wasm latency: the lowest median of three `bench(300)` rounds of the SIMD128 build.
NODE_BENCH = """
const [pkg, file] = process.argv.slice(1);
const { load } = await import(pkg + '/index.js');
const { Model } = await load({ simd: true });
const m = Model.load(require('node:fs').readFileSync(file));
m.bench(100);
const r = [0, 1, 2].map(() => m.bench(300).us_per_token);
console.log(JSON.stringify(Math.min(...r)));
"""


def read_rows():
    with open(CSV, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(rows):
    with open(CSV, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def dkp(binary, *args):
    out = subprocess.run([binary, *args, "--json"], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)


def speed(binary, path):
    native = min(dkp(binary, "bench", path, "--tokens", "1000")["us_per_token"] for _ in range(3))
    pkg = os.path.join(ROOT, "pkg")
    wasm = ""
    if os.path.isfile(os.path.join(pkg, "index.js")):
        out = subprocess.run(["node", "--input-type=commonjs", "-e", f"(async () => {{ {NODE_BENCH} }})()", pkg, path],
                             check=True, capture_output=True, text=True, cwd=ROOT)
        wasm = f"{float(out.stdout):.1f}"
    return {"us_native": f"{native:.1f}", "us_wasm": wasm}


def measure(binary, path):
    info = dkp(binary, "info", path)
    ppl = {s: dkp(binary, "eval", path, "--text", os.path.join(DATA, f"ptb.{s}.txt"))["perplexity"] for s in ("valid", "test")}
    dtypes = sorted({w["dtype"] for w in info.get("weights", []) if "dtype" in w}) or ["?"]
    return {
        "file_bytes": str(os.path.getsize(os.path.join(ROOT, path))),
        "params": str(info["params"]),
        "cf": f"{info['total_cf_with_indices']:.2f}",
        "valid_ppl": f"{ppl['valid']:.3f}",
        "test_ppl": f"{ppl['test']:.3f}",
        "dtype": "/".join(d.lower() for d in dtypes),
        **speed(binary, path),
    }


def frontier(rows):
    """Rows no other row beats on both bytes and test perplexity."""
    pts = [(int(r["file_bytes"]), float(r["test_ppl"])) for r in rows]
    return {
        i
        for i, (b, p) in enumerate(pts)
        if not any((b2 <= b and p2 < p) or (b2 < b and p2 <= p) for b2, p2 in pts)
    }


def table(rows):
    best = frontier(rows)
    out = [
        "| model | scale | stored as | file bytes | params | CF (with indices) | valid ppl | test ppl "
        "| µs/token native | µs/token wasm | frontier | made by |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|---|",
    ]
    order = sorted(range(len(rows)), key=lambda i: int(rows[i]["file_bytes"]))
    for i in order:
        r = rows[i]
        out.append(
            f"| {r['model']} | {r['scale']} | {r['dtype']} | {int(r['file_bytes']):,} | {int(r['params']):,} "
            f"| {r['cf'] or '–'} | {float(r['valid_ppl']):.2f} | {float(r['test_ppl']):.2f} "
            f"| {r['us_native'] or '–'} | {r['us_wasm'] or '–'} | {'★' if i in best else ''} | {r['made_by']} |"
        )
    return "\n".join(out)


def svg(rows):
    """Test perplexity against file bytes (log scale), the frontier as a step line."""
    W, H, L, R, T, B = 760, 440, 70, 20, 30, 60
    bytes_ = [int(r["file_bytes"]) for r in rows]
    ppl = [float(r["test_ppl"]) for r in rows]
    x0, x1 = math.floor(math.log10(min(bytes_))), math.ceil(math.log10(max(bytes_)))
    y0, y1 = 10 * math.floor(min(ppl) / 10 - 0.5), 10 * math.ceil(max(ppl) / 10 + 0.5)
    X = lambda b: L + (math.log10(b) - x0) / (x1 - x0) * (W - L - R)
    Y = lambda p: T + (y1 - p) / (y1 - y0) * (H - T - B)
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">PTB test perplexity against file bytes (★ frontier)</text>']
    for e in range(x0, x1 + 1):
        for m in (1, 2, 5):
            b = m * 10**e
            if 10**x0 <= b <= 10**x1:
                s.append(f'<line x1="{X(b):.1f}" y1="{T}" x2="{X(b):.1f}" y2="{H - B}" stroke="#ddd"/>')
                label = f"{b / 1e6:g} MB" if b >= 1e6 else f"{b / 1e3:g} KB"
                s.append(f'<text x="{X(b):.1f}" y="{H - B + 15}" text-anchor="middle">{label}</text>')
    for p in range(int(y0), int(y1) + 1, 10):
        s.append(f'<line x1="{L}" y1="{Y(p):.1f}" x2="{W - R}" y2="{Y(p):.1f}" stroke="#eee"/>')
        s.append(f'<text x="{L - 6}" y="{Y(p) + 4:.1f}" text-anchor="end">{p}</text>')
    s.append(f'<text x="{W / 2}" y="{H - 20}" text-anchor="middle">file bytes (log scale)</text>')
    s.append(f'<text x="16" y="{H / 2}" text-anchor="middle" transform="rotate(-90 16 {H / 2})">test perplexity</text>')
    best = sorted(frontier(rows), key=lambda i: bytes_[i])
    # The frontier as a staircase: the best perplexity a file of at most x bytes reaches.
    steps = []
    for k, i in enumerate(best):
        if k:
            steps.append(f"{X(bytes_[i]):.1f},{Y(ppl[best[k - 1]]):.1f}")
        steps.append(f"{X(bytes_[i]):.1f},{Y(ppl[i]):.1f}")
    steps.append(f"{W - R},{Y(ppl[best[-1]]):.1f}")
    s.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="#c33" stroke-width="1.5" stroke-dasharray="4 3"/>')
    colour = {"2x200": "#2a6fb0", "2x400": "#3a9a4a", "2x650": "#e08a1e"}
    for i, r in enumerate(rows):
        c = colour.get(r["scale"], "#555")
        filled = c if "dense" not in r["model"].lower() else "white"
        s.append(f'<circle cx="{X(bytes_[i]):.1f}" cy="{Y(ppl[i]):.1f}" r="{5 if i in best else 3.5}" fill="{filled}" stroke="{c}" stroke-width="1.5">'
                 f'<title>{r["model"]} ({r["dtype"]}): {bytes_[i]:,} bytes, test {ppl[i]:.2f}</title></circle>')
        if i in best:
            # Neighbours on the frontier alternate above and below; near the right edge the
            # label ends at its point, below it, clear of the labels of smaller files that
            # run to the right.
            k = best.index(i)
            x = X(bytes_[i])
            end = x > W - 220
            y = Y(ppl[i]) + (16 if end or k % 2 == 1 else -8)
            s.append(f'<text x="{x + (-7 if end else 7):.1f}" y="{y:.1f}" fill="#333" text-anchor="{"end" if end else "start"}">'
                     f'{r["model"]} ({r["dtype"]})</text>')
    legend = [("2×200", colour["2x200"]), ("2×400", colour["2x400"]), ("2×650", colour["2x650"])]
    for k, (name, c) in enumerate(legend):
        y = T + 12 + 16 * k
        s.append(f'<circle cx="{W - R - 120}" cy="{y}" r="4" fill="{c}"/><text x="{W - R - 110}" y="{y + 4}">{name} (hollow: dense)</text>')
    s.append("</svg>")
    return "\n".join(s) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--add", nargs=2, metavar=("LABEL", "MODEL_FILE"), help="measure a model file and add or replace its row")
    ap.add_argument("--speed", nargs=2, metavar=("LABEL", "MODEL_FILE"), help="re-time the row of LABEL and this file's dtype (and its CF)")
    ap.add_argument("--scale", default="2x200", help="with --add: 2x200, 2x400 or 2x650")
    ap.add_argument("--made-by", default="", help="with --add: how the file was made")
    ap.add_argument("--dkp", default=os.path.join(ROOT, "target", "release", "dkp"), help="the dkp binary")
    ap.add_argument("--write", metavar="MARKDOWN", help="replace the table between the frontier markers there and write docs/figures/frontier.svg")
    a = ap.parse_args()
    if a.add:
        label, path = a.add
        row = {"model": label, "scale": a.scale, "made_by": a.made_by, **measure(a.dkp, path)}
        # Read after measuring (minutes), so edits made meanwhile are kept.
        rows = [r for r in read_rows() if not (r["model"] == label and r["dtype"] == row["dtype"])] + [row]
        write_rows(rows)
    if a.speed:
        label, path = a.speed
        info = dkp(a.dkp, "info", path)
        dtype = "/".join(sorted({w["dtype"].lower() for w in info["weights"]}))
        new = {"cf": f"{info['total_cf_with_indices']:.2f}", **speed(a.dkp, path)}
        rows = read_rows()
        hit = [r for r in rows if r["model"] == label and r["dtype"] == dtype]
        if not hit:
            sys.exit(f"no row {label!r} stored as {dtype}")
        hit[0].update(new)
        write_rows(rows)
    rows = read_rows()
    if a.write:
        with open(a.write) as f:
            doc = f.read()
        if BEGIN not in doc or END not in doc:
            sys.exit(f"{a.write} has no {BEGIN} … {END} markers")
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        with open(a.write, "w") as f:
            f.write(f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}")
        with open(SVG, "w") as f:
            f.write(svg(rows))
    if not (a.add or a.speed or a.write):
        print(table(rows))


if __name__ == "__main__":
    main()
