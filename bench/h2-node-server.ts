// The HTTP/2 benchmark server: node:http2 over TLS (ALPN h2), in its own child process like
// bench/server.ts (forked by startH2Server in bench/common.ts), for the same reason: the client under
// test and the server each get a core of their own.
//
// It uses the core 'stream' API (not the compatibility request/response objects, which cost more per
// request) and answers every stream with a prebuilt header block and a canned body, with
// content-length, in one respond() + end(). GET only: request bodies are not expected and not read.
// SETTINGS_MAX_CONCURRENT_STREAMS is node's default (100).
//
// Certificate: the test one (test/fixtures/localhost-*.pem, for localhost and 127.0.0.1), read at
// runtime from the repository root; clients trust it through `ca` (benchCa() in common.ts).
//
// IPC as bench/server.ts: sends { port } once listening; answers { cmd: 'stats' } (requests counts
// streams, accepted and open count sessions) and { cmd: 'reset' }; exits on { cmd: 'exit' } or when
// the parent goes away.
import http2 from 'node:http2';
import { BODIES, type ServerStats, benchCert, cannedBody, serveParent } from './common.js';

const { cert, key } = benchCert();

interface Canned {
  headers: http2.OutgoingHttpHeaders;
  body: Buffer;
}
const canned = new Map<string, Canned>();
for (const [path, size] of Object.entries(BODIES)) {
  const body = cannedBody(size);
  canned.set(path, {
    headers: { ':status': 200, 'content-type': 'application/octet-stream', 'content-length': size },
    body,
  });
}
const notFound: Canned = {
  headers: { ':status': 404, 'content-type': 'text/plain', 'content-length': 10 },
  body: Buffer.from('not found\n'),
};

const stats: ServerStats = { accepted: 0, requests: 0, open: 0 };

const server = http2.createSecureServer({ cert, key, allowHTTP1: false });
server.on('session', (session) => {
  stats.accepted++;
  stats.open++;
  session.on('close', () => stats.open--);
  session.on('error', () => {}); // a client resetting its connection is not the server's problem
});
server.on('stream', (stream, headers) => {
  stats.requests++;
  stream.on('error', () => {}); // a stream reset by the client
  const res = canned.get(headers[':path'] as string) ?? notFound;
  stream.respond(res.headers);
  stream.end(res.body);
});

serveParent(server, stats);
