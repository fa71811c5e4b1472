/**
 * The retry policy: its decisions as pure functions of numbers (status, Retry-After, attempt, the
 * wall clock, the random draw), and the loop against real servers: what is retried, what is not,
 * the body replayed, the retried response's connection let go, the wait cut short by the signal,
 * res.attempts and agent.stats().
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import {
  DEFAULT_RETRY,
  backoffMs,
  delayAfterError,
  delayAfterResponse,
  mayRetry,
  parseRetryAfter,
  resolveRetry,
  systemRetryEnv,
  withRetries,
} from '../src/client/retry.js';
import { ConnectError, SocketClosedError } from '../src/errors.js';
import { markUnanswered } from '../src/exchange/unanswered.js';
import { Agent, Client, InvalidArgumentError, request } from '../src/index.js';
import { startH2Server } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { rejectsWith } from './helpers/pool-util.js';
import { respondWith, startRawServer } from './helpers/raw-server.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const none = () => undefined;

describe('retry policy decisions (pure)', () => {
  it('resolves defaults, fills a request policy from the Client policy, and refuses bad shapes', () => {
    const p = resolveRetry({}, undefined)!;
    assert.equal(p.limit, 2);
    assert.deepEqual([...p.statusCodes], [408, 429, 500, 502, 503, 504]);
    assert.deepEqual([...p.methods], ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
    assert.equal(p.baseMs, 100);
    assert.equal(p.maxMs, 10_000);
    assert.equal(p.maxRetryAfterMs, 60_000);
    assert.equal(resolveRetry(undefined, undefined), undefined);
    const client = resolveRetry({ limit: 5, statusCodes: [503], backoff: { baseMs: 1 } }, undefined)!;
    const req = resolveRetry({ limit: 1 }, client)!;
    assert.equal(req.limit, 1);
    assert.deepEqual([...req.statusCodes], [503]);
    assert.equal(req.baseMs, 1);
    assert.equal(resolveRetry(undefined, client), client);
    for (const bad of [
      5,
      null,
      { limit: -1 },
      { limit: 1.5 },
      { limit: '2' },
      { statusCodes: [503, 'x'] },
      { statusCodes: 503 },
      { statusCodes: [99] },
      { methods: ['GET', 1] },
      { backoff: 10 },
      { backoff: { baseMs: -1 } },
      { backoff: { maxMs: Number.NaN } },
      { maxRetryAfterMs: 'soon' },
    ]) {
      assert.throws(() => resolveRetry(bad, undefined), InvalidArgumentError, JSON.stringify(bad));
    }
  });

  it('retries idempotent methods, any method marked idempotent, and only replayable bodies', () => {
    const p = DEFAULT_RETRY;
    assert.equal(mayRetry(p, 'GET', undefined, true), true);
    assert.equal(mayRetry(p, 'PUT', undefined, true), true);
    assert.equal(mayRetry(p, 'POST', undefined, true), false);
    assert.equal(mayRetry(p, 'PATCH', undefined, true), false);
    assert.equal(mayRetry(p, 'POST', true, true), true);
    assert.equal(mayRetry(p, 'PUT', undefined, false), false, 'a one-shot stream body');
    assert.equal(mayRetry({ ...p, limit: 0 }, 'GET', undefined, true), false);
    assert.equal(mayRetry(resolveRetry({ methods: ['post'] }, undefined)!, 'POST', undefined, true), true);
  });

  it('backs off exponentially with full jitter, capped at maxMs', () => {
    const p = { ...DEFAULT_RETRY, baseMs: 100, maxMs: 1000 };
    assert.equal(backoffMs(p, 1, 0), 0);
    assert.equal(backoffMs(p, 1, 0.5), 50);
    assert.equal(backoffMs(p, 2, 0.5), 100);
    assert.equal(backoffMs(p, 3, 0.999), 399);
    assert.equal(backoffMs(p, 4, 0.999), 799);
    assert.equal(backoffMs(p, 5, 0.999), 999, 'the ceiling is maxMs');
    assert.equal(backoffMs(p, 30, 0.5), 500);
  });

  it('reads Retry-After as seconds or an HTTP-date', () => {
    assert.equal(parseRetryAfter('120', NOW), 120_000);
    assert.equal(parseRetryAfter(' 0 ', NOW), 0);
    assert.equal(parseRetryAfter(['3', '9'], NOW), 3000);
    assert.equal(parseRetryAfter(new Date(NOW + 5000).toUTCString(), NOW), 5000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 12:00:30 GMT', NOW), 30_000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 11:00:00 GMT', NOW), 0, 'a date in the past: no wait');
    assert.equal(parseRetryAfter(undefined, NOW), -1);
    for (const bad of ['', '-1', '1.5', '+3', 'soon', '2026-01-01', 'Xyz, garbage']) {
      assert.equal(parseRetryAfter(bad, NOW), -1, bad);
    }
  });

  it('after a response: listed statuses only, Retry-After over backoff, too long a Retry-After returns it', () => {
    const p = { ...DEFAULT_RETRY, baseMs: 100, maxMs: 10_000, maxRetryAfterMs: 60_000 };
    assert.equal(delayAfterResponse(p, 1, 503, none, NOW, 0.5), 50);
    assert.equal(delayAfterResponse(p, 2, 503, none, NOW, 0.5), 100);
    assert.equal(delayAfterResponse(p, 3, 503, none, NOW, 0.5), -1, 'limit 2: no third retry');
    assert.equal(delayAfterResponse(p, 1, 200, none, NOW, 0.5), -1);
    assert.equal(delayAfterResponse(p, 1, 404, none, NOW, 0.5), -1);
    assert.equal(delayAfterResponse(p, 1, 501, none, NOW, 0.5), -1);
    assert.equal(
      delayAfterResponse(p, 1, 429, () => '7', NOW, 0.5),
      7000,
    );
    assert.equal(
      delayAfterResponse(p, 1, 503, () => new Date(NOW + 2000).toUTCString(), NOW, 0.5),
      2000,
    );
    assert.equal(
      delayAfterResponse(p, 1, 503, () => '61', NOW, 0.5),
      -1,
      'over maxRetryAfterMs',
    );
    assert.equal(
      delayAfterResponse(p, 1, 503, () => '60', NOW, 0.5),
      60_000,
    );
    assert.equal(
      delayAfterResponse(p, 1, 503, () => 'later', NOW, 0.5),
      50,
      'unreadable: backoff',
    );
    let read = 0;
    delayAfterResponse(
      p,
      1,
      200,
      () => {
        read++;
        return '1';
      },
      NOW,
      0,
    );
    assert.equal(read, 0, 'headers are not read for a status that is not retried');
  });

  it('after an error: refused, or closed/reset before any response byte; nothing else', () => {
    const p = DEFAULT_RETRY;
    const refused = new ConnectError('refused', {
      cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }),
    });
    const unreachable = new ConnectError('dns', {
      cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }),
    });
    const reset = new SocketClosedError('reset');
    markUnanswered(reset);
    const cutShort = new SocketClosedError('closed mid-head');
    assert.equal(delayAfterError(p, 1, refused, 0.5), 50);
    assert.equal(delayAfterError(p, 1, reset, 0.5), 50);
    assert.equal(delayAfterError(p, 3, reset, 0.5), -1);
    assert.equal(delayAfterError(p, 1, unreachable, 0.5), -1);
    assert.equal(delayAfterError(p, 1, cutShort, 0.5), -1);
    assert.equal(delayAfterError(p, 1, new Error('x'), 0.5), -1);
  });
});

/** A RetryEnv whose waits are recorded and take no time (the loop under test, not the clock). */
function recordingEnv(random = 0.5) {
  const waits: number[] = [];
  return {
    waits,
    env: {
      random: () => random,
      wallMs: () => Date.now(),
      sleep: async (ms: number) => {
        waits.push(ms);
      },
    },
  };
}

