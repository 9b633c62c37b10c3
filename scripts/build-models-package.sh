#!/usr/bin/env bash
# Assembles pkg-models/ as the npm package `dkp-lstm-models` (sources in npm-models/):
# the shipped PTB whole model www/models/whole-model-distill-i8.safetensors (0.45 MB) as
# ptb-whole-model.safetensors, its model card, a small entry exporting the file's URL,
# and metadata.js written from the file's own header (provenance), so that the
# numbers the package reports are those of the file it ships.
set -euo pipefail
cd "$(dirname "$0")/.."
src=www/models/whole-model-distill-i8.safetensors
[ -f "$src" ] || { echo "[build-models] $src is missing" >&2; exit 1; }

stage=$(mktemp -d pkg-models.staging.XXXXXX)
chmod 755 "$stage"
trap 'rm -rf "$stage"' EXIT
cp npm-models/package.json npm-models/index.js npm-models/index.d.ts npm-models/README.md "$stage/"
cp "$src" "$stage/ptb-whole-model.safetensors"

node --input-type=module - "$stage" <<'JS'
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const stage = process.argv[2];
const bytes = readFileSync(`${stage}/ptb-whole-model.safetensors`);
const headerLength = Number(bytes.readBigUInt64LE(0));
const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
const config = JSON.parse(header.__metadata__.config);
const p = config.provenance;
const expect = (ok, what) => { if (!ok) throw new Error(`[build-models] unexpected model file: ${what}`); };
// docs/format.md: the vocabulary is an array or one string of space-separated tokens.
const tokens = typeof config.tokenizer.tokens === 'string' ? config.tokenizer.tokens.split(' ') : config.tokenizer.tokens;
expect(p?.trained === true && p.converted?.dtype === 'i8', 'not a trained int8 file');
expect(config.tokenizer.kind === 'word' && tokens.length === 10000, 'not the 10k-word PTB vocabulary');
expect(p.settings?.name === 'whole-model-distill' && p.distillation?.teacher_test_ppl > 0, `trained as ${p.settings?.name}`);
const round = (x) => Math.round(x * 100) / 100;
const metadata = {
  id: 'ptb-whole-model',
  file: 'ptb-whole-model.safetensors',
  bytes: bytes.length,
  sha256: createHash('sha256').update(bytes).digest('hex'),
  dataset: 'Penn Treebank, word level (Mikolov et al. preprocessing), 10k vocabulary',
  tokenizer: config.tokenizer.kind,
  vocab: tokens.length,
  layers: config.layers.length,
  hidden: config.layers[0].hidden,
  weights: { lstm: config.layers[0].w.kind, output: config.output.kind, embedding: config.embedding.kind },
  dtype: 'i8',
  // This file's own perplexities (`dkp convert --test/--valid`), not its source's.
  testPerplexity: round(p.test_ppl),
  validPerplexity: round(p.valid_ppl),
  lstmCompression: round(p.cf.lstm_values_and_indices),
  epochs: p.epochs,
  trainer: p.trainer,
  config: 'experiments/whole-model-distill.toml',
};
// The model card states these numbers in prose: it must agree with the file.
const card = readFileSync(`${stage}/README.md`, 'utf8');
const spaced = String(metadata.bytes).replace(/\B(?=(\d{3})+$)/g, ' ');
expect(card.includes(`**${metadata.testPerplexity}**`) && card.includes(`${spaced} bytes`),
  `npm-models/README.md does not state test perplexity ${metadata.testPerplexity} and ${spaced} bytes`);
writeFileSync(`${stage}/metadata.js`,
  '// Written by scripts/build-models-package.sh from the model file\'s header: do not edit.\n' +
  `export const metadata = Object.freeze(${JSON.stringify(metadata, null, 2)});\n`);
console.log(`[build-models] ${metadata.file}: ${metadata.bytes} bytes, test perplexity ${metadata.testPerplexity}`);
JS

rm -rf pkg-models
mv "$stage" pkg-models
trap - EXIT
echo "[build-models] pkg-models/ ready: the npm package dkp-lstm-models"
