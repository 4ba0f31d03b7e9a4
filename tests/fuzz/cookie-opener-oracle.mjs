// The glue's cookie parsing and opening (src/runtime/cookie_opener.js) as an oracle for
// the differential fuzz target `glue_cookie_opener` (src/fuzz.rs), which compares it with
// the core's on generated input. Reads one JSON object from stdin:
//   { name, kids: [...], keys: hex of the derived cookie keys, maxSealed,
//     cases: [{ header, b64 }, ...] }
// and writes one JSON array, per case:
//   { sealed: the sealed text found in `header` or null,
//     opened: hex of what it opened to, or null,
//     bytes: hex of `b64` decoded as base64url, or null }
import { CookieOpener, base64urlBytes, sealedTextOf } from '../../src/runtime/cookie_opener.js';

const hex = (bytes) => (bytes ? Buffer.from(bytes).toString('hex') : null);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { name, kids, keys, maxSealed, cases } = JSON.parse(input);
const opener = new CookieOpener(name, maxSealed, kids, new Uint8Array(Buffer.from(keys, 'hex')));
const out = [];
for (const { header, b64 } of cases) {
  const opening = opener.open(header);
  const opened = opening ? await opening : null;
  out.push({ sealed: sealedTextOf(header, name), opened: hex(opened?.plaintext), bytes: hex(base64urlBytes(b64)) });
}
process.stdout.write(JSON.stringify(out));
