// Loader of the dkp-lstm WebAssembly modules. `load` picks the SIMD128 build where the
// engine validates SIMD code, else the scalar build; `loadTools` loads the tools module
// (`randomModel`, `benchKernel`) of the same build, a module of its own so that the
// runtime an app ships stays small. Each
// is instantiated from bytes (read from disk in Node, fetched in browsers and workers)
// so that neither the server's MIME type nor a bundler's asset handling matters.

import { readUrl } from './read-url.js';

// The smallest module using a SIMD128 instruction (as in wasm-feature-detect):
// `(func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)`.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/** Whether this engine runs WebAssembly SIMD128. */
export function simdSupported() {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

// Static specifiers, so that bundlers see both builds.
const BUILDS = {
  simd: {
    glue: () => import('./simd/dkp_lstm_wasm.js'),
    wasm: () => new URL('./simd/dkp_lstm_wasm_bg.wasm', import.meta.url),
  },
  scalar: {
    glue: () => import('./scalar/dkp_lstm_wasm.js'),
    wasm: () => new URL('./scalar/dkp_lstm_wasm_bg.wasm', import.meta.url),
  },
  'tools-simd': {
    glue: () => import('./tools-simd/dkp_lstm_wasm.js'),
    wasm: () => new URL('./tools-simd/dkp_lstm_wasm_bg.wasm', import.meta.url),
  },
  'tools-scalar': {
    glue: () => import('./tools/dkp_lstm_wasm.js'),
    wasm: () => new URL('./tools/dkp_lstm_wasm_bg.wasm', import.meta.url),
  },
};

// One instantiation per build, shared by every caller of `load`.
const instances = new Map();

/**
 * Loads the module: `simd` is 'auto' (detect), true or false; `wasm` optionally
 * replaces where the chosen build's .wasm comes from (URL, bytes or a compiled module).
 */
export async function load({ simd = 'auto', wasm } = {}) {
  const variant = pick('load', simd);
  const { Model, buildInfo } = await instance(variant, wasm);
  return { Model, buildInfo, variant };
}

/**
 * Loads the tools module: `randomModel(spec)`, random-weight model files for tests,
 * demos and benchmarks, and `benchKernel`, this build's kernels timed on random
 * matrices. `simd` and `wasm` as for `load`.
 */
export async function loadTools({ simd = 'auto', wasm } = {}) {
  const variant = pick('loadTools', simd);
  const { randomModel, benchKernel } = await instance(`tools-${variant}`, wasm);
  return { randomModel, benchKernel, variant };
}

function pick(name, simd) {
  if (simd !== 'auto' && typeof simd !== 'boolean') {
    throw new TypeError(`dkp-lstm: ${name}({ simd }) takes 'auto', true or false, not ${String(simd)}`);
  }
  return (simd === 'auto' ? simdSupported() : simd) ? 'simd' : 'scalar';
}

function instance(variant, wasm) {
  if (!instances.has(variant)) {
    const pending = instantiate(BUILDS[variant], wasm);
    instances.set(variant, pending);
    pending.catch(() => instances.delete(variant)); // a failed load may be retried
  }
  return instances.get(variant);
}

async function instantiate(build, wasm) {
  const [glue, module_or_path] = await Promise.all([build.glue(), wasmBytes(wasm ?? build.wasm())]);
  await glue.default({ module_or_path });
  // wasm-bindgen's free() throws on a model freed before; freeing twice is harmless here,
  // so that cleanup code (finally blocks, a worker's free) need not track it.
  const free = glue.Model.prototype.free;
  const freed = new WeakSet();
  glue.Model.prototype.free = function () {
    if (freed.has(this)) return;
    freed.add(this);
    free.call(this);
  };
  return glue;
}

async function wasmBytes(source) {
  if (source instanceof WebAssembly.Module || source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    return source;
  }
  return readUrl(new URL(String(source), globalThis.location?.href ?? import.meta.url));
}
