// The HTTP/2 benchmark server: TLS (ALPN h2) and a canned-response HTTP/2 server of our own
// (bench/h2-wire/canned-connection.ts), in its own child process like bench/server.ts (forked by
// startH2Server in bench/common.ts), for the same reason: the client under test and the server each
// get a core of their own. Like bench/server.ts it is as cheap per request as we can make it, so that
// the clients are what is measured; `npm run bench -- --h2-server=node` runs the matrix against a
// node:http2 server instead (bench/h2-node-server.ts), for comparison.
//
// Each request is answered with a prebuilt head (:status, content-type, content-length) and a canned
// body by its :path; GET only: request bodies are not read. SETTINGS_MAX_CONCURRENT_STREAMS is 100.
//
// Certificate: the test one (test/fixtures/localhost-*.pem, for localhost and 127.0.0.1), read at
// runtime from the repository root; clients trust it through `ca` (benchCa() in common.ts).
//
// IPC as bench/server.ts: sends { port } once listening; answers { cmd: 'stats' } (requests counts
// streams, accepted and open count connections) and { cmd: 'reset' }; exits on { cmd: 'exit' } or
// when the parent goes away.
import tls from 'node:tls';
import { type ServerStats, benchCert, serveParent } from './common.js';
import { serveCannedH2 } from './h2-wire/canned-connection.js';
import { cannedH2Responses } from './h2-wire/canned-responses.js';

const { cert, key } = benchCert();
const stats: ServerStats = { accepted: 0, requests: 0, open: 0 };
const respond = cannedH2Responses();
const onRequest = () => {
  stats.requests++;
};

const server = tls.createServer({ cert, key, ALPNProtocols: ['h2'] }, (socket) => {
  stats.accepted++;
  stats.open++;
  socket.on('close', () => stats.open--);
  if (socket.alpnProtocol !== 'h2') {
    socket.destroy(); // HTTP/2 only, as the node:http2 server with allowHTTP1 false
    return;
  }
  serveCannedH2(socket, { respond, onRequest });
});
server.on('tlsClientError', () => {}); // a client that gave up during the handshake

serveParent(server, stats);
