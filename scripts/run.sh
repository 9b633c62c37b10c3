#!/usr/bin/env bash
# The main command: builds the npm package (both WebAssembly builds), runs a short
# Node demo on the shipped trained whole model (npm/demo.mjs; npm/demo-random.mjs is the
# random-model one), then serves the demo page.
set -euo pipefail
cd "$(dirname "$0")/.."
DKP_SETUP_BROWSERS=0 bash scripts/setup.sh
bash scripts/build-wasm.sh
node npm/demo.mjs

# --- demo page ---
# www/ is the served root: the package goes into www/pkg/ (git-ignored).
rm -rf www/pkg && cp -r pkg www/pkg
exec node scripts/serve.mjs --port "${PORT:-8080}"
