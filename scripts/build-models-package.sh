#!/usr/bin/env bash
# Assembles pkg-models/ as the npm package `dkp-lstm-models` (sources in npm-models/):
# three shipped PTB whole models from www/models/ as <id>.safetensors, a module per
# model (<id>.js: the file's URL and metadata written from its own header, so that the
# numbers the package reports are those of the file it ships), the main entry (the
# smallest model), types and the model card, which must state each file's numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

# id, the file in www/models/, and the experiment it was trained by (its provenance must say so).
MODELS=(
  "ptb-whole-model whole-model-distill-i8 whole-model-distill"
  "ptb-whole-model-1mb whole-model-1mb-distill-i8 whole-model-1mb-distill"
  "ptb-whole-model-2mb whole-model-2mb-distill-i8 whole-model-2mb-distill"
)

stage=$(mktemp -d pkg-models.staging.XXXXXX)
chmod 755 "$stage"
trap 'rm -rf "$stage"' EXIT
cp npm-models/package.json npm-models/index.js npm-models/index.d.ts npm-models/README.md "$stage/"
for entry in "${MODELS[@]}"; do
  read -r id src _ <<<"$entry"
  [ -f "www/models/$src.safetensors" ] || { echo "[build-models] www/models/$src.safetensors is missing" >&2; exit 1; }
  cp "www/models/$src.safetensors" "$stage/$id.safetensors"
done

node --input-type=module - "$stage" "${MODELS[@]}" <<'JS'
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const [stage, ...models] = process.argv.slice(2);
const card = readFileSync(`${stage}/README.md`, 'utf8');
for (const entry of models) {
  const [id, , experiment] = entry.split(' ');
  const file = `${id}.safetensors`;
  const bytes = readFileSync(`${stage}/${file}`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const config = JSON.parse(header.__metadata__.config);
  const p = config.provenance;
  const expect = (ok, what) => { if (!ok) throw new Error(`[build-models] unexpected model file for ${id}: ${what}`); };
  // docs/format.md: the vocabulary is an array or one string of space-separated tokens.
  const tokens = typeof config.tokenizer.tokens === 'string' ? config.tokenizer.tokens.split(' ') : config.tokenizer.tokens;
  expect(p?.trained === true && p.converted?.dtype === 'i8', 'not a trained int8 file');
  expect(config.tokenizer.kind === 'word' && tokens.length === 10000, 'not the 10k-word PTB vocabulary');
  expect(p.settings?.name === experiment && p.distillation?.teacher_test_ppl > 0, `trained as ${p.settings?.name}`);
  const round = (x) => Math.round(x * 100) / 100;
  const metadata = {
    id,
    file,
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
    config: `experiments/${experiment}.toml`,
  };
  // The model card states these numbers in prose: it must agree with the file.
  const spaced = String(metadata.bytes).replace(/\B(?=(\d{3})+$)/g, ' ');
  expect(card.includes(`**${metadata.testPerplexity}**`) && card.includes(`| ${spaced} |`),
    `npm-models/README.md does not state test perplexity ${metadata.testPerplexity} and ${spaced} bytes`);
  writeFileSync(`${stage}/${id}.js`,
    '// Written by scripts/build-models-package.sh from the model file\'s header: do not edit.\n' +
    '// The URL as `new URL(\'./…\', import.meta.url)`: bundlers emit the file and rewrite it.\n\n' +
    `/** ${metadata.layers}×${metadata.hidden} PTB whole model, int8, ${spaced} bytes, test perplexity ${metadata.testPerplexity}. */\n` +
    `export const modelUrl = new URL('./${file}', import.meta.url);\n\n` +
    `export const metadata = Object.freeze(${JSON.stringify(metadata, null, 2)});\n`);
  console.log(`[build-models] ${file}: ${metadata.bytes} bytes, test perplexity ${metadata.testPerplexity}`);
}
JS

rm -rf pkg-models
mv "$stage" pkg-models
trap - EXIT
echo "[build-models] pkg-models/ ready: the npm package dkp-lstm-models"
