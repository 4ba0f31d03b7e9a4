// A real HTTP upstream for proxy tests: records everything it receives and answers
//   /echo...            JSON of what arrived (method, url, headers, body length + sha256)
//   /bytes?n=N          N deterministic binary bytes
//   /upload             the request body back, byte for byte (application/octet-stream)
//   /set-cookie         a response that tries to set cookies
//   /hop-by-hop         a response with every hop-by-hop header (and one named by Connection)
//   /hostile-headers    a response that sets CORS, Clear-Site-Data, HSTS and cookies
//   /status/NNN         that status with a small JSON body
//   /unauthorized-once?id=X  401 for the first call with a given id, 200 afterwards
//   /slow?ms=N          answers after N ms
//   /sse                server-sent events: `data: first` at once, `data: second` and the
//                       end only when the test calls releaseSse()
//   WebSocket upgrades  any path: echoes text and binary messages; the text `close:NNNN`
//                       closes with that code; every handshake is recorded in `wsHandshakes`
import http from 'node:http';
import { createHash } from 'node:crypto';
import { WebSocketServer } from 'ws';

export function deterministicBytes(n) {
  const buf = Buffer.alloc(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

export async function startUpstream({ port = 0, record = true } = {}) {
  const seen = [];
  const wsHandshakes = [];
  const sseWaiters = [];
  const recordRequests = record;
  const rejectedIds = new Set();
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://upstream');
    const record = {
      method: req.method,
      url: req.url,
      path: url.pathname,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyLength: body.length,
      bodySha256: createHash('sha256').update(body).digest('hex'),
    };
    if (recordRequests) seen.push(record);
    const json = (status, obj, extra = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...extra });
      res.end(JSON.stringify(obj));
    };
    if (url.pathname.endsWith('/bytes')) {
      const n = Number(url.searchParams.get('n') ?? 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      return res.end(deterministicBytes(n));
    }
    if (url.pathname.endsWith('/upload')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return res.end(body);
    }
    if (url.pathname.endsWith('/set-cookie')) {
      res.setHeader('set-cookie', ['upstream=1; Path=/', '__Host-bff-session=evil; Path=/; Secure']);
      return json(200, { ok: true });
    }
    if (url.pathname.endsWith('/hostile-headers')) {
      res.setHeader('set-cookie', ['upstream=1; Path=/']);
      res.setHeader('access-control-allow-origin', '*');
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('access-control-expose-headers', 'x-secret');
      res.setHeader('clear-site-data', '"cookies", "storage"');
      res.setHeader('strict-transport-security', 'max-age=1');
      res.setHeader('x-kept', 'yes');
      return json(200, { hostile: true });
    }
    if (url.pathname.endsWith('/hop-by-hop')) {
      res.writeHead(200, {
        'content-type': 'text/plain',
        connection: 'keep-alive, x-private-hop',
        'keep-alive': 'timeout=5',
        trailer: 'x-checksum',
        upgrade: 'h2c',
        te: 'trailers',
        'proxy-authenticate': 'Basic realm="upstream"',
        'proxy-authorization': 'Basic dXA6c3RyZWFt',
        'x-kept': 'yes',
      });
      return res.end('hop');
    }
    const status = /\/status\/(\d{3})$/.exec(url.pathname);
    if (status) return json(Number(status[1]), { status: Number(status[1]) });
    if (url.pathname.endsWith('/unauthorized-once')) {
      const id = url.searchParams.get('id') ?? '';
      if (!rejectedIds.has(id)) {
        rejectedIds.add(id);
        return json(401, { error: 'invalid_token' });
      }
      return json(200, { ok: true });
    }
    if (url.pathname.endsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write('data: first\n\n');
      await new Promise((resolve) => sseWaiters.push(resolve));
      res.write('data: second\n\n');
      return res.end();
    }
    if (url.pathname.endsWith('/always-401')) return json(401, { error: 'invalid_token' });
    if (url.pathname.endsWith('/slow')) {
      await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 1000)));
      return json(200, { slow: true });
    }
    return json(200, record);
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    wsHandshakes.push({ url: req.url, headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        const close = !isBinary && /^close:(\d{4})$/.exec(data.toString());
        if (close) ws.close(Number(close[1]), 'closed by the upstream');
        else ws.send(data, { binary: isBinary });
      });
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    server,
    seen,
    wsHandshakes,
    /** Let every open `/sse` stream send its second event and end. */
    releaseSse: () => sseWaiters.splice(0).forEach((resolve) => resolve()),
    port: server.address().port,
    base: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => {
      sseWaiters.splice(0).forEach((resolve) => resolve());
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections?.();
      server.close(r);
    }),
  };
}
