// The demo API behind the proxy: a plain HTTP server that answers JSON and says whether
// (not what) a token arrived, with which scheme (`Bearer`, or `DPoP` with a proof in the
// dev stack's strict mode). Usage: node tests/support/demo-api.mjs (env API_PORT).
import http from 'node:http';

export async function startDemoApi({ port = 0 } = {}) {
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({
      message: 'Hello from the demo API',
      path: req.url,
      method: req.method,
      bearer_token_received: /^Bearer \S+$/.test(auth),
      token_scheme: /^(Bearer|DPoP) \S+$/.exec(auth)?.[1] ?? null,
      dpop_proof_received: typeof req.headers.dpop === 'string',
      time: new Date().toISOString(),
    }));
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const api = await startDemoApi({ port: Number(process.env.API_PORT ?? 9100) });
  console.log(`demo API: http://127.0.0.1:${api.port}/`);
}
