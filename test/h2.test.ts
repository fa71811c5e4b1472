/**
 * HTTP/2: real node:http2 servers over TLS (test certificate) and in cleartext (h2c), through the
 * public API. Counts come from the servers (sessions, streams) and from agent.stats().
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import {
  Agent,
  type AgentOptions,
  Client,
  type Clock,
  HeadersTimeoutError,
  type Response,
  getGlobalAgent,
  request,
  setGlobalAgent,
} from '../src/index.js';
import { LIBRARY, runChild } from './helpers/child.js';
import {
  type H2Handler,
  TEST_CERT,
  type TestH2Server,
  type TestHttpsServer,
  startH2Server,
  startHttpsServer,
  startSilentProxy,
} from './helpers/h2-server.js';
import { waitFor } from './helpers/pool-util.js';

const tls = { ca: TEST_CERT };

function newAgent(options: AgentOptions = {}): Agent {
  return new Agent({ tls, ...options });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every few ms until it holds (the test's own timeout bounds the wait). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(5);
}

/** A handler that holds every stream until `count` streams are open at once, then answers them all. */
function holdUntil(count: number): H2Handler {
  const held: Array<() => void> = [];
  return (stream, headers) => {
    held.push(() => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200 });
      stream.end(`done ${headers[':path']}`);
    });
    if (held.length === count) for (const release of held.splice(0)) release();
  };
}

/** Echoes each request chunk as it arrives; the head goes out at once. */
const echoHandler: H2Handler = (stream) => {
  stream.respond({ ':status': 200 });
  stream.on('data', (chunk: Buffer) => stream.write(chunk));
  stream.on('end', () => stream.end());
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function* chunks(parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) {
    await sleep(1);
    yield Buffer.from(p);
  }
}

const servers: TestH2Server[] = [];
async function h2Server(...args: Parameters<typeof startH2Server>): Promise<TestH2Server> {
  const s = await startH2Server(...args);
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.close();
});

