#!/usr/bin/env node
'use strict';
// Runs the compiled CLI when built (npm run build), else the TypeScript sources through tsx.
const fs = require('node:fs');
const path = require('node:path');
const compiled = path.join(__dirname, '..', 'dist', 'src', 'cli.js');
let cli;
if (fs.existsSync(compiled)) {
  cli = require(compiled);
} else {
  require('tsx/cjs');
  cli = require('../src/cli.ts');
}
cli.main().catch((err) => {
  console.error(`ses-lifecycle: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
