#!/usr/bin/env bash
# The packages as a web developer gets them: `npm publish --dry-run` of pkg/ (dkp-lstm)
# and pkg-models/ (dkp-lstm-models) lists the right files, then both packed tarballs are
# installed into the small Vite app bundler-test/ (`npm ci` with its pinned Vite and
# lockfile), built for production with `vite build`, and checked:
# bundler-test/bundler.test.mjs serves dist/ with a strict CSP and drives headless
# Chromium (the model from dkp-lstm-models in a module Worker of dkp-lstm/worker);
# bundler-test/models-node.test.mjs scores text with the model package in Node.
# Needs pkg/ (scripts/build-wasm.sh) and /usr/bin/chromium (scripts/setup.sh);
# builds pkg-models/ itself. Works in a temporary folder: safe to repeat.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/package.json ] || { echo "[test-bundler] pkg/ is missing: run scripts/build-wasm.sh" >&2; exit 1; }
bash scripts/build-models-package.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- npm publish --dry-run: clean, and the files a user needs, nothing else ---
check_publish() { # dir required-file...
  local dir=$1
  shift
  (cd "$dir" && npm publish --dry-run --json >"$work/publish.json" 2>"$work/publish.err") || {
    cat "$work/publish.err" >&2
    echo "[test-bundler] npm publish --dry-run failed in $dir" >&2
    return 1
  }
  node --input-type=module - "$dir" "$work/publish.json" "$work/publish.err" "$@" <<'JS'
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const [dir, json, err, ...required] = process.argv.slice(2);
const result = JSON.parse(readFileSync(json, 'utf8'));
const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
const files = (result[pkg.name] ?? result).files.map((f) => f.path).sort();
const problems = [];
// The only warning allowed is that a dry run needs no login.
for (const line of readFileSync(err, 'utf8').split('\n')) {
  if (/npm (warn|error)/i.test(line) && !/requires you to be logged in/.test(line)) problems.push(line);
}
for (const f of required) if (!files.includes(f)) problems.push(`missing from the tarball: ${f}`);
for (const f of files) {
  if (/(^|\/)(test|tests|bench|node_modules)\/|\.test\.m?js$|\.tgz$|^demo|types-check/.test(f)) problems.push(`should not be published: ${f}`);
}
// Every exports target (and main, types) is a published file, or a pattern matching some.
const targets = [pkg.main, pkg.types];
const walk = (v) => (typeof v === 'string' ? targets.push(v) : Object.values(v ?? {}).forEach(walk));
walk(pkg.exports);
for (const t of targets.filter(Boolean).map((t) => t.replace(/^\.\//, ''))) {
  const ok = t.includes('*') ? files.some((f) => f.startsWith(t.slice(0, t.indexOf('*')))) : files.includes(t);
  if (!ok) problems.push(`package.json points at ${t}, which is not published`);
}
for (const t of [pkg.types, pkg.exports?.['.']?.types, pkg.exports?.['./worker']?.types].filter(Boolean)) {
  if (!existsSync(join(dir, t))) problems.push(`types file ${t} is missing`);
}
if (problems.length) {
  console.error(`[test-bundler] npm publish --dry-run of ${pkg.name}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`[test-bundler] npm publish --dry-run of ${pkg.name}@${pkg.version}: clean, ${files.length} files: ${files.join(' ')}`);
JS
}
check_publish pkg package.json README.md index.js index.d.ts read-url.js worker-client.js worker.d.ts model-worker.js \
  simd/dkp_lstm_wasm.js simd/dkp_lstm_wasm.d.ts simd/dkp_lstm_wasm_bg.wasm \
  scalar/dkp_lstm_wasm.js scalar/dkp_lstm_wasm.d.ts scalar/dkp_lstm_wasm_bg.wasm \
  tools/dkp_lstm_wasm.js tools/dkp_lstm_wasm.d.ts tools/dkp_lstm_wasm_bg.wasm \
  tools-simd/dkp_lstm_wasm.js tools-simd/dkp_lstm_wasm.d.ts tools-simd/dkp_lstm_wasm_bg.wasm
check_publish pkg-models package.json README.md index.js index.d.ts \
  ptb-whole-model.js ptb-whole-model.safetensors ptb-whole-model-1mb.js ptb-whole-model-1mb.safetensors \
  ptb-whole-model-2mb.js ptb-whole-model-2mb.safetensors

# --- both tarballs in the Vite app ---
lib=$(cd pkg && npm pack --silent --pack-destination "$work")
models=$(cd pkg-models && npm pack --silent --pack-destination "$work")
echo "[test-bundler] packed $lib ($(du -k "$work/$lib" | cut -f1) KB) and $models ($(du -k "$work/$models" | cut -f1) KB)"
mkdir "$work/app"
cp -r bundler-test/package.json bundler-test/package-lock.json bundler-test/index.html bundler-test/vite.config.js \
  bundler-test/src bundler-test/*.test.mjs "$work/app/"
cd "$work/app"
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
npm install --no-save --no-audit --no-fund --prefer-offline --loglevel=error "$work/$lib" "$work/$models"
echo "[test-bundler] installed vite $(node -p "require('vite/package.json').version"), $lib and $models"
npx vite build --logLevel warn
echo "[test-bundler] vite build: $(ls dist/assets | tr '\n' ' ')"
node --test --test-reporter=spec ./bundler.test.mjs ./models-node.test.mjs
echo "[test-bundler] ok: publish dry-runs clean; the Vite build runs the model under the strict CSP"
