// Distinct valid session cookies for the "unseen cookies" benchmarks (bench.mjs rows
// (au) and (bu), compare.mjs UNSEEN): more than an isolate remembers, sent in turn.
import path from 'node:path';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

/**
 * `count` distinct Cookie headers of one login (`jar`, updated in place): each chained
 * `POST /auth/refresh` to the Worker on 127.0.0.1:`port` seals the session anew.
 */
export async function unseenCookies(jar, port, count) {
  const cookies = [];
  for (let i = 0; i < count; i++) {
    cookies.push(jar.header());
    const r = await fetch(`http://127.0.0.1:${port}/auth/refresh`, { method: 'POST', headers: { cookie: jar.header(), 'x-csrf': '1' } });
    if (r.status !== 200) throw new Error(`unseen cookies: refresh ${i} answered ${r.status}`);
    jar.update(r);
  }
  if (new Set(cookies).size !== count) throw new Error('unseen cookies: not all distinct');
  return cookies;
}

/** A wrk Lua script sending GET with `cookies` in turn (and `X-CSRF`), with Host `host`. */
export function rotatingCookieScript(cookies, host) {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edge-bff-unseen-')), 'unseen.lua');
  const list = cookies.map((c) => `  "${c}",`).join('\n');
  writeFileSync(file, `local cookies = {\n${list}\n}\nlocal i = 0\nrequest = function()\n  i = i % #cookies + 1\n  return wrk.format("GET", nil, { ["Host"] = "${host}", ["Cookie"] = cookies[i], ["X-CSRF"] = "1" })\nend\n`);
  return file;
}
