// Node: parity and interleaved timing of our wasm engine (pkg/) against onnxruntime-web on the dense PTB model.
// Usage: node bench/onnx/compare.mjs [--rounds N] [--tokens N] [--json FILE]   (after export_onnx.py; run.sh does both)
import { readFileSync, writeFileSync } from 'node:fs';
import * as dkp from '../../pkg/index.js';
import * as ort from 'onnxruntime-web';
import { runAll, markdown } from './suite.js';

const HERE = new URL('.', import.meta.url);
const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const read = (path) => new Uint8Array(readFileSync(new URL(path, HERE)));

ort.env.wasm.numThreads = 1; // one thread, like our engine
ort.env.wasm.simd = true;

const res = await runAll({
  dkp: { simd: await dkp.load({ simd: true }), scalar: await dkp.load({ simd: false }) },
  ort,
  files: {
    dense: read('../../www/models/dense-2x200.safetensors'),
    'dkp-25x': read('../../www/models/dkp-25x.safetensors'),
    'whole-model-1mb': read('../../www/models/whole-model-1mb.safetensors'),
    'dense-i8': read('build/dense-2x200-i8.safetensors'),
  },
  onnx: {
    step: read('build/dense-2x200.onnx'),
    lstm: read('build/dense-2x200-lstm.onnx'),
    output: read('build/dense-2x200-output.onnx'),
    step_i8: read('build/dense-2x200-i8.onnx'),
    step_q8: read('build/dense-2x200-q8.onnx'),
  },
  ptb: readFileSync(new URL('../../../shared/data/ptb/ptb.test.txt', HERE), 'utf8').slice(0, 1 << 16),
  rounds: Number(arg('--rounds', 11)),
  tokens: Number(arg('--tokens', 400)),
  log: (r) => console.log(JSON.stringify(r)),
});
res.runtime = `Node ${process.version}`;
console.log(`\n# ${res.runtime}, onnxruntime-web ${res.ort_version}, dkp-lstm ${res.build.version} (${res.build.kernels})\n\n${markdown(res)}\n`);
if (arg('--json')) writeFileSync(arg('--json'), JSON.stringify(res, null, 1));
if (!res.ok) {
  console.error('PARITY FAILED: the two engines disagree (see the parity table)');
  process.exit(1);
}
