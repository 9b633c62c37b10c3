#!/usr/bin/env bash
# Checks docs/format.md's export recipe against an independent NumPy LSTM: files written
# by Python's safetensors must load in `dkp` and score texts identically.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyenv
if ! "$venv/bin/python" -c "import numpy, safetensors" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check numpy safetensors
fi
cargo build --quiet -p dkp-cli
"$venv/bin/python" scripts/check_python_export.py target/debug/dkp
