/**
 * Rewrites the configuration table in README.md from the config schema (between the
 * `<!-- config-table -->` markers), so the documented variables are exactly the ones read.
 *   npx tsx scripts/config-table.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configTable } from '../src/config';

function main(): void {
  const file = path.join(__dirname, '..', 'README.md');
  const readme = readFileSync(file, 'utf8');
  const rows = configTable().map((r) => `| \`${r.variable}\` | ${r.default ? `\`${r.default}\`` : '—'} | ${r.description} |`);
  const table = ['<!-- config-table -->', '| variable | default | meaning |', '|---|---|---|', ...rows, '<!-- /config-table -->'].join('\n');
  const re = /<!-- config-table -->[\s\S]*<!-- \/config-table -->/;
  if (!re.test(readme)) throw new Error('README.md has no <!-- config-table --> markers');
  writeFileSync(file, readme.replace(re, table));
  console.log(`README.md: ${rows.length} variables`);
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
