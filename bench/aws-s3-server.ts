// The servers of `npm run bench:aws`, in a process of their own (forked, with an IPC channel), so the
// server's work is not counted against the client being measured: s3rver, and a canned node:http
// server that answers every request with the same small object (what the SDK and the transport cost,
// with the server's cost near zero). Messages: 'count' → s3rver's connections accepted since the last
// 'reset'; 'reset'; 'close'.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startS3Server } from '../test/helpers/s3-server.js';

const server = await startS3Server();
const OBJECT = 'x'.repeat(64);
const canned = http.createServer((_req, res) => {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': OBJECT.length,
    etag: '"0123456789abcdef0123456789abcdef"',
    'last-modified': 'Mon, 30 Nov 2026 00:00:00 GMT',
  });
  res.end(OBJECT);
});
await new Promise<void>((resolve) => canned.listen(0, '127.0.0.1', resolve));
process.send!({
  endpoint: server.endpoint,
  canned: `http://127.0.0.1:${(canned.address() as AddressInfo).port}`,
});
process.on('message', async (msg: string) => {
  if (msg === 'count') process.send!({ connections: server.connections });
  else if (msg === 'reset') {
    server.resetCount();
    process.send!({ reset: true });
  } else if (msg === 'close') {
    canned.closeAllConnections();
    canned.close();
    await server.close();
    process.exit(0);
  }
});
