#!/usr/bin/env node
'use strict';
// The `ses-lifecycle` command. From an installed package (or the Docker image) it runs the
// compiled CLI in dist/; in a source checkout (src/ next to bin/, tsx installed as a dev
// dependency) it runs the TypeScript sources, so a stale dist/ is never what you test.
const fs = require('node:fs');
const path = require('node:path');

function load() {
  const compiled = path.join(__dirname, '..', 'dist', 'src', 'cli.js');
  const source = path.join(__dirname, '..', 'src', 'cli.ts');
  if (fs.existsSync(source)) {
    let tsx;
    try {
      tsx = require.resolve('tsx/cjs');
    } catch {
      tsx = undefined;
    }
    if (tsx !== undefined) {
      require(tsx);
      return require(source);
    }
  }
  if (!fs.existsSync(compiled)) {
    console.error(`ses-lifecycle: ${compiled} is missing; run \`npm run build\` (or \`npm install\`, which builds) first`);
    process.exit(1);
  }
  return require(compiled);
}

load()
  .main()
  .catch((err) => {
    console.error(`ses-lifecycle: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