describe('HTTP/2', () => {
  it('a GET through request() goes over h2 (ALPN), with httpVersion 2 and h2 connection info', async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    const server = await h2Server({
      handler: (stream, headers) => {
        seen.push(headers);
        stream.respond({ ':status': 200, 'x-multi': ['a', 'b'], 'set-cookie': ['c=1', 'd=2'] });
        stream.end('hello h2');
      },
    });
    const agent = newAgent();
    const previous = setGlobalAgent(agent);
    try {
      const res = await request(`${server.url}/path?q=1`, {
        headers: {
          'X-Custom': 'yes',
          Connection: 'keep-alive',
          'Keep-Alive': 'timeout=5',
          Host: 'example.test',
        },
      });
      assert.equal(res.status, 200);
      assert.equal(res.statusText, 'OK');
      assert.equal(res.httpVersion, '2');
      assert.equal(res.connection.protocol, 'h2');
      assert.equal(res.connection.reused, false);
      assert.deepEqual(res.headers['set-cookie'], ['c=1', 'd=2']);
      assert.deepEqual(res.headers['x-multi'], ['a', 'b']);
      assert.equal(res.headers[':status'], undefined);
      // Converted from node:http2's object on first read: a plain object like HTTP/1.1's, and the
      // same one on every read.
      assert.equal(Object.getPrototypeOf(res.headers), Object.prototype);
      assert.equal(res.headers, res.headers);
      assert.match(inspect(res), /headers: \{[^}]*'x-multi': \[ 'a', 'b' \]/); // console.log shows them
      assert.equal(await res.body.text(), 'hello h2');
      const h = seen[0]!;
      assert.equal(h[':method'], 'GET');
      assert.equal(h[':path'], '/path?q=1');
      assert.equal(h[':scheme'], 'https');
      assert.equal(h[':authority'], 'example.test');
      assert.equal(h['x-custom'], 'yes');
      assert.equal(h.connection, undefined);
      assert.equal(h['keep-alive'], undefined);
      assert.equal(h.host, undefined);

      const again = await request(`${server.url}/second`);
      assert.equal(again.connection.reused, true);
      assert.equal(again.connection.id, res.connection.id);
      await again.body.dump();
      const stats = agent.originStats(server.url)!;
      assert.equal(stats.protocol, 'h2');
      assert.equal(stats.open, 1);
      assert.equal(stats.activeStreams, 0);
      assert.deepEqual(stats.streamLimits, [1000]); // node's default: no limit, capped at 1000
    } finally {
      setGlobalAgent(previous ?? new Agent());
      await agent.close();
    }
  });

  it('ALPN offers h2 whenever the library is imported (the global agent speaks h2)', async () => {
    const server = await h2Server();
    assert.equal(getGlobalAgent().options.allowHttp2, true);
    const client = new Client({ tls }); // no agent: the global one (the test CA comes per client)
    const r = await client.request(`${server.url}/`);
    assert.equal(r.httpVersion, '2');
    await r.body.dump();
  });

  it('a server limit of 2 streams: 8 concurrent long-running streams use exactly 4 sessions and all succeed', async () => {
    const server = await h2Server({ settings: { maxConcurrentStreams: 2 }, handler: holdUntil(8) });
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const responses = await Promise.all(
        Array.from({ length: 8 }, (_, i) => client.request(`${server.url}/${i}`)),
      );
      const bodies = await Promise.all(responses.map((r) => r.body.text()));
      assert.deepEqual(
        bodies,
        Array.from({ length: 8 }, (_, i) => `done /${i}`),
      );
      assert.equal(server.stats.sessionsTotal, 4);
      assert.equal(server.stats.maxOpenStreams, 8);
      for (const s of server.stats.sessions) assert.equal(s.streams, 2);
      const stats = agent.originStats(server.url)!;
      assert.equal(stats.created, 4);
      assert.deepEqual(stats.streamLimits, [2, 2, 2, 2]);
    } finally {
      await agent.close();
    }
  });

  it('a server limit of 100: 50 concurrent requests share one session', async () => {
    const server = await h2Server({ settings: { maxConcurrentStreams: 100 }, handler: holdUntil(50) });
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) => client.request(`${server.url}/${i}`)),
      );
      let active = -1;
      active = agent.originStats(server.url)!.activeStreams;
      await Promise.all(responses.map((r) => r.body.dump()));
      assert.ok(active >= 0);
      assert.equal(server.stats.sessionsTotal, 1);
      assert.equal(server.stats.maxOpenStreams, 50);
      assert.equal(agent.originStats(server.url)!.created, 1);
    } finally {
      await agent.close();
    }
  });

  it('at maxConnectionsPerOrigin with every session full, requests queue and are served in order', async () => {
    const arrived: string[] = [];
    const server = await h2Server({
      settings: { maxConcurrentStreams: 1 },
      handler: (stream, headers) => {
        arrived.push(String(headers[':path']));
        setTimeout(() => {
          stream.respond({ ':status': 200 });
          stream.end('ok');
        }, 5);
      },
    });
    const agent = newAgent({ maxConnectionsPerOrigin: 2 });
    const client = new Client({ agent });
    try {
      const pending = Array.from({ length: 8 }, (_, i) => client.request(`${server.url}/${i}`));
      const responses = await Promise.all(pending.map(async (p) => (await p).body.text()));
      assert.deepEqual(responses, Array(8).fill('ok'));
      assert.equal(server.stats.sessionsTotal, 2);
      assert.equal(server.stats.maxOpenStreams, 2);
      assert.deepEqual(arrived.slice(2), ['/2', '/3', '/4', '/5', '/6', '/7']);
    } finally {
      await agent.close();
    }
  });

  it('a server that allows 0 streams, then raises the limit: the waiters are served once it rises, on at most 2 sessions', async () => {
    const server = await h2Server({ settings: { maxConcurrentStreams: 0 } });
    // idleTimeout shorter than the wait: a session held at 0 by its server is not retired as idle
    // while requests wait on it (that would only make the pool dial another).
    const agent = newAgent({ idleTimeout: 50 });
    const client = new Client({ agent });
    try {
      const pending = Array.from({ length: 5 }, (_, i) => client.request(`${server.url}/${i}`));
      await until(() => {
        const st = agent.originStats(server.url);
        return st !== undefined && st.open >= 1 && st.connecting === 0 && st.queued === 5;
      });
      await sleep(200);
      assert.equal(agent.originStats(server.url)!.queued, 5);
      for (const info of server.stats.sessions) {
        if (!info.session.destroyed) info.session.settings({ maxConcurrentStreams: 100 });
      }
      const bodies = await Promise.all(pending.map(async (p) => (await p).body.text()));
      assert.deepEqual(bodies, Array(5).fill('ok\n'));
      const stats = agent.originStats(server.url)!;
      assert.ok(stats.created <= 2, `created ${stats.created} sessions`);
      assert.ok(server.stats.sessionsTotal <= 2, `server saw ${server.stats.sessionsTotal} sessions`);
    } finally {
      await agent.close();
    }
  });

  it('a server that allows 0 streams on every session: the waiters fail with WARMPOOL_QUEUE_TIMEOUT, and at most 2 sessions were opened', async () => {
    const server = await h2Server({ settings: { maxConcurrentStreams: 0 } });
    const agent = newAgent({ queueTimeout: 300 });
    const client = new Client({ agent });
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => client.request(`${server.url}/${i}`)),
      );
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.equal((r.reason as { code?: string }).code, 'WARMPOOL_QUEUE_TIMEOUT');
      }
      const stats = agent.originStats(server.url)!;
      assert.ok(stats.created <= 2, `created ${stats.created} sessions`);
      assert.ok(server.stats.sessionsTotal <= 2, `server saw ${server.stats.sessionsTotal} sessions`);
      assert.equal(server.stats.streamsTotal, 0);
    } finally {
      await agent.close();
    }
  });

  it('a server that allows 0 streams and closes every session soon after: dials back off instead of looping until queueTimeout', async () => {
    const server = await h2Server({ settings: { maxConcurrentStreams: 0 } });
    server.server.on('session', (session: http2.ServerHttp2Session) => setTimeout(() => session.close(), 20));
    const agent = newAgent({ queueTimeout: 1000 });
    const client = new Client({ agent });
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => client.request(`${server.url}/${i}`)),
      );
      for (const r of results)
        assert.equal((r as PromiseRejectedResult).reason?.code, 'WARMPOOL_QUEUE_TIMEOUT');
      // Without the backoff: a dial every ~20 ms for the whole second (87 sessions measured). With it,
      // the waits double from 50 ms: 50 + 100 + 200 + 400 ms leave room for about six dials.
      assert.ok(server.stats.sessionsTotal <= 8, `server saw ${server.stats.sessionsTotal} sessions`);
    } finally {
      await agent.close();
    }
  });

  it('agent.close() lets in-flight streams finish; agent.destroy() fails them with AgentClosedError', async () => {
    const gates: Array<() => void> = [];
    const server = await h2Server({
      handler: (stream) => {
        stream.respond({ ':status': 200 });
        stream.write('part;');
        gates.push(() => {
          if (!stream.destroyed) stream.end('rest');
        });
      },
    });
    const graceful = newAgent();
    const res = await new Client({ agent: graceful }).request(`${server.url}/a`);
    const closed = graceful.close();
    for (const g of gates.splice(0)) g();
    assert.equal(await res.body.text(), 'part;rest');
    await closed;
    assert.equal(graceful.stats().open, 0);

    const doomed = newAgent();
    const res2 = await new Client({ agent: doomed }).request(`${server.url}/b`);
    const text = res2.body.text();
    await doomed.destroy();
    await assert.rejects(text, { code: 'WARMPOOL_AGENT_CLOSED' });
    assert.equal(doomed.stats().open, 0);
  });

  it('a body cut short (shorter than its content-length, or its socket dies) fails with a typed error, never ends as complete', async () => {
    const server = await h2Server({
      handler: (stream, headers) => {
        stream.respond({ ':status': 200, 'content-length': '100' });
        stream.write('partial');
        setTimeout(() => {
          // node:http2 ends a stream (END_STREAM) before it resets it: 7 of 100 bytes, then the end.
          if (headers[':path'] === '/short') stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          else server.dropConnections();
        }, 10);
      },
    });
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const reset = await client.request(`${server.url}/short`);
      await assert.rejects(reset.body.text(), { code: 'WARMPOOL_HTTP2_ERROR' });
      const cut = await client.request(`${server.url}/cut`);
      await assert.rejects(cut.body.text(), { code: 'WARMPOOL_SOCKET_CLOSED' });
    } finally {
      await agent.close();
    }
  });

  it('agent.stats() shows active streams and the server stream limit while streams are open', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const server = await h2Server({
      settings: { maxConcurrentStreams: 7 },
      handler: async (stream) => {
        stream.respond({ ':status': 200 });
        await gate;
        stream.end('x');
      },
    });
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const responses = await Promise.all([1, 2, 3].map((i) => client.request(`${server.url}/${i}`)));
      const stats = agent.originStats(server.url)!;
      assert.equal(stats.open, 1);
      assert.equal(stats.busy, 1);
      assert.equal(stats.activeStreams, 3);
      assert.deepEqual(stats.streamLimits, [7]);
      release();
      await Promise.all(responses.map((r) => r.body.text()));
      assert.equal(agent.originStats(server.url)!.activeStreams, 0);
    } finally {
      release();
      await agent.close();
    }
  });

  it('fan-out: 50 operations, each through a new Client with 2 concurrent bidirectional streams, use one session (vs 50 for a session per operation)', async () => {
    const server = await h2Server({ settings: { maxConcurrentStreams: 100 }, handler: echoHandler });
    const agent = newAgent();
    const previous = setGlobalAgent(agent);
    const parts = ['alpha;', 'beta;', 'gamma;'];
    const expected = parts.join('');
    try {
      // warmpool: a new Client per operation (the SDK pattern), no explicit agent: the global one.
      const warmpoolTimes: number[] = [];
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const start = performance.now();
          const client = new Client({ tls });
          const results = await Promise.all(
            [0, 1].map(async () => {
              const res = await client.request(`${server.url}/echo`, { method: 'POST', body: chunks(parts) });
              return res.body.text();
            }),
          );
          warmpoolTimes.push(performance.now() - start);
          assert.deepEqual(results, [expected, expected]);
        }),
      );
      const warmpoolSessions = server.stats.sessionsTotal;

      // Baseline: a plain node:http2 session per operation.
      const baselineTimes: number[] = [];
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const start = performance.now();
          const session = http2.connect(server.url, { ca: TEST_CERT });
          session.on('error', () => {});
          const results = await Promise.all(
            [0, 1].map(
              (): Promise<string> =>
                new Promise((resolve, reject) => {
                  const stream = session.request({ ':method': 'POST', ':path': '/echo' });
                  let text = '';
                  stream.setEncoding('utf8');
                  stream.on('data', (d: string) => {
                    text += d;
                  });
                  stream.on('end', () => resolve(text));
                  stream.on('error', reject);
                  void (async () => {
                    for await (const c of chunks(parts)) stream.write(c);
                    stream.end();
                  })();
                }),
            ),
          );
          session.close();
          baselineTimes.push(performance.now() - start);
          assert.deepEqual(results, [expected, expected]);
        }),
      );
      const baselineSessions = server.stats.sessionsTotal - warmpoolSessions;

      assert.equal(warmpoolSessions, 1);
      assert.equal(baselineSessions, 50);
      const result = {
        operations: 50,
        streamsPerOperation: 2,
        serverStreamLimit: 100,
        warmpool: { sessions: warmpoolSessions, p50Ms: Number(median(warmpoolTimes).toFixed(2)) },
        sessionPerOperation: { sessions: baselineSessions, p50Ms: Number(median(baselineTimes).toFixed(2)) },
      };
      console.log(`h2 fan-out: ${JSON.stringify(result)}`);
      fs.writeFileSync(
        new URL('../../build/h2-fanout.json', import.meta.url),
        `${JSON.stringify(result, null, 2)}\n`,
      );
    } finally {
      setGlobalAgent(previous ?? new Agent());
      await agent.close();
    }
  });

  for (const variant of [
    { name: 'graceful GOAWAY (NO_ERROR)', code: http2.constants.NGHTTP2_NO_ERROR },
    {
      name: 'GOAWAY with an error code (ENHANCE_YOUR_CALM)',
      code: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
    },
  ]) {
    it(`${variant.name} mid-traffic: zero failed idempotent requests`, async () => {
      let goawaySent = false;
      const server = await h2Server({
        settings: { maxConcurrentStreams: 100 },
        handler: (stream, headers, session) => {
          if (session.index === 0 && session.streams === 20 && !goawaySent) {
            goawaySent = true;
            // Streams up to this one will be answered; later ones were never processed.
            session.session.goaway(variant.code, stream.id!);
          }
          setTimeout(() => {
            if (stream.destroyed || stream.closed) return;
            stream.respond({ ':status': 200 });
            stream.end(`ok ${headers[':path']}`);
          }, 10);
        },
      });
      const agent = newAgent();
      const client = new Client({ agent });
      try {
        const results = await Promise.allSettled(
          Array.from({ length: 40 }, async (_, i) => {
            const res = await client.request(`${server.url}/${i}`);
            return res.body.text();
          }),
        );
        const failed = results.filter((r) => r.status === 'rejected');
        assert.deepEqual(failed, []);
        assert.deepEqual(
          results.map((r) => (r as PromiseFulfilledResult<string>).value),
          Array.from({ length: 40 }, (_, i) => `ok /${i}`),
        );
        assert.ok(goawaySent);
        assert.ok(server.stats.sessionsTotal >= 2);
        const stats = agent.originStats(server.url)!;
        assert.ok(stats.retried > 0, 'some requests were replayed on another session');
      } finally {
        await agent.close();
      }
    });
  }

  it('a stream refused with REFUSED_STREAM is replayed once on another session', async () => {
    let refused = 0;
    const server = await h2Server({
      handler: (stream, _headers, session) => {
        if (session.index === 0 && refused === 0) {
          refused++;
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          return;
        }
        stream.respond({ ':status': 200 });
        stream.end(`session ${session.index}`);
      },
    });
    const agent = newAgent();
    try {
      const res = await new Client({ agent }).request(`${server.url}/x`, { method: 'POST', body: 'payload' });
      assert.equal(await res.body.text(), 'session 1');
      assert.equal(res.retried, true);
      assert.equal(refused, 1);
      assert.equal(server.stats.sessionsTotal, 2);
    } finally {
      await agent.close();
    }
  });

  it('a session whose server went silent (no PING answer) is detected before reuse and replaced', async () => {
    const server = await h2Server();
    const proxy = await startSilentProxy(server.port);
    // The test moves both clocks forward instead of sleeping past the liveness threshold.
    let skew = 0;
    const clock: Clock = { monotonicMs: () => performance.now() + skew, wallMs: () => Date.now() + skew };
    const agent = newAgent({ clock, tls: { ca: TEST_CERT, servername: 'localhost' } });
    const client = new Client({ agent });
    try {
      const first = await client.request(`${proxy.url}/1`);
      await first.body.dump();
      proxy.silenceAll();
      skew += 1500; // idle "1.5 s": under idleTimeout, past the PING threshold
      const second = await client.request(`${proxy.url}/2`);
      assert.equal(await second.body.text(), 'ok\n');
      assert.notEqual(second.connection.id, first.connection.id);
      assert.equal(second.connection.reused, false);
      assert.equal(proxy.connections, 2);
      const stats = agent.originStats(proxy.url)!;
      assert.equal(stats.closed.stale, 1);
      assert.equal(stats.open, 1);
    } finally {
      await agent.close();
      await proxy.close();
    }
  });

  it('a session idle past the threshold answers its PING and is reused', async () => {
    const server = await h2Server();
    let skew = 0;
    const clock: Clock = { monotonicMs: () => performance.now() + skew, wallMs: () => Date.now() + skew };
    const agent = newAgent({ clock });
    const client = new Client({ agent });
    try {
      const first = await client.request(`${server.url}/1`);
      await first.body.dump();
      skew += 1500;
      const second = await client.request(`${server.url}/2`);
      await second.body.dump();
      assert.equal(second.connection.id, first.connection.id);
      assert.equal(server.stats.sessionsTotal, 1);
    } finally {
      await agent.close();
    }
  });

  it('bidirectional echo: the client sees chunk k back before it sends chunk k+1', async () => {
    const server = await h2Server({ handler: echoHandler });
    const agent = newAgent();
    const log: string[] = [];
    const echoed: Array<() => void> = [];
    const echoes = Array.from(
      { length: 5 },
      (_, k) =>
        new Promise<void>((resolve) => {
          echoed[k] = resolve;
        }),
    );
    async function* body(): AsyncIterable<Uint8Array> {
      for (let k = 0; k < 5; k++) {
        log.push(`send ${k}`);
        yield Buffer.from(`chunk-${k};`);
        await echoes[k];
      }
    }
    try {
      const res = await new Client({ agent }).request(`${server.url}/echo`, { method: 'POST', body: body() });
      assert.equal(res.httpVersion, '2');
      let text = '';
      let next = 0;
      for await (const chunk of res.body) {
        text += (chunk as Buffer).toString();
        while (next < 5 && text.includes(`chunk-${next};`)) {
          log.push(`recv ${next}`);
          echoed[next]!();
          next++;
        }
      }
      assert.deepEqual(log, Array.from({ length: 5 }, (_, k) => [`send ${k}`, `recv ${k}`]).flat());
      assert.equal(agent.originStats(server.url)!.activeStreams, 0);
    } finally {
      await agent.close();
    }
  });

  it('backpressure both ways: an unread response stalls the server, an unread request body stalls the client', async () => {
    const total = 8 * 1024 * 1024;
    const piece = Buffer.alloc(16 * 1024, 120);
    let serverWritten = 0;
    let serverStream: http2.ServerHttp2Stream | undefined;
    const server = await h2Server({
      handler: async (stream, headers) => {
        if (headers[':path'] === '/download') {
          stream.respond({ ':status': 200 });
          while (serverWritten < total && !stream.destroyed) {
            serverWritten += piece.length;
            if (!stream.write(piece)) await new Promise((resolve) => stream.once('drain', resolve));
          }
          stream.end();
        } else {
          serverStream = stream; // upload: not read until the test says so
          stream.respond({ ':status': 200 });
        }
      },
    });
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const download = await client.request(`${server.url}/download`);
      await sleep(100);
      assert.ok(
        serverWritten < total,
        `server wrote ${serverWritten} of ${total} bytes to a reader that reads nothing`,
      );
      assert.equal((await download.body.bytes()).length, total);

      let produced = 0;
      async function* upload(): AsyncIterable<Uint8Array> {
        while (produced < total) {
          produced += piece.length;
          yield piece;
        }
      }
      const res = await client.request(`${server.url}/upload`, { method: 'POST', body: upload() });
      await sleep(100);
      assert.ok(
        produced < total,
        `client produced ${produced} of ${total} bytes for a server that reads nothing`,
      );
      let received = 0;
      serverStream!.on('data', (d: Buffer) => {
        received += d.length;
      });
      serverStream!.on('end', () => serverStream!.end(String(received)));
      assert.equal(await res.body.text(), String(total));
    } finally {
      await agent.close();
    }
  });

  it('a server that offers only http/1.1 in ALPN gets HTTP/1.1 from the same agent', async () => {
    const h2 = await h2Server();
    const h1 = await startHttpsServer();
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const a = await client.request(`${h2.url}/`);
      await a.body.dump();
      const b = await client.request(`${h1.url}/`);
      assert.equal(await b.body.text(), 'ok\n');
      assert.equal(a.httpVersion, '2');
      assert.equal(b.httpVersion, '1.1');
      assert.equal(b.connection.protocol, 'http/1.1');
      assert.deepEqual(h1.connections, ['http/1.1']);
      assert.equal(agent.originStats(h1.url)!.protocol, 'http/1.1');
      assert.equal(agent.originStats(h2.url)!.protocol, 'h2');
    } finally {
      await agent.close();
      await h1.close();
    }
  });

  it('a second connection to the origin resumes the TLS session', async () => {
    const server = await h2Server();
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const first = await client.request(`${server.url}/1`);
      await first.body.dump();
      // The server ends the session; the next request needs a new connection.
      server.stats.sessions[0]!.session.close();
      await until(() => agent.originStats(server.url)!.open === 0);
      const second = await client.request(`${server.url}/2`);
      await second.body.dump();
      assert.notEqual(second.connection.id, first.connection.id);
      assert.equal(server.stats.sessionsTotal, 2);
      assert.equal(server.stats.sessions[0]!.tlsResumed, false);
      assert.equal(server.stats.sessions[1]!.tlsResumed, true);
    } finally {
      await agent.close();
    }
  });

  it("h2c: http2: 'prior-knowledge' speaks HTTP/2 in cleartext", async () => {
    const server = await h2Server({
      secure: false,
      settings: { maxConcurrentStreams: 3 },
      handler: holdUntil(6),
    });
    const agent = new Agent({ http2: 'prior-knowledge' });
    const client = new Client({ agent });
    try {
      const responses: Response[] = await Promise.all(
        Array.from({ length: 6 }, (_, i) => client.request(`${server.url}/${i}`)),
      );
      for (const r of responses) assert.equal(r.httpVersion, '2');
      await Promise.all(responses.map((r) => r.body.dump()));
      assert.equal(server.stats.sessionsTotal, 2);
      assert.equal(agent.originStats(server.url)!.protocol, 'h2');
    } finally {
      await agent.close();
    }
  });

  describe('maxHeaderSize and maxHeaderCount apply over HTTP/2', () => {
    /** Answers /big-field with one 5 KB field, /fields-N with N fields, /trailers-N with N trailer fields, /list-1m with 1 MiB of fields. */
    const headsHandler: H2Handler = (stream, headers) => {
      const path = String(headers[':path']);
      const head: http2.OutgoingHttpHeaders = { ':status': 200 };
      let trailers = 0;
      if (path === '/big-field') head['x-big'] = 'a'.repeat(5000);
      else if (path.startsWith('/fields-')) {
        for (let i = 0; i < Number(path.slice(8)); i++) head[`x-f${i}`] = 'v';
      } else if (path === '/list-1m') {
        for (let i = 0; i < 32; i++) head[`x-l${i}`] = 'b'.repeat(32 * 1024);
      } else if (path.startsWith('/trailers-')) trailers = Number(path.slice(10));
      if (trailers > 0) {
        stream.respond(head, { waitForTrailers: true });
        stream.on('wantTrailers', () => {
          const t: http2.OutgoingHttpHeaders = {};
          for (let i = 0; i < trailers; i++) t[`x-t${i}`] = 'v';
          stream.sendTrailers(t);
        });
      } else {
        stream.respond(head);
      }
      stream.end('ok');
    };

    async function overflow(p: Promise<unknown>): Promise<string> {
      const err = await p.then(
        () => assert.fail('resolved'),
        (e: unknown) => e as { code?: string; origin?: string; message: string },
      );
      assert.equal(err.code, 'WARMPOOL_HEADERS_OVERFLOW', err.message);
      return err.origin ?? '';
    }

    it('a 5 KB field over maxHeaderSize 1024 fails with WARMPOOL_HEADERS_OVERFLOW; the session keeps serving', async () => {
      const server = await h2Server({ handler: headsHandler });
      const agent = newAgent({ maxHeaderSize: 1024 });
      const client = new Client({ agent });
      try {
        assert.equal(await overflow(client.request(`${server.url}/big-field`)), server.url);
        const res = await client.request(`${server.url}/fields-3`);
        assert.equal(await res.body.text(), 'ok');
        assert.equal(res.connection.reused, true); // the same session: only the stream was reset
        assert.equal(server.stats.sessionsTotal, 1);
      } finally {
        await agent.close();
      }
    });

    it('200 fields: all 200 arrive with maxHeaderCount 1000; WARMPOOL_HEADERS_OVERFLOW with 100', async () => {
      const server = await h2Server({ handler: headsHandler });
      const roomy = newAgent({ maxHeaderCount: 1000 });
      const tight = newAgent({ maxHeaderCount: 100 });
      try {
        const res = await new Client({ agent: roomy }).request(`${server.url}/fields-200`);
        assert.equal(await res.body.text(), 'ok');
        for (let i = 0; i < 200; i++) assert.equal(res.headers[`x-f${i}`], 'v');
        await overflow(new Client({ agent: tight }).request(`${server.url}/fields-200`));
      } finally {
        await roomy.close();
        await tight.close();
      }
    });

    it("a maxHeaderCount under node:http2's floor (4 pairs) still holds: 2 fields with maxHeaderCount 1 fail", async () => {
      const server = await h2Server({ handler: headsHandler });
      const agent = newAgent({ maxHeaderCount: 1 });
      try {
        // x-f0 and the date field node:http2 servers add: 3 pairs with :status, within node's floor.
        await overflow(new Client({ agent }).request(`${server.url}/fields-1`));
      } finally {
        await agent.close();
      }
    });

    it('trailers over maxHeaderCount fail the body with WARMPOOL_HEADERS_OVERFLOW', async () => {
      const server = await h2Server({ handler: headsHandler });
      const agent = newAgent({ maxHeaderCount: 100 });
      try {
        const res = await new Client({ agent }).request(`${server.url}/trailers-200`);
        assert.equal(res.status, 200);
        await overflow(res.body.text());
      } finally {
        await agent.close();
      }
    });

    it('1 MiB of header fields with the default limits fails with WARMPOOL_HEADERS_OVERFLOW, and the next request succeeds', async () => {
      // node:http2 servers refuse to send a header block over 64 KiB unless told otherwise. The
      // stream is reset, but nghttp2 then ends the session over the CONTINUATION frames that keep
      // coming (its flood limit): streams open on it fail as on a lost connection.
      const server = await h2Server({
        handler: headsHandler,
        serverOptions: { maxSendHeaderBlockLength: 4 * 1024 * 1024 },
      });
      const agent = newAgent();
      const client = new Client({ agent });
      try {
        assert.equal(await overflow(client.request(`${server.url}/list-1m`)), server.url);
        const after = await client.request(`${server.url}/fields-3`);
        assert.equal(await after.body.text(), 'ok');
      } finally {
        await agent.close();
      }
    });
  });

  it('headersTimeout fails only the stream with HeadersTimeoutError; the session keeps serving', async () => {
    const server = await h2Server({
      handler: (stream, headers) => {
        if (headers[':path'] === '/slow') return; // never answers
        stream.respond({ ':status': 200 });
        stream.end('fast');
      },
    });
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      await assert.rejects(
        client.request(`${server.url}/slow`, { headersTimeout: 100 }),
        HeadersTimeoutError,
      );
      const res = await client.request(`${server.url}/fast`);
      assert.equal(await res.body.text(), 'fast');
      assert.equal(server.stats.sessionsTotal, 1);
    } finally {
      await agent.close();
    }
  });

  it('aborting a request mid-body resets its stream and frees the slot', async () => {
    const server = await h2Server({
      settings: { maxConcurrentStreams: 1 },
      handler: (stream, headers) => {
        stream.respond({ ':status': 200 });
        if (headers[':path'] === '/endless') stream.write('partial');
        else stream.end('done');
      },
    });
    const agent = newAgent();
    const client = new Client({ agent });
    try {
      const ac = new AbortController();
      const res = await client.request(`${server.url}/endless`, { signal: ac.signal });
      const failed = res.body.text();
      ac.abort();
      await assert.rejects(failed, { code: 'WARMPOOL_ABORTED' });
      const next = await client.request(`${server.url}/after`);
      assert.equal(await next.body.text(), 'done');
      assert.equal(server.stats.sessionsTotal, 1);
    } finally {
      await agent.close();
    }
  });

  it('idleTimeout closes a session once it has been idle that long, however often it was reused before', async () => {
    const server = await h2Server({});
    const agent = newAgent({ idleTimeout: 300 });
    const client = new Client({ agent });
    try {
      // Reused back to back, then every 100 ms: never idle for 300 ms, so never closed.
      for (let i = 0; i < 20; i++) await (await client.request(`${server.url}/a`)).body.text();
      for (let i = 0; i < 6; i++) {
        await sleep(100);
        await (await client.request(`${server.url}/b`)).body.text();
      }
      assert.equal(server.stats.sessionsTotal, 1);
      assert.equal(agent.originStats(server.url)!.closed['idle-timeout'], 0);
      await until(() => agent.originStats(server.url)!.closed['idle-timeout'] === 1);
      assert.equal(agent.originStats(server.url)!.open, 0);
    } finally {
      await agent.close();
    }
  });

  it('an origin that spoke h2 and comes back speaking only HTTP/1.1 gets well-formed HTTP/1.1 requests', async () => {
    const h2 = await h2Server();
    const agent = newAgent();
    const client = new Client({ agent });
    let h1: TestHttpsServer | undefined;
    try {
      const first = await client.request(`${h2.url}/`);
      await first.body.dump();
      assert.equal(first.httpVersion, '2');
      await h2.close();
      // The same port, now HTTP/1.1 only. The pool still takes the origin for h2 when the next requests
      // are made, so they are validated without an HTTP/1.1 head; the new connection must encode one.
      const seen: string[] = [];
      h1 = await startHttpsServer({
        port: h2.port,
        handler: (req, res) => {
          let body = '';
          req.setEncoding('latin1');
          req.on('data', (d: string) => {
            body += d;
          });
          req.on('end', () => {
            seen.push(
              `${req.method} ${req.url} host=${req.headers.host} x=${req.headers['x-custom']} ${body}`,
            );
            res.end('ok\n');
          });
        },
      });
      const get = await client.request(`${h2.url}/get?q=1`, { headers: { 'x-custom': 'a' } });
      const post = await client.request(`${h2.url}/post`, { method: 'POST', body: 'payload' });
      assert.equal(await get.body.text(), 'ok\n');
      assert.equal(await post.body.text(), 'ok\n');
      assert.equal(get.httpVersion, '1.1');
      assert.deepEqual(seen, [
        `GET /get?q=1 host=127.0.0.1:${h2.port} x=a `,
        `POST /post host=127.0.0.1:${h2.port} x=undefined payload`,
      ]);
      assert.equal(agent.originStats(h2.url)!.protocol, 'http/1.1');
    } finally {
      await agent.close();
      await h1?.close();
    }
  });

  it('a session keeps the process alive while a stream is open, and lets it exit once idle', async () => {
    const server = await h2Server({
      handler: (stream, headers) => {
        const answer = (): void => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 200 });
          stream.end('ok');
        };
        // Nothing else in the child holds its event loop while this one is outstanding.
        if (headers[':path'] === '/slow') setTimeout(answer, 300);
        else answer();
      },
    });
    const ca = fileURLToPath(new URL('../../test/fixtures/localhost-cert.pem', import.meta.url));
    const script = `
      import fs from 'node:fs';
      import { Agent, Client } from ${JSON.stringify(LIBRARY)};
      // Idle limits far beyond the 10 s the parent waits: only an unref'd idle session lets it exit.
      const agent = new Agent({ idleTimeout: 60_000, tls: { ca: fs.readFileSync(${JSON.stringify(ca)}) } });
      const client = new Client({ agent, baseUrl: ${JSON.stringify(server.url)} });
      const a = await (await client.request('/a')).body.text();
      await new Promise((r) => setTimeout(r, 50)); // idle for a while: the session is unref'd by now
      const b = await (await client.request('/slow')).body.text();
      console.log(a, b, agent.stats().open);
    `;
    const out = await runChild(script);
    assert.equal(out.killed, false, 'the child did not exit by itself within 10 s');
    assert.equal(out.code, 0, `exit code ${out.code} (13: it exited with /slow outstanding) ${out.stderr}`);
    assert.equal(out.stdout.trim(), 'ok ok 1');
    assert.equal(server.stats.sessionsTotal, 1);
  });

  /** A handler that holds '/hold' until `release()`, and answers anything else at once. */
  function holdingServer(): { handler: H2Handler; release: () => void } {
    let release = (): void => {};
    const handler: H2Handler = (stream, headers) => {
      const answer = (): void => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200 });
        stream.end(`done ${headers[':path']}`);
      };
      if (headers[':path'] === '/hold') release = answer;
      else answer();
    };
    return { handler, release: () => release() };
  }

  it('a session under constant load retires at maxConnectionAge: new streams go to a new session, open ones finish', async () => {
    const held = holdingServer();
    const server = await h2Server({ handler: held.handler });
    const agent = newAgent({ maxConnectionAge: 300 });
    const client = new Client({ agent });
    try {
      const hold = client.request(`${server.url}/hold`); // keeps the first session busy throughout
      const first = await client.request(`${server.url}/a`);
      assert.equal(await first.body.text(), 'done /a');
      await sleep(350); // never idle (/hold is open), but past the age limit
      const later = await client.request(`${server.url}/b`);
      assert.equal(await later.body.text(), 'done /b');
      assert.notEqual(later.connection.id, first.connection.id);
      assert.equal(server.stats.sessionsTotal, 2);
      held.release();
      const held1 = await hold;
      assert.equal(await held1.body.text(), 'done /hold');
      assert.equal(held1.connection.id, first.connection.id);
      await until(() => agent.originStats(server.url)!.closed['max-age'] === 1); // drained, then closed
      assert.equal(agent.originStats(server.url)!.open, 1);
    } finally {
      await agent.close();
    }
  });

  it('maxRequestsPerConnection counts streams: with one held open, the 4th request of a limit of 3 opens a new session', async () => {
    const held = holdingServer();
    const server = await h2Server({ handler: held.handler });
    const agent = newAgent({ maxRequestsPerConnection: 3 });
    const client = new Client({ agent });
    try {
      const hold = client.request(`${server.url}/hold`);
      const ids: number[] = [];
      for (const path of ['/a', '/b', '/c']) {
        const res = await client.request(`${server.url}${path}`);
        await res.body.text();
        ids.push(res.connection.id);
      }
      assert.equal(ids[0], ids[1]); // /hold, /a, /b: three streams on the first session
      assert.notEqual(ids[2], ids[0]); // /c: the fourth request
      assert.equal(server.stats.sessionsTotal, 2);
      held.release();
      assert.equal(await (await hold).body.text(), 'done /hold');
      await until(() => agent.originStats(server.url)!.closed['max-requests'] === 1);
    } finally {
      await agent.close();
    }
  });

  it('a stream reset by the server before the request body is sent stops the body: its Readable source is destroyed', async () => {
    const server = await h2Server({
      handler: (stream) => {
        // Answer without reading the body, then reset: "stop sending" (RFC 9113 §8.1).
        stream.respond({ ':status': 413 });
        stream.end('big');
        stream.close(http2.constants.NGHTTP2_NO_ERROR);
      },
    });
    const agent = newAgent();
    try {
      const source = new Readable({ read() {} });
      source.push('abc'); // then nothing: a quiet source the loop would wait on forever
      const res = await new Client({ agent }).request(`${server.url}/upload`, {
        method: 'POST',
        body: source,
      });
      assert.equal(res.status, 413);
      assert.equal(await res.body.text(), 'big');
      await waitFor(() => source.destroyed, 'the body source to be destroyed', 2000);
      assert.equal(agent.originStats(server.url)!.activeStreams, 0);
    } finally {
      await agent.close();
    }
  });
});
