// HTTP helpers for tests: a small cookie jar that keeps Set-Cookie attributes so tests
// can assert on them, a helper that parses one Set-Cookie line, and a raw request.
import http from 'node:http';

/**
 * A raw HTTP request to 127.0.0.1:`port` (no URL normalisation, any header, `Host`
 * `localhost:<port>` unless given). Resolves to { status, headers, rawHeaders, body }.
 */
export function rawRequest(port, path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { host: `localhost:${port}`, ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/** Parse one Set-Cookie header value into { name, value, attrs } (attr names lower-cased). */
export function parseSetCookie(line) {
  const [pair, ...rest] = line.split(';');
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const a of rest) {
    const [k, ...v] = a.trim().split('=');
    if (k) attrs[k.toLowerCase()] = v.length ? v.join('=') : true;
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs };
}

export class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  /** Apply a response's Set-Cookie headers; returns the parsed lines. */
  update(response) {
    const lines = response.headers.getSetCookie ? response.headers.getSetCookie() : [];
    const parsed = lines.map(parseSetCookie);
    for (const c of parsed) {
      if (c.attrs['max-age'] === '0' || c.value === '') this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return parsed;
  }

  get(name) {
    return this.cookies.get(name);
  }

  set(name, value) {
    this.cookies.set(name, value);
  }

  delete(name) {
    this.cookies.delete(name);
  }

  names() {
    return [...this.cookies.keys()];
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  clone() {
    const j = new CookieJar();
    for (const [k, v] of this.cookies) j.cookies.set(k, v);
    return j;
  }
}
