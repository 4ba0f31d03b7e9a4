// Opening a sealed session cookie by the runtime's WebCrypto AES-GCM, measured inside
// workerd: CPU time of the workerd process per open, for the same sealed texts (same key,
// same associated data) as the aes_gcm_open_* rows of tests/bench/cpu.mjs, which time the
// Rust `aes-gcm` in Wasm. Node's own WebCrypto is no stand-in: it runs each call on a
// thread pool, so its figure is a hand-off's latency, not the work.
// Usage: node tests/bench/webcrypto.mjs <dir of the wasm-bindgen --nodejs output of bench-cpu>
import { createRequire } from 'node:module';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { workerdPid, cpuMsOf } from './wrk.mjs';
import { freePort } from '../support/worker.mjs';

const dir = path.resolve(process.argv[2] ?? 'target/bench-cpu-wasm');
const bench = createRequire(import.meta.url)(path.join(dir, 'bench_cpu.js'));
const SIZES = [512, 1536, 4096];
const b64 = (bytes) => Buffer.from(bytes).toString('base64');
// The Worker opens its sealed text `k` times per request, one `subtle.decrypt` awaited
// after another (as a request would), base64url decoding included, and checks the length.
const script = `
let key;
const fromB64url = (text) => {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
};
const raw = (b) => Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
export default {
  async fetch(request, env) {
    key ??= await crypto.subtle.importKey('raw', raw(env.KEY), 'AES-GCM', false, ['decrypt']);
    const aad = raw(env.AAD);
    const url = new URL(request.url);
    const sealed = env['SEALED_' + url.searchParams.get('size')];
    const k = Number(url.searchParams.get('k'));
    let total = 0;
    for (let i = 0; i < k; i++) {
      const body = fromB64url(sealed.slice(sealed.indexOf('.') + 1));
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: body.subarray(0, 12), additionalData: aad }, key, body.subarray(12));
      total += plain.byteLength;
    }
    return new Response(String(total));
  },
};`;
const bindings = { KEY: b64(bench.cookie_key()), AAD: b64(bench.cookie_aad()) };
for (const size of SIZES) bindings[`SEALED_${size}`] = bench.sealed_of_size(size);
const port = await freePort();
const mf = new Miniflare({ modules: true, script, bindings, compatibilityDate: '2026-04-01', host: '127.0.0.1', port });
await mf.ready;
const pid = workerdPid(port);
const K = 1000;
const REQUESTS = 25;
const get = async (size, k) => {
  const res = await fetch(`http://127.0.0.1:${port}/?size=${size}&k=${k}`);
  const text = await res.text();
  if (Number(text) !== size * k) throw new Error(`WebCrypto did not open the ${size}-byte sealed text: ${text}`);
};
console.log(`${'operation (workerd)'.padEnd(28)} ${'CPU µs/op'.padStart(12)} ${'iterations'.padStart(10)}`);
for (const size of SIZES) {
  for (let i = 0; i < 5; i++) await get(size, K); // warm-up
  // The same requests with k = 0 measure the request's own cost, subtracted.
  const cpu = async (k) => {
    const start = cpuMsOf(pid);
    for (let i = 0; i < REQUESTS; i++) await get(size, k);
    return cpuMsOf(pid) - start;
  };
  const base = await cpu(0);
  const work = await cpu(K);
  const us = ((work - base) * 1000) / (K * REQUESTS);
  console.log(`${`webcrypto_aes_gcm_open_${size}`.padEnd(28)} ${us.toFixed(2).padStart(12)} ${String(K * REQUESTS).padStart(10)}`);
}
await mf.dispose();
