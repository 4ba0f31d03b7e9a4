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

// The runtime's WebCrypto for the same signatures (Node's, like workerd's, is native
// code): a DPoP proof's signature alone, awaited one after another. Compare with the
// dpop_proof_* rows above, which build and sign the whole proof in Rust.
if (!only || only.startsWith('webcrypto')) {
  const { subtle } = globalThis.crypto;
  const data = new TextEncoder().encode('x'.repeat(420)); // about a proof's signing input
  for (const [name, gen, sign] of [
    ['webcrypto_sign_es256', { name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }],
    ['webcrypto_sign_ed25519', { name: 'Ed25519' }, { name: 'Ed25519' }],
  ]) {
    const { privateKey } = await subtle.generateKey(gen, false, ['sign', 'verify']);
    const n = quick ? 200 : 2000;
    for (let i = 0; i < 20; i++) await subtle.sign(sign, privateKey, data);
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await subtle.sign(sign, privateKey, data);
    const us = Number(process.hrtime.bigint() - start) / 1000 / n;
    console.log(`${name.padEnd(28)} ${us.toFixed(2).padStart(12)} ${String(n).padStart(10)}`);
  }
}
