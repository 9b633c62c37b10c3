// Reads the bytes at a URL for the loader (index.js) and the model worker
// (model-worker.js): file: URLs from disk, since Node's fetch() does not read files;
// anything else with fetch(), as bytes rather than a streaming compile, so that the
// server's MIME type does not matter.

/** The bytes at `url` (a URL object) as an ArrayBuffer or a Node Buffer. */
export async function readUrl(url) {
  if (url.protocol === 'file:') {
    const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:fs/promises');
    return readFile(url);
  }
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`dkp-lstm: fetching ${url} failed: HTTP ${response.status} ${response.statusText}`);
  }
  return response.arrayBuffer();
}
