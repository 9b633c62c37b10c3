// dkp-lstm-models: trained model files, each a URL next to the module that names it, and
// what each is. This entry is the smallest model (0.45 MB); the larger ones are entries
// of their own (`dkp-lstm-models/ptb-whole-model-1mb`, `…/ptb-whole-model-2mb`), so that
// a bundler emits only the file an app imports: each module writes its URL as
// `new URL('./…', import.meta.url)`, which Vite, webpack 5 and esbuild (with a loader for
// .safetensors) turn into an asset; in Node it is a file: URL that `fs.readFile` or
// dkp-lstm/worker's `load` read directly. The model modules are written by
// scripts/build-models-package.sh from each file's own header.

export { metadata, modelUrl } from './ptb-whole-model.js';
