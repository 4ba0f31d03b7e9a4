// The demo API behind the proxy: a plain HTTP server that answers JSON and says whether
// (not what) a token arrived, with which scheme (`Bearer`, or `DPoP` with a proof in the
// dev stack's strict mode). It also serves a live event stream (`/events/ticks`: one
// server-sent event every `tickMs`) and a WebSocket echo (any path, upgraded). For a JWT
// access token (a route token) it also says which API (`aud`) and whom (`sub`) it is for.
// Usage: node tests/support/demo-api.mjs (env API_PORT).
import http from 'node:http';
import { WebSocketServer } from 'ws';

/** A JWT's payload, read without checking it (this demo only shows it), or null. */
const jwtPayload = (token) => {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  } catch {
    return null;
  }
};

const tokenInfo = (auth) => {
  const token = /^(?:Bearer|DPoP) (\S+)$/.exec(auth)?.[1];
  const payload = token?.split('.').length === 3 ? jwtPayload(token) : null;
  return {
    bearer_token_received: /^Bearer \S+$/.test(auth),
    token_scheme: /^(Bearer|DPoP) \S+$/.exec(auth)?.[1] ?? null,
    // Route tokens are JWTs for one API: their audience and subject; the login's own
    // token is opaque here (null).
    token_aud: payload?.aud ?? null,
    token_sub: payload?.sub ?? null,
  };
};

export async function startDemoApi({ port = 0, tickMs = 2000 } = {}) {
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    if (new URL(req.url, 'http://api').pathname.endsWith('/events/ticks')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      let tick = 0;
      const send = () => res.write(`data: ${JSON.stringify({ tick: ++tick, time: new Date().toISOString(), ...tokenInfo(auth) })}\n\n`);
      send();
      const timer = setInterval(send, tickMs);
      req.on('close', () => clearInterval(timer));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({
      message: 'Hello from the demo API',
      path: req.url,
      method: req.method,
      ...tokenInfo(auth),
      dpop_proof_received: typeof req.headers.dpop === 'string',
      time: new Date().toISOString(),
    }));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const info = tokenInfo(req.headers.authorization ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        ws.send(isBinary ? data : JSON.stringify({ echo: data.toString(), ...info }), { binary: isBinary });
      });
    });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    port: server.address().port,
    close: () => new Promise((r) => {
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections?.();
      server.close(r);
    }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const api = await startDemoApi({ port: Number(process.env.API_PORT ?? 9100) });
  console.log(`demo API: http://127.0.0.1:${api.port}/`);
}
