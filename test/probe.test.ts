/**
 * probeKeepAlive(): the diagnosis of servers whose keep-alive responses are slower than new
 * connections. The verdict rule is tested on given measurements (deterministic); the probe itself is
 * run against real servers for what the sockets decide (how many requests, which were reused), never
 * for timings.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { type KeepAliveModeResult, classifyKeepAlive, probeKeepAlive } from '../src/index.js';

function mode(totalMs: number[], headToBodyMs: number[], reused: number): KeepAliveModeResult {
  const sorted = [...totalMs].sort((a, b) => a - b);
  return { totalMs, headToBodyMs, p50Ms: sorted[sorted.length >> 1]!, reused };
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

  it('a server that never keeps connections is not-reusable', () => {
    const r = classifyKeepAlive(mode(many(10, 2), many(10, 0.1), 0), mode(many(10, 2), many(10, 0.1), 0), 10);
    assert.equal(r.verdict, 'not-reusable');
  });
});

/** A raw server writing head and body in two writes; `nagle` leaves TCP_NODELAY off. */
function startServer(nagle: boolean): Promise<{ url: string; connections: () => number; close: () => void }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.setNoDelay(!nagle);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n')) {
        const close = /\r\nconnection: close/i.test(buf.slice(0, i));
        buf = buf.slice(i + 4);
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\n${close ? 'connection: close\r\n' : ''}\r\n`);
        s.write('hello');
        if (close) s.end();
      }
    });
    s.on('error', () => {});
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/`,
        connections: () => connections,
        close: () => {
          for (const s of sockets) s.destroy();
          srv.close();
        },
      }),
    ),
  );
}

describe('probeKeepAlive against real servers', () => {
  for (const nagle of [false, true]) {
    it(`${nagle ? 'a Nagle server' : 'a TCP_NODELAY server'}: keep-alive samples share one connection, close samples each open one`, async () => {
      const server = await startServer(nagle);
      try {
        const r = await probeKeepAlive(server.url, { samples: 5 });
        assert.equal(r.keepAlive.totalMs.length, 5);
        assert.equal(r.close.totalMs.length, 5);
        assert.equal(r.keepAlive.reused, 5);
        assert.equal(r.close.reused, 1, 'only the first close sample reuses the warm connection');
        // warm-up + 5 keep-alive on one connection; 5 close samples: the first reuses it, 4 new ones
        assert.equal(server.connections(), 5);
        assert.ok(['ok', 'nagle-delayed-ack', 'keep-alive-slower'].includes(r.verdict));
      } finally {
        server.close();
      }
    });
  }

  it('rejects a sample count out of range before sending anything', async () => {
    await assert.rejects(probeKeepAlive('http://127.0.0.1:9/', { samples: 1 }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
  });
});
