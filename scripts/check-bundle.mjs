#!/usr/bin/env node
// The deploy bundle is the tested bundle (issue 15): runs `wrangler deploy --dry-run
// --outdir` on this checkout (wrangler runs the [build] command, scripts/build.sh, as a
// real deploy would) and checks what it would upload against what the tests ran:
//   - the wasm module is byte for byte build/index_bg.wasm (sha256), the one tested;
//   - the entry module exports the coordinator class wrangler.toml binds, and the
//     migration that creates it is declared;
//   - the bindings are the declared ones (COORDINATOR, SESSIONS, ASSETS) and every file
//     of the assets directory is read;
//   - Workers Logs ([observability]) is on;
//   - neither the build nor wrangler prints a warning.
// Prints one line per check; exits 1 when one fails. Usage: node scripts/check-bundle.mjs
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failed++;
};

const tested = sha256(path.join(ROOT, 'build/index_bg.wasm'));
const out = mkdtempSync(path.join(tmpdir(), 'edge-bff-bundle-'));
const run = spawnSync(path.join(ROOT, 'tests/node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', out], {
  cwd: ROOT,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
  timeout: 600_000,
});
const printed = `${run.stdout ?? ''}${run.stderr ?? ''}`;
if (run.status !== 0) {
  console.log(`FAIL wrangler deploy --dry-run (exit ${run.status ?? run.signal}):\n${printed}`);
  process.exit(1);
}
// The build (scripts/build.sh, run by wrangler) and wrangler's own bundling print no
// warning: esbuild's and wrangler's are marked [WARNING] or ▲.
const warnings = printed.split('\n').filter((line) => /\[WARNING\]|▲/.test(line));
check(warnings.length === 0, `no warning from the build or wrangler${warnings.length ? `: ${warnings.join(' | ')}` : ''}`);

const files = readdirSync(out);
const modules = files.filter((f) => f.endsWith('.wasm'));
check(modules.length === 1, `one wasm module in the bundle (${modules.join(', ')})`);
check(modules.length === 1 && sha256(path.join(out, modules[0])) === tested, 'the wasm module is the tested build/index_bg.wasm (sha256)');
const entry = readFileSync(path.join(out, 'entry.js'), 'utf8');
check(/EdgeBffCoordinator/.test(entry), 'the entry module exports EdgeBffCoordinator');

const toml = readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8');
check(/\[\[migrations\]\][^[]*new_sqlite_classes\s*=\s*\[\s*"EdgeBffCoordinator"\s*\]/.test(toml), 'wrangler.toml declares the coordinator\'s migration');
check(/\[observability\]\s*\nenabled\s*=\s*true/.test(toml), 'Workers Logs ([observability]) is on');

for (const [binding, kind] of [['COORDINATOR', 'Durable Object'], ['SESSIONS', 'KV Namespace'], ['ASSETS', 'Assets']]) {
  check(new RegExp(`env\\.${binding}\\b.*${kind}`).test(printed), `binding ${binding} (${kind})`);
}
const assets = readdirSync(path.join(ROOT, 'scripts/demo/spa')).length;
check(new RegExp(`Read ${assets} files? from the assets directory`).test(printed), `all ${assets} asset files are read`);
const total = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(printed);
if (total) console.log(`     upload: ${total[1]} (gzip ${total[2]})`);

process.exit(failed ? 1 : 0);
