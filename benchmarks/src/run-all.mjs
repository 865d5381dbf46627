// Runs every benchmark in this folder, one after another, each in its own process so they don't
// disturb each other's JIT and memory. Each prints a table and a final JSON line; this script
// collects the JSON lines and prints them together at the end.
//   pnpm bench                 # all
//   pnpm bench tokenizer       # those whose file name contains "tokenizer"
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2] ?? '';
const files = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run-all.mjs' && f.includes(filter))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches '${filter}' in ${here}`);
  process.exit(2);
}
const summaries = [];
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(process.execPath, [join(here, f)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(r.stdout);
  if (r.status !== 0) {
    failed++;
    console.error(`${f} exited with ${r.status}`);
    continue;
  }
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    summaries.push({ benchmark: f, ...JSON.parse(last) });
  } catch {
    console.error(`${f}: its last line is not JSON`);
    failed++;
  }
}
console.log('\n=== summary ===');
for (const s of summaries) console.log(JSON.stringify(s));
process.exit(failed ? 1 : 0);
