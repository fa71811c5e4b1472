/**
 * probeKeepAlive(): the diagnosis of servers whose keep-alive responses are slower than new
 * connections. The verdict rule is tested on given measurements (deterministic); the probe itself is
 * run against real servers for what the sockets decide (how many requests, which were reused, on how
 * many connections), and for the verdict it computes, never for timings of its own. The Nagle servers
 * stall for real: Linux delays the ACK of the head by ~40 ms on a reused connection.
 */
import assert from 'node:assert/strict';
import type http2 from 'node:http2';
import net from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { type KeepAliveModeResult, classifyKeepAlive, probeKeepAlive } from '../src/index.js';
import { TEST_CERT, TEST_KEY, startH2Server } from './helpers/h2-server.js';

function mode(requestMs: number[], headToBodyMs: number[], reused: number): KeepAliveModeResult {
  const sorted = [...requestMs].sort((a, b) => a - b);
  return { totalMs: requestMs, requestMs, headToBodyMs, p50Ms: sorted[sorted.length >> 1]!, reused };
}
const many = (n: number, v: number) => Array.from({ length: n }, () => v);

describe('classifyKeepAlive', () => {
  it('keep-alive as fast as a new connection is ok', () => {
    const r = classifyKeepAlive(
      mode(many(10, 0.3), many(10, 0.05), 10),
      mode(many(10, 1.1), many(10, 0.05), 0),
      10,
    );
    assert.equal(r.verdict, 'ok');
  });

  it('a body that lags its head by ~40 ms only on reused connections is the Nagle / delayed-ACK stall', () => {
    const r = classifyKeepAlive(
      mode(many(10, 44), many(10, 43), 10),
      mode(many(10, 1.5), many(10, 0.1), 0),
      10,
    );
    assert.equal(r.verdict, 'nagle-delayed-ack');
    assert.match(r.explanation, /TCP_NODELAY/);
  });

  it('keep-alive slower before the head (not between head and body) is reported as such', () => {
    const r = classifyKeepAlive(
      mode(many(10, 30), many(10, 0.1), 10),
      mode(many(10, 2), many(10, 0.1), 0),
      10,
    );
    assert.equal(r.verdict, 'keep-alive-slower');
  });

  it('over HTTP/2, a body that comes at once when the client sends a frame is the stall, even when new connections stall too', () => {
    const r = classifyKeepAlive(
      mode(many(10, 44), many(10, 43), 10),
      mode(many(10, 44), many(10, 43), 0),
      10,
      mode(many(10, 1.2), many(10, 0.6), 10),
    );
    assert.equal(r.verdict, 'nagle-delayed-ack');
    assert.match(r.explanation, /TCP_NODELAY/);
  });

  it('over HTTP/2, a body that lags its head whatever the client sends is the server being slow, not the stall', () => {
    const r = classifyKeepAlive(
      mode(many(10, 44), many(10, 43), 10),
      mode(many(10, 44), many(10, 43), 0),
      10,
      mode(many(10, 44), many(10, 43), 10),
    );
    assert.equal(r.verdict, 'ok');
  });

  it('a server that never keeps connections is not-reusable', () => {
    const r = classifyKeepAlive(mode(many(10, 2), many(10, 0.1), 0), mode(many(10, 2), many(10, 0.1), 0), 10);
    assert.equal(r.verdict, 'not-reusable');
  });
});

interface ProbedServer {
  url: string;
  /** Connections (HTTP/2: sessions) the server accepted. */
  connections: () => number;
  /** Requests that carried a Connection header, and those that did not. */
  connectionHeader: { with: number; without: number };
  close: () => Promise<void>;
}

/**
 * A raw HTTP/1.1 server (cleartext, or TLS with the test certificate) writing head and body in two
 * writes (two TLS records over TLS); `nagle` leaves TCP_NODELAY off.
 */
function startH1Server(nagle: boolean, secure: boolean): Promise<ProbedServer> {
  let connections = 0;
  const connectionHeader = { with: 0, without: 0 };
  const sockets = new Set<net.Socket>();
  const onSocket = (s: net.Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.setNoDelay(!nagle);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, i);
        const close = /\r\nconnection: close/i.test(head);
        if (/\r\nconnection:/i.test(head)) connectionHeader.with++;
        else connectionHeader.without++;
        buf = buf.slice(i + 4);
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\n${close ? 'connection: close\r\n' : ''}\r\n`);
        s.write('hello');
        if (close) s.end();
      }
    });
    s.on('error', () => {});
  };
  const srv = secure
    ? tls.createServer({ cert: TEST_CERT, key: TEST_KEY, ALPNProtocols: ['http/1.1'] }, onSocket)
    : net.createServer(onSocket);
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        url: `${secure ? 'https' : 'http'}://127.0.0.1:${(srv.address() as net.AddressInfo).port}/`,
        connections: () => connections,
        connectionHeader,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise<void>((done) => srv.close(() => done()));
        },
      }),
    ),
  );
}

