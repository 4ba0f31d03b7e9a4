// The floor of scripts/bench.sh (issue 27): a JavaScript Worker that answers every request
// with the same small JSON, reading nothing. No Worker that does any work can be faster on
// the same machine; the rows of edge-bff and its peers are read against it.
const BODY = '{"authenticated":false}';

export default {
  fetch() {
    return new Response(BODY, { headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
  },
};