describe('retry loop against real servers', () => {
  const agents: Agent[] = [];
  const agent = (o: ConstructorParameters<typeof Agent>[0] = {}) => {
    const a = new Agent(o);
    agents.push(a);
    return a;
  };
  after(async () => {
    for (const a of agents) await a.destroy();
  });

  it('is off by default: a 503 is returned as it came, once', async () => {
    const server = await startHttpServer((_req, res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    try {
      const res = await new Client({ agent: agent() }).request(`${server.url}/`);
      assert.equal(res.status, 503);
      assert.equal(res.attempts, 1);
      await res.body.dump();
      assert.equal(server.stats.requestsTotal, 1);
    } finally {
      await server.close();
    }
  });

  it('retries a 503 and a 429, says res.attempts, and counts retries in stats()', async () => {
    let n = 0;
    const server = await startHttpServer((_req, res) => {
      n++;
      res.statusCode = n === 1 ? 503 : n === 2 ? 429 : 200;
      res.end(`answer ${n}`);
    });
    try {
      const a = agent();
      const res = await new Client({ agent: a }).request(`${server.url}/x`, {
        retry: { backoff: { baseMs: 1 } },
      });
      assert.equal(res.status, 200);
      assert.equal(res.attempts, 3);
      assert.equal(await res.body.text(), 'answer 3');
      assert.equal(a.stats().origins[0]!.retried, 2);
      assert.equal(a.stats().origins[0]!.requests, 3);
    } finally {
      await server.close();
    }
  });

  it('gives up after limit retries and returns the last response', async () => {
    const server = await startHttpServer((_req, res) => {
      res.statusCode = 502;
      res.end('bad gateway');
    });
    try {
      const client = new Client({ agent: agent(), retry: { limit: 1, backoff: { baseMs: 1 } } });
      const res = await client.request(`${server.url}/`);
      assert.equal(res.status, 502);
      assert.equal(res.attempts, 2);
      assert.equal(await res.body.text(), 'bad gateway');
      assert.equal(server.stats.requestsTotal, 2);
    } finally {
      await server.close();
    }
  });

  it('a POST is not retried unless marked idempotent; then its body is sent again', async () => {
    const bodies: string[] = [];
    const server = await startHttpServer(async (req, res) => {
      let b = '';
      for await (const c of req) b += c;
      bodies.push(b);
      res.statusCode = bodies.length === 1 ? 503 : 201;
      res.end();
    });
    try {
      const client = new Client({ agent: agent(), retry: { backoff: { baseMs: 1 } } });
      const once = await client.request(`${server.url}/`, { method: 'POST', body: 'payload' });
      assert.equal(once.status, 503);
      assert.equal(once.attempts, 1);
      bodies.length = 0;
      const twice = await client.request(`${server.url}/`, {
        method: 'POST',
        body: 'payload',
        idempotent: true,
      });
      assert.equal(twice.status, 201);
      assert.equal(twice.attempts, 2);
      assert.deepEqual(bodies, ['payload', 'payload']);
    } finally {
      await server.close();
    }
  });

  it('a stream body is replayed from its factory, and a one-shot stream is never sent twice', async () => {
    const bodies: string[] = [];
    const server = await startHttpServer(async (req, res) => {
      let b = '';
      for await (const c of req) b += c;
      bodies.push(b);
      res.statusCode = bodies.length % 2 === 1 ? 503 : 200;
      res.end();
    });
    try {
      const client = new Client({ agent: agent(), retry: { backoff: { baseMs: 1 } } });
      const replayed = await client.request(`${server.url}/`, {
        method: 'PUT',
        body: () => Readable.from([Buffer.from('a'), Buffer.from('b')]),
      });
      assert.equal(replayed.status, 200);
      assert.equal(replayed.attempts, 2);
      assert.deepEqual(bodies, ['ab', 'ab']);
      const oneShot = await client.request(`${server.url}/`, {
        method: 'PUT',
        body: Readable.from([Buffer.from('c')]),
      });
      assert.equal(oneShot.status, 503);
      assert.equal(oneShot.attempts, 1);
      assert.deepEqual(bodies, ['ab', 'ab', 'c']);
    } finally {
      await server.close();
    }
  });

  it("lets go of a retried response's connection before the next attempt (one connection allowed)", async () => {
    let n = 0;
    const big = 'x'.repeat(200 * 1024); // past the drain limit: that connection is closed instead
    const server = await startHttpServer((_req, res) => {
      n++;
      res.statusCode = n <= 2 ? 503 : 200;
      res.end(n === 1 ? 'small error page' : n === 2 ? big : 'ok');
    });
    try {
      // Were a retried body left holding its lease, the next attempt would wait in the queue for
      // the one connection until queueTimeout.
      const a = agent({ maxConnectionsPerOrigin: 1, queueTimeout: 5000 });
      const res = await new Client({ agent: a }).request(`${server.url}/`, {
        retry: { backoff: { baseMs: 1 } },
      });
      assert.equal(res.status, 200);
      assert.equal(res.attempts, 3);
      assert.equal(await res.body.text(), 'ok');
      const s = a.stats().origins[0]!;
      assert.equal(s.busy, 0);
      assert.ok(s.reused >= 1, 'the small error page was drained and its connection reused');
    } finally {
      await server.close();
    }
  });

  it('Retry-After (seconds and HTTP-date) is waited instead of the backoff; too long, the response is returned', async () => {
    let n = 0;
    const server = await startHttpServer((req, res) => {
      n++;
      res.statusCode = 503;
      if (req.url === '/seconds') res.setHeader('retry-after', n === 1 ? '3' : '0');
      else if (req.url === '/date')
        res.setHeader('retry-after', new Date(Date.now() + 120_000).toUTCString());
      else res.setHeader('retry-after', '3600');
      res.end();
    });
    try {
      const client = new Client({ agent: agent() });
      const policy = resolveRetry({ limit: 2, maxRetryAfterMs: 600_000 }, undefined)!;
      const { waits, env } = recordingEnv(0.5);
      const res = await withRetries(policy, undefined, () => client.request(`${server.url}/seconds`), env);
      assert.equal(res.status, 503);
      assert.deepEqual(waits, [3000, 0]);
      await res.body.dump();

      const dated = recordingEnv(0.5);
      await (
        await withRetries(policy, undefined, () => client.request(`${server.url}/date`), dated.env)
      ).body.dump();
      assert.equal(dated.waits.length, 2);
      for (const w of dated.waits)
        assert.ok(w > 100_000 && w <= 120_000, `waited ${w} for a date 120 s ahead`);

      n = 0;
      const long = await client.request(`${server.url}/long`, { retry: { backoff: { baseMs: 1 } } });
      assert.equal(long.status, 503);
      assert.equal(long.attempts, 1, 'Retry-After 3600 s is past maxRetryAfterMs (60 s): returned at once');
      assert.equal(n, 1);
      await long.body.dump();
    } finally {
      await server.close();
    }
  });

  it('the abort signal cuts a wait short with WARMPOOL_ABORTED', async () => {
    const server = await startHttpServer((_req, res) => {
      res.statusCode = 503;
      res.setHeader('retry-after', '30');
      res.end();
    });
    try {
      const client = new Client({ agent: agent() });
      const ac = new AbortController();
      const policy = resolveRetry({}, undefined)!;
      let waited = 0;
      const env = {
        ...systemRetryEnv,
        sleep(ms: number, signal: AbortSignal | undefined, origin: string | undefined) {
          waited = ms;
          const wait = systemRetryEnv.sleep(ms, signal, origin); // the real 30 s wait
          ac.abort(new Error('user gave up'));
          return wait;
        },
      };
      const err = await rejectsWith(
        withRetries(policy, ac.signal, () => client.request(`${server.url}/`, { signal: ac.signal }), env),
        'WARMPOOL_ABORTED',
        server.url,
      );
      assert.equal(waited, 30_000);
      assert.match(err.message, /waiting to retry/);
      assert.equal((err.cause as Error).message, 'user gave up');
      // The same through a Client: a signal already aborted is refused before anything is sent.
      await rejectsWith(
        client.request(`${server.url}/`, { signal: ac.signal, retry: {} }),
        'WARMPOOL_ABORTED',
      );
    } finally {
      await server.close();
    }
  });

  it('a connection reset before any response byte is retried; a response cut short is not', async () => {
    const raw = await startRawServer((i) =>
      i === 0
        ? [{ kind: 'await-request' }, { kind: 'reset' }]
        : respondWith('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
    );
    try {
      const client = new Client({ agent: agent(), retry: { backoff: { baseMs: 1 } } });
      const res = await client.request(`${raw.url}/`);
      assert.equal(res.status, 200);
      assert.equal(res.attempts, 2);
      assert.equal(res.retried, false, 'a new connection failed: not the stale-connection retry');
      assert.equal(await res.body.text(), 'ok');
    } finally {
      await raw.close();
    }
    const cut = await startRawServer(() => [
      { kind: 'await-request' },
      { kind: 'write', data: 'HTTP/1.1 200 OK\r\ncontent-le' },
      { kind: 'reset' },
    ]);
    try {
      const client = new Client({ agent: agent(), retry: { backoff: { baseMs: 1 } } });
      await rejectsWith(client.request(`${cut.url}/`), 'WARMPOOL_SOCKET_CLOSED');
      assert.equal(cut.connections.length, 1, 'part of a head arrived: not retried');
    } finally {
      await cut.close();
    }
  });

  it('over HTTP/2: a stream reset before any response byte is retried', async () => {
    let n = 0;
    const server = await startH2Server({
      secure: false,
      handler: (stream, headers) => {
        n++;
        if (headers[':path'] === '/reset' && n === 1) {
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          return;
        }
        stream.respond({ ':status': 200 });
        stream.end('ok');
      },
    });
    try {
      const client = new Client({
        agent: agent({ http2: 'prior-knowledge' }),
        retry: { backoff: { baseMs: 1 } },
      });
      const res = await client.request(`${server.url}/reset`);
      assert.equal(res.httpVersion, '2');
      assert.equal(res.attempts, 2);
      assert.equal(await res.body.text(), 'ok');
      assert.equal(n, 2);
    } finally {
      await server.close();
    }
  });

  it('a refused connection is retried under the same policy, then its error returned', async () => {
    const server = await startHttpServer();
    const url = `${server.url}/`;
    await server.close(); // nothing listens there now
    const policy = resolveRetry({ limit: 2 }, undefined)!;
    const { waits, env } = recordingEnv(0.5);
    const client = new Client({ agent: agent() });
    let attempts = 0;
    await rejectsWith(
      withRetries(
        policy,
        undefined,
        () => {
          attempts++;
          return client.request(url);
        },
        env,
      ),
      'WARMPOOL_CONNECT_ERROR',
    );
    assert.equal(attempts, 3);
    assert.deepEqual(waits, [50, 100]);
    // Through request(): the same, with real (short) waits.
    await rejectsWith(
      request(url, { retry: { limit: 1, backoff: { baseMs: 1 } } }),
      'WARMPOOL_CONNECT_ERROR',
    );
  });

  it('a bad retry option is an InvalidArgumentError, from request() and from the Client', async () => {
    await rejectsWith(request('http://127.0.0.1:1/', { retry: { limit: -1 } }), 'WARMPOOL_INVALID_ARGUMENT');
    await rejectsWith(request('http://127.0.0.1:1/', { retry: 3 as never }), 'WARMPOOL_INVALID_ARGUMENT');
    assert.throws(() => new Client({ retry: { statusCodes: ['503'] as never } }), InvalidArgumentError);
    await rejectsWith(
      new Client({ retry: {} }).request('http://127.0.0.1:1/', null as never),
      'WARMPOOL_INVALID_ARGUMENT',
    );
  });
});
