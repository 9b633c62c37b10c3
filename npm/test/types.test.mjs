// Type-checks a program against the package's index.d.ts with the TypeScript compiler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('index.d.ts describes the API (tsc --strict)', () => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', 'types-check.ts'];
  try {
    execFileSync(process.execPath, [`${here}node_modules/typescript/bin/tsc`, ...args], { cwd: here, encoding: 'utf8' });
  } catch (e) {
    assert.fail(`tsc reported:\n${e.stdout}${e.stderr}`);
  }
});
