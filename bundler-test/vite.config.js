import { defineConfig } from 'vite';

export default defineConfig({
  // dkp-lstm's loader imports the chosen wasm build's glue with a dynamic import(),
  // which a worker bundle can only keep as a separate chunk in ES module format.
  worker: { format: 'es' },
});
