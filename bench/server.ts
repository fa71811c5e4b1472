// The benchmark server. It runs in its own child process (forked by bench/run.ts) so that the client
// under test and the server each get a core of their own: a server sharing the client's event loop
// would charge its own work to whichever client is being measured.
//
// It is a raw net server, not node:http, so that its cost per request is as small and as constant as
// we can make it: it finds the end of each request head (`\r\n\r\n`), reads the path from the request
// line, and writes a prebuilt HTTP/1.1 response (keep-alive, Content-Length). GET only: request bodies
// are not expected and not parsed.
//
// Options (JSON in argv[2]):
//   nagle        noDelay false, and head and body written in two separate writes (the Nagle scenario)
//   idleCloseMs  close a connection that has been idle that long (the snapshot-restore scenario)
//   backlog, acceptDelayMs  a small accept queue and a slow accept loop (the demo's bursts panel)
//
// IPC: sends { port } once listening; answers { cmd: 'stats' } with ServerStats and { cmd: 'reset' }
// by zeroing the counters; exits on { cmd: 'exit' } or when the parent goes away.
import net from 'node:net';
import { BODIES, type ServerOptions, type ServerStats, cannedBody, serveParent } from './common.js';

const opts: ServerOptions = process.argv[2] ? JSON.parse(process.argv[2]) : {};

function response(body: Buffer, close: boolean): { head: Buffer; body: Buffer; whole: Buffer } {
  const head = Buffer.from(
    'HTTP/1.1 200 OK\r\n' +
      'Content-Type: application/octet-stream\r\n' +
      `Content-Length: ${body.length}\r\n` +
      `Connection: ${close ? 'close' : 'keep-alive'}\r\n\r\n`,
    'latin1',
  );
  return { head, body, whole: Buffer.concat([head, body]) };
}

type Canned = ReturnType<typeof response>;
const keepAlive = new Map<string, Canned>();
const closing = new Map<string, Canned>();
for (const [path, size] of Object.entries(BODIES)) {
  const body = cannedBody(size);
  keepAlive.set(path, response(body, false));
  closing.set(path, response(body, true));
}
const notFound = response(Buffer.from('not found\n'), true);

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
const stats: ServerStats = { accepted: 0, requests: 0, open: 0 };
const CRLFCRLF = Buffer.from('\r\n\r\n');
const CONNECTION_CLOSE = /\r\nconnection:[ \t]*close/i;

const server = net.createServer({ noDelay: !opts.nagle }, (socket) => {
  stats.accepted++;
  stats.open++;
  socket.on('close', () => stats.open--);
  socket.on('error', () => {}); // a client resetting its connection is not the server's problem
  // The thread sleeps (Atomics.wait: no CPU spent, so other processes run at full speed) and accepts
  // nothing meanwhile: the kernel's accept queue (the backlog) fills up.
  if (opts.acceptDelayMs) Atomics.wait(SLEEPER, 0, 0, opts.acceptDelayMs);
  if (opts.idleCloseMs) {
    // 'timeout' fires after idleCloseMs without traffic. destroy() closes the descriptor the way an
    // idle-closing server (nginx keepalive_timeout, a load balancer) does: a FIN now, and a RST for
    // whatever the client still sends.
    socket.setTimeout(opts.idleCloseMs, () => socket.destroy());
  }

  let pending: Buffer | null = null; // an incomplete request head carried over from the last chunk
  socket.on('data', (chunk: Buffer) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let start = 0;
    for (;;) {
      const end = buf.indexOf(CRLFCRLF, start);
      if (end === -1) break;
      stats.requests++;
      // Request line: "GET /path HTTP/1.1"
      const sp1 = buf.indexOf(32, start);
      const sp2 = buf.indexOf(32, sp1 + 1);
      const path = buf.toString('latin1', sp1 + 1, sp2);
      const head = buf.toString('latin1', start, end + 2);
      const close = CONNECTION_CLOSE.test(head);
      const res = (close ? closing : keepAlive).get(path) ?? notFound;
      if (opts.nagle) {
        // Two writes with Nagle on: the body waits for the ACK of the head, and a client that delays
        // its ACK (and does not answer before it has the whole response) pays for it.
        socket.write(res.head);
        socket.write(res.body);
      } else {
        socket.write(res.whole);
      }
      if (close || res === notFound) {
        socket.end();
        return;
      }
      start = end + 4;
    }
    if (start < buf.length) pending = buf.subarray(start);
  });
});

serveParent(server, stats, opts.backlog);
