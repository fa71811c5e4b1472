/**
 * Self-tests of the test helpers: before a pool test trusts what a helper says, the helper has to
 * be shown to do what it claims, with plain node:net / node:http clients (no warmpool code).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { startFaultServer } from './helpers/fault-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { nginxOrSkip, startNginx } from './helpers/nginx.js';
import { respondWith, startRawServer } from './helpers/raw-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 10 ms for at most `ms`. */
async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await sleep(10);
  }
}

/** A raw client: connect, optionally allow writing after the server's FIN. */
function connect(port: number, allowHalfOpen = false): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Collect data until a full response with Content-Length has arrived. */
function readResponse(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      const h = text.indexOf('\r\n\r\n');
      const m = /content-length: (\d+)/i.exec(text);
      if (h >= 0 && m && text.length >= h + 4 + Number(m[1])) {
        s.off('data', onData);
        s.off('error', reject);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

function get(url: string, agent?: http.Agent, method = 'GET', body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const req = http.request(url, { method, agent: agent ?? false }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    },
  );
}

test('fault server closes an idle connection at its keep-alive timeout and logs it', async () => {
  const srv = await startFaultServer({ keepAliveTimeoutMs: 150, advertiseKeepAlive: 7 });
  try {
    const s = await connect(srv.port);
    const ended = new Promise<number>((r) => s.once('end', () => r(performance.now())));
    s.write('GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: r1\r\n\r\n');
    const res = await readResponse(s);
    const idleFrom = performance.now();
    assert.match(res, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(res, /keep-alive: timeout=7\r\n/i);
    assert.match(res, /\r\n\r\nok\n$/);
    const at = await ended;
    assert.ok(at - idleFrom >= 130, `closed after ${at - idleFrom} ms`);
    s.destroy();
    await waitFor(() => srv.stats.openConnections === 0);
    const kinds = srv.log.map((e) => e.kind);
    assert.deepEqual(kinds.slice(0, 4), ['accept', 'request', 'response', 'close-by-server']);
    const close = srv.events('close-by-server')[0];
    assert.equal(close.detail, 'keep-alive timeout');
    assert.equal(srv.events('request')[0].requestId, 'r1');
    assert.equal(srv.events('request')[0].path, '/a');
    assert.equal(srv.stats.writesAfterClose, 0);
  } finally {
    await srv.close();
  }
});

test('fault server with resetInsteadOfFin gives a plain client ECONNRESET', async () => {
  const srv = await startFaultServer({ closeIdleAfterMs: 50, resetInsteadOfFin: true });
  try {
    const s = await connect(srv.port);
    const failed = new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await readResponse(s);
    const err = await failed;
    assert.equal(err.code, 'ECONNRESET');
    assert.equal(srv.events('reset').length, 1);
    assert.equal(srv.events('reset')[0].detail, 'idle close');
  } finally {
    await srv.close();
  }
});

test('fault server restart() keeps the port and drops old connections', async () => {
  const srv = await startFaultServer();
  try {
    const port = srv.port;
    const s = await connect(port);
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => {});
    await waitFor(() => srv.stats.openConnections === 1);
    await srv.restart();
    await closed;
    assert.equal(srv.port, port);
    const res = await get(`${srv.url}/after`);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok\n');
    assert.equal(srv.stats.connectionsAccepted, 2);
    assert.ok(srv.events('close-by-server').some((e) => e.detail === 'restart'));
  } finally {
    await srv.close();
  }
});

test('fault server logs bytes a client writes after the server closed', async () => {
  const srv = await startFaultServer({ closeIdleAfterMs: 50 });
  try {
    const s = await connect(srv.port, true);
    s.on('error', () => {});
    const ended = new Promise<void>((r) => s.once('end', () => r()));
    s.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    await readResponse(s);
    await ended; // the server's FIN
    s.write('POST /late HTTP/1.1\r\nHost: x\r\nX-Request-Id: late\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => srv.stats.writesAfterClose === 1);
    const w = srv.events('write-after-close')[0];
    assert.equal(w.method, 'POST');
    assert.equal(w.path, '/late');
    assert.equal(srv.stats.requestsTotal, 1, 'the late request was not processed');
    s.destroy();
  } finally {
    await srv.close();
  }
});

test('fault server: request cap with Connection: close, chunked bodies, request id counts', async () => {
  const srv = await startFaultServer({
    maxRequestsPerConnection: 2,
    announceClose: true,
    handler: (req) => ({ type: 'respond', chunked: true, chunks: ['got ', req.body] }),
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 4; i++) {
      const req = http.request(`${srv.url}/p${i}`, {
        method: 'POST',
        agent,
        headers: { 'x-request-id': `id${i % 3}`, 'transfer-encoding': 'chunked' },
      });
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        req.on('response', resolve).on('error', reject);
        req.write('ab');
        req.end(`c${i}`);
      });
      let body = '';
      for await (const d of res) body += d;
      assert.equal(body, `got abc${i}`);
      assert.equal(res.headers.connection, i % 2 === 1 ? 'close' : undefined);
    }
    assert.equal(srv.stats.connectionsAccepted, 2);
    assert.deepEqual([...srv.stats.requestsPerConnection.values()], [2, 2]);
    assert.deepEqual(srv.duplicateRequestIds(), ['id0']);
    assert.equal(srv.requests[3].body.toString(), 'abc3');
    assert.equal(srv.stats.writesAfterClose, 0);
  } finally {
    agent.destroy();
    await srv.close();
  }
});

