// The last step of scripts/build.sh: bundle an entry module with wasm-bindgen's bindings
// into one ES module beside the wasm, with esbuild (npm, tests/node_modules).
//
// Usage: node scripts/bundle.mjs <bindings-dir> <entry.mjs> <out.mjs>
//   <bindings-dir>: wasm-bindgen's output (index.js, snippets/); the entry imports
//   './index.js' and is bundled as if it sat there. The wasm stays a separate module,
//   imported as './index_bg.wasm' beside <out.mjs>.
//
// Any esbuild warning fails the build: the build prints no warnings.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const esbuild = createRequire(path.join(ROOT, 'tests/package.json'))('esbuild');

const [bindingsDir, entry, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/bundle.mjs <bindings-dir> <entry.mjs> <out.mjs>');
  process.exit(2);
}

// wasm-bindgen's `module` target imports the wasm with `import source` (the source-phase
// form); workerd and wrangler load a `.wasm` module with a plain import, which gives the
// same `WebAssembly.Module`.
const indexPath = path.join(bindingsDir, 'index.js');
let index = readFileSync(indexPath, 'utf8');
if (!/^import source wasmModule from "\.\/index_bg\.wasm";$/m.test(index)) {
  console.error(`bundle: ${indexPath} does not import its wasm as expected (has wasm-bindgen's output changed?)`);
  process.exit(1);
}
index = index.replace(/^import source wasmModule from/m, 'import wasmModule from');

// wasm-bindgen 0.2.130 imports one snippet module under two namespace names when the wasm
// imports several of its functions directly, and lists it twice in the imports object: a
// duplicate key (esbuild warns). Both names are the same module; keep the first.
const namespaces = new Map();
for (const [, name, spec] of index.matchAll(/^import \* as (\w+) from "([^"]+)"$/gm)) {
  if (namespaces.has(spec)) {
    const first = namespaces.get(spec);
    index = index.replace(new RegExp(`^import \\* as ${name} from "[^"]+"\\n`, 'm'), '');
    index = index.replace(new RegExp(`^(\\s*)"${spec.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}": ${name},\\n`, 'm'), '');
    if (new RegExp(`\\b${name}\\b`).test(index)) {
      console.error(`bundle: ${name} is still used in ${indexPath}; cannot merge it into ${first}`);
      process.exit(1);
    }
  } else {
    namespaces.set(spec, name);
  }
}
writeFileSync(indexPath, index);

const staged = path.join(bindingsDir, path.basename(entry));
copyFileSync(entry, staged);
const result = await esbuild.build({
  entryPoints: [staged],
  outfile: out,
  bundle: true,
  format: 'esm',
  minify: true,
  external: ['./index_bg.wasm', 'cloudflare:*'],
  logLevel: 'silent',
  allowOverwrite: true,
}).catch((e) => {
  for (const error of e.errors ?? [e]) console.error(`bundle: error: ${error.text ?? error.message}`);
  process.exit(1);
});
if (result.warnings.length > 0) {
  const text = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
  console.error(text.join('\n'));
  console.error(`bundle: ${result.warnings.length} esbuild warning(s); the build must print none`);
  process.exit(1);
}
console.log(`bundle: ${path.relative(ROOT, out)} (${readFileSync(out).length} bytes)`);
