// dkp-lstm-models: the trained model file, as a URL next to this module, and what it is.
// Written as `new URL('./…', import.meta.url)` so that bundlers (Vite, webpack, esbuild
// with a loader for .safetensors) emit the file and rewrite the URL; in Node it is a
// file: URL that `fs.readFile` or dkp-lstm/worker's `load` read directly.

export { metadata } from './metadata.js';

/** The Penn Treebank whole-model DKP LSTM (int8 safetensors, about 0.45 MB). */
export const modelUrl = new URL('./ptb-whole-model.safetensors', import.meta.url);
