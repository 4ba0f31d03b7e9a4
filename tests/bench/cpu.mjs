// wasm32 timings of edge-bff's hot paths: the same code as the Worker's, compiled to
// wasm32-unknown-unknown (tests/bench/cpu) and run by Node's V8 — the engine workerd
// embeds. Usage: node tests/bench/cpu.mjs <dir of wasm-bindgen --target nodejs output> [--quick]
import { createRequire } from 'node:module';
import path from 'node:path';

const dir = path.resolve(process.argv[2] ?? 'target/bench-cpu-wasm');
const quick = process.argv.includes('--quick');
const bench = createRequire(import.meta.url)(path.join(dir, 'bench_cpu.js'));
// `node cpu.mjs <dir> [--quick] [op]` runs one benchmark when `op` is given.
const only = process.argv.slice(3).find((a) => !a.startsWith('--'));
const OPS = bench.ops().split(',').filter((op) => !only || op === only);

const time = (fn) => {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1000; // µs
};

console.log(`${'operation (wasm32, V8)'.padEnd(28)} ${'µs/op'.padStart(12)} ${'iterations'.padStart(10)}`);
for (const op of OPS) {
  const n = (op.includes('verify') || op.includes('callback') ? 200 : 5000) / (quick ? 10 : 1);
  bench.run(op, 3); // warm-up (and JIT tiering)
  bench.run(op, n);
  const setup = time(() => bench.run(op, 0));
  const total = time(() => bench.run(op, n));
  console.log(`${op.padEnd(28)} ${((total - setup) / n).toFixed(2).padStart(12)} ${String(n).padStart(10)}`);
}