/**
 * A node:http2 server over TLS that sends HEADERS and DATA in separate writes (a turn of the loop
 * apart: node would otherwise write both at once); `nagle` turns TCP_NODELAY off on each connection.
 * `slowBodyMs`: the body comes that much after the head, whatever the client does.
 */
async function startH2NagleServer(nagle: boolean, slowBodyMs = 0): Promise<ProbedServer> {
  const connectionHeader = { with: 0, without: 0 };
  const server = await startH2Server({
    handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      if (headers.connection !== undefined) connectionHeader.with++;
      else connectionHeader.without++;
      stream.respond({ ':status': 200, 'content-length': '5' });
      if (headers[':method'] === 'HEAD') stream.end();
      else if (slowBodyMs > 0) setTimeout(() => stream.end('hello'), slowBodyMs);
      else setImmediate(() => stream.end('hello'));
    },
  });
  server.server.on('secureConnection', (s: tls.TLSSocket) => s.setNoDelay(!nagle));
  return {
    url: `${server.url}/`,
    connections: () => server.stats.sessionsTotal,
    connectionHeader,
    close: () => server.close(),
  };
}

const tlsAgent = { tls: { ca: TEST_CERT } };

describe('probeKeepAlive against real servers', () => {
  for (const secure of [false, true]) {
    for (const nagle of [false, true]) {
      const name = `HTTP/1.1${secure ? ' over TLS' : ''}, ${nagle ? 'a Nagle server' : 'a TCP_NODELAY server'}`;
      it(`${name}: keep-alive samples share one connection, each close sample has one of its own; verdict ${nagle ? 'nagle-delayed-ack' : 'ok'}`, async () => {
        const server = await startH1Server(nagle, secure);
        try {
          const r = await probeKeepAlive(server.url, { samples: 5, agent: secure ? tlsAgent : undefined });
          assert.equal(r.protocol, 'http/1.1');
          assert.equal(r.keepAlive.totalMs.length, 5);
          assert.equal(r.close.totalMs.length, 5);
          assert.equal(r.keepAlive.reused, 5);
          assert.equal(r.close.reused, 0, 'no close sample reuses a connection');
          assert.equal(r.nudged, undefined, 'nudging is for HTTP/2');
          // warm-up + 5 keep-alive on one connection; 5 close samples on 5 new ones
          assert.equal(server.connections(), 6);
          assert.deepEqual(server.connectionHeader, { with: 5, without: 6 });
          assert.equal(r.verdict, nagle ? 'nagle-delayed-ack' : 'ok', r.explanation);
        } finally {
          await server.close();
        }
      });
    }
  }

  for (const nagle of [false, true]) {
    it(`HTTP/2 over TLS, ${nagle ? 'a Nagle server' : 'a TCP_NODELAY server'}: each close sample has a session of its own, no Connection header; verdict ${nagle ? 'nagle-delayed-ack' : 'ok'}`, async () => {
      const server = await startH2NagleServer(nagle);
      try {
        const r = await probeKeepAlive(server.url, { samples: 5, agent: tlsAgent });
        assert.equal(r.protocol, 'h2');
        assert.equal(r.keepAlive.reused, 5);
        assert.equal(r.close.reused, 0, 'no close sample reuses a session');
        assert.equal(r.nudged?.reused, 5);
        // warm-up, 5 keep-alive and 5 nudged (with their 5 HEAD requests) on one session; 5 new ones
        assert.equal(server.connections(), 6);
        assert.deepEqual(server.connectionHeader, { with: 0, without: 21 });
        assert.equal(r.verdict, nagle ? 'nagle-delayed-ack' : 'ok', r.explanation);
      } finally {
        await server.close();
      }
    });
  }

  it('HTTP/2 over TLS, a server slow to send the body after the head (TCP_NODELAY on) is not called Nagle', async () => {
    const server = await startH2NagleServer(false, 50);
    try {
      const r = await probeKeepAlive(server.url, { samples: 5, agent: tlsAgent });
      assert.equal(r.close.reused, 0);
      assert.equal(r.verdict, 'ok', r.explanation);
    } finally {
      await server.close();
    }
  });

  it('rejects a sample count out of range before sending anything', async () => {
    await assert.rejects(probeKeepAlive('http://127.0.0.1:9/', { samples: 1 }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
  });
});