test('fault server handler actions: reset mid-body, stall, close without response, delay', async () => {
  const srv = await startFaultServer({
    handler: (req) => {
      if (req.path === '/reset')
        return { type: 'reset-mid-body', body: 'x'.repeat(1000), bytesBeforeReset: 10 };
      if (req.path === '/close') return { type: 'close' };
      if (req.path === '/stall') return { type: 'stall' };
      if (req.path === '/stall-body') return { type: 'stall-body', body: 'abcdef', bytesBeforeStall: 3 };
      return { type: 'respond', delayMs: 100, status: 201, body: 'late' };
    },
  });
  try {
    // reset mid-body: the head arrives, then the body fails.
    const midBody = await new Promise<{ status: number; got: number; err: string }>((resolve, reject) => {
      http
        .get(`${srv.url}/reset`, (res) => {
          let got = 0;
          res.on('data', (d: Buffer) => {
            got += d.length;
          });
          res.on('error', (e: NodeJS.ErrnoException) =>
            resolve({ status: res.statusCode!, got, err: e.code ?? e.message }),
          );
          res.on('end', () => reject(new Error('body should not end')));
        })
        .on('error', () => {}); // node reports the reset on the request too; the response error is what we check
    });
    assert.equal(midBody.status, 200);
    assert.equal(midBody.got, 10);
    assert.equal(midBody.err, 'ECONNRESET');

    await assert.rejects(get(`${srv.url}/close`), /socket hang up/);

    const t0 = performance.now();
    const delayed = await get(`${srv.url}/delay`);
    assert.equal(delayed.status, 201);
    assert.ok(performance.now() - t0 >= 90);

    // stall: no head within 150 ms; stall-body: head + 3 bytes, then nothing.
    const s = await connect(srv.port);
    s.write('GET /stall HTTP/1.1\r\nHost: x\r\n\r\n');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
    });
    await sleep(150);
    assert.equal(got, '');
    s.destroy();
    const s2 = await connect(srv.port);
    s2.on('data', (d: Buffer) => {
      got += d.toString();
    });
    s2.write('GET /stall-body HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => got.endsWith('abc'));
    assert.match(got, /content-length: 6\r\n/);
    await sleep(100);
    assert.ok(got.endsWith('\r\n\r\nabc'));
    s2.destroy();
    await waitFor(() => srv.stats.openConnections === 0);
    // /delay was sent with Connection: close, so the server closed it; the client closed the stalls.
    assert.equal(srv.events('close-by-client').length, 2);
    assert.deepEqual(
      srv.events('close-by-server', 'reset').map((e) => e.detail),
      ['handler: reset mid-body', 'handler: close without response', 'after response: close'],
    );
  } finally {
    await srv.close();
  }
});

test('http-server counts connections and requests and close() ends keep-alive sockets', async () => {
  const srv = await startHttpServer((req, res) => {
    res.end(`hi ${req.url}`);
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  try {
    const results = await Promise.all([1, 2, 3, 4].map((i) => get(`${srv.url}/${i}`, agent)));
    assert.deepEqual(
      results.map((r) => r.body),
      ['hi /1', 'hi /2', 'hi /3', 'hi /4'],
    );
    assert.equal(srv.stats.requestsTotal, 4);
    assert.equal(srv.stats.connectionsTotal, 2);
    assert.equal(srv.stats.maxOpenConnections, 2);
    assert.equal(srv.stats.openConnections, 2, 'keep-alive sockets are still open');
  } finally {
    await srv.close();
    agent.destroy();
  }
  assert.equal(srv.stats.openConnections, 0);
});

test('raw server writes exact bytes in pieces and records what the client sent', async () => {
  const response = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Odd:  spaced \r\n\r\nhello';
  const srv = await startRawServer((i) =>
    i === 0 ? respondWith(response, { splitAt: [3, 20, 40], delayMs: 5 }) : [{ kind: 'reset' }],
  );
  try {
    const res = await get(`${srv.url}/raw?q=1`, undefined, 'POST', 'body!');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'hello');
    assert.equal(res.headers['x-odd'], 'spaced');
    await srv.connections[0].done;
    const sent = srv.connections[0].text();
    assert.match(sent, /^POST \/raw\?q=1 HTTP\/1\.1\r\n/);
    assert.match(sent, /\r\n\r\nbody!$/);
    assert.equal(srv.connections[0].closed, 'by-server');
    await assert.rejects(get(`${srv.url}/second`), /ECONNRESET|socket hang up/);
  } finally {
    await srv.close();
  }
});

test('nginx helper starts nginx, serves / and /echo, logs connections, stops', async (t) => {
  const bin = nginxOrSkip(t);
  if (!bin) return;
  const ngx = await startNginx({ keepaliveTimeout: '2s', keepaliveRequests: 3 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const root = await get(`${ngx.url}/`, agent);
    assert.equal(root.status, 200);
    assert.equal(root.body, 'ok\n');
    const echo = await get(`${ngx.url}/echo`, agent, 'POST', 'x'.repeat(10_000));
    assert.equal(echo.status, 200);
    assert.equal(echo.body, 'echo\n');
    const third = await get(`${ngx.url}/`, agent);
    assert.equal(third.headers.connection, 'close', 'keepalive_requests 3 closes after the third');
    // nginx writes the log line after the response, so poll for it (bounded).
    let log = await ngx.accessLog();
    for (let i = 0; i < 100 && log.length < 3; i++) {
      await sleep(10);
      log = await ngx.accessLog();
    }
    assert.equal(log.length, 3);
    assert.deepEqual(
      log.map((e) => [e.connectionRequests, e.method, e.uri, e.status]),
      [
        [1, 'GET', '/', 200],
        [2, 'POST', '/echo', 200],
        [3, 'GET', '/', 200],
      ],
    );
    assert.equal(new Set(log.map((e) => e.connection)).size, 1);
  } finally {
    agent.destroy();
    await ngx.stop();
  }
  assert.notEqual(ngx.process.exitCode ?? ngx.process.signalCode, null);
});
