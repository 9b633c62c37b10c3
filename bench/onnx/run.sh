#!/usr/bin/env bash
# Sets up bench/onnx (venv, npm deps), exports the dense PTB model (f16 and int8) to ONNX, runs the Node and Chromium comparisons with the trainings paused.
# Usage: bash bench/onnx/run.sh [--rounds N] [--tokens N]   (needs pkg/ from scripts/build-wasm.sh; results also in bench/onnx/build/*.json)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=../..
[ -f "$ROOT/pkg/index.js" ] || { echo "pkg/ is missing: run scripts/build-wasm.sh first" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3.11}" -m venv .venv
  .venv/bin/pip install -q -r requirements.txt
fi
[ -d node_modules/onnxruntime-web ] && [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
mkdir -p build
.venv/bin/python export_onnx.py "$ROOT/www/models/dense-2x200.safetensors" build/dense-2x200.onnx --parts \
  --int8 build/dense-2x200-q8.onnx --check-text "$ROOT/../shared/data/ptb/ptb.test.txt" --check-tokens 200
# The same model in int8 (docs/format.md), and its weights as onnxruntime sees them, for its parity check.
(cd "$ROOT" && cargo run -q --release -p dkp-cli -- convert www/models/dense-2x200.safetensors --dtype i8 \
  -o bench/onnx/build/dense-2x200-i8.safetensors --force)
.venv/bin/python export_onnx.py build/dense-2x200-i8.safetensors build/dense-2x200-i8.onnx \
  --check-text "$ROOT/../shared/data/ptb/ptb.test.txt" --check-tokens 200

# Background trainings share the 2 cores: stop them while timing, and resume them however this script ends.
# The brackets keep a shell whose own command line holds this pattern from matching it.
PAUSE='dkp-campaign[ ]train'
trap 'pkill -CONT -f "$PAUSE" || true' EXIT
trap 'exit 130' INT TERM
pkill -STOP -f "$PAUSE" || true
echo "# $(node --version), $(/usr/bin/chromium --version 2>/dev/null), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
node compare.mjs --json build/node.json "$@"
node browser.mjs --json build/chromium.json "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
