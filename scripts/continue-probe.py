#!/usr/bin/env python3
"""Continues a probe run as the full run it is the beginning of.

A probe (`dkp train --config X --set … --max-steps N --name probe-…`) with the same settings
and seed as X's run computes exactly X's first N steps, so its checkpoint is that run's state
at step N; only the run's name differs, and `--resume` refuses a checkpoint of another
configuration. This copies the probe's checkpoint into the run's directory with the name
rewritten (the checkpoint's hash covers its tensors, not its description), its metrics up
to the checkpoint and its settings; then `dkp train --config X --resume` (or
scripts/campaign.sh) goes on.
Only the name is rewritten: if any other setting of the probe differs from X's (a rate probe
at 0.5 continued as a config at 0.25, say), `--resume` still refuses the checkpoint.

    python3 scripts/continue-probe.py runs/probe-cmr-term-0.25 experiments/dkp-25x-2x650-cmr-term.toml
"""
import json
import os
import struct
import sys
import tomllib


def main(probe: str, config: str) -> None:
    with open(config, "rb") as f:
        cfg = tomllib.load(f)
    name, runs = cfg["name"], cfg.get("runs_dir", "runs")
    run = os.path.join(runs, name)
    if os.path.exists(os.path.join(run, "checkpoint.safetensors")):
        sys.exit(f"{run} already has a checkpoint: move it away first")
    with open(os.path.join(probe, "checkpoint.safetensors"), "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        tensors = f.read()
    meta = json.loads(header["__metadata__"]["dkp_train"])
    meta["config"]["name"] = name
    header["__metadata__"]["dkp_train"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(run, exist_ok=True)
    tmp = os.path.join(run, "checkpoint.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + tensors)
    os.replace(tmp, os.path.join(run, "checkpoint.safetensors"))
    with open(os.path.join(probe, "metrics.jsonl"), "rb") as f:
        metrics = f.read()[: meta["metrics_bytes"]]
    with open(os.path.join(run, "metrics.jsonl"), "wb") as f:
        f.write(metrics)
    # The run's settings as the trainer wrote them for the probe (`--resume` without
    # `--config` reads them), less the probe's name and step limit.
    with open(os.path.join(probe, "config.toml")) as f:
        lines = [l for l in f if not l.startswith("max_steps = ")]
    lines = [f'name = "{name}"\n' if l.startswith("name = ") else l for l in lines]
    with open(os.path.join(run, "config.toml"), "w") as f:
        f.writelines(lines)
    print(f"{probe} continues as {run} from {meta['position']}; now: dkp train --config {config} --resume")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
