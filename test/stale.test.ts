/**
 * Never a stale connection: idle age from two clocks (invariant 4), liveness before reuse, safe
 * transparent retry (invariant 5), and recovery when a server drops every connection.
 *
 * Real sockets on loopback only. Where a test must let a server close connections *while the client
 * is not looking* (a frozen VM, a busy event loop), the server runs in a worker thread
 * (helpers/worker-server.ts) and the client's thread is blocked with blockThread(): an in-thread
 * server could not close anything while its thread is blocked, and an idle client thread would read
 * every FIN before the test's next line ran.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import {
  Agent,
  type AgentOptions,
  Client,
  type ClientOptions,
  type Response,
  type WarmpoolError,
} from '../src/index.js';
import { type FaultHandler, type FaultServer, startFaultServer } from './helpers/fault-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { ManualClock, blockThread } from './helpers/manual-clock.js';
import { startRawServer } from './helpers/raw-server.js';
import { startWorkerFaultServer, startWorkerRawServer } from './helpers/worker-server.js';

/** Every test is bounded in time. */
const T = 10_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `cond` every 10 ms for at most `ms`. */
async function waitFor(cond: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${ms} ms`);
    await sleep(10);
  }
}

let ids = 0;
const rid = (prefix = 'r') => `${prefix}-${++ids}`;

/** Sends, reads the whole body; returns the response and its text. */
async function fetchText(client: Client, url: string, init: Parameters<Client['request']>[1] = {}) {
  const res = await client.request(url, init);
  return { res, text: await res.body.text() };
}

/** `n` requests issued at once (synchronously), each read whole. */
function burst(
  client: Client,
  url: string,
  n: number,
  method = 'GET',
): Promise<{ res: Response; text: string }[]> {
  const all: Promise<{ res: Response; text: string }>[] = [];
  for (let i = 0; i < n; i++) {
    all.push(
      fetchText(client, url, {
        method,
        headers: { 'x-request-id': rid(method) },
        body: method === 'POST' ? `body ${i}` : undefined,
      }),
    );
  }
  return Promise.all(all);
}

/** Runs `fn` in a timer callback (the requests it issues are issued from that callback). */
function fromTimer<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    setTimeout(() => fn().then(resolve, reject), ms);
  });
}

/** Runs `fn` in an I/O callback (an fs callback, delivered in the poll phase) after about `ms`. */
function fromIoCallback<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    setTimeout(() => {
      stat('.', () => fn().then(resolve, reject));
    }, ms);
  });
}

function originStats(agent: Agent, url: string) {
  const s = agent.originStats(url);
  assert.ok(s, `no stats for ${url}`);
  return s;
}

/**
 * Runs `fn` with a new Agent (`agentOptions`) and a Client on it; then, even if `fn` throws, destroys
 * the agent and closes `srv`, in that order.
 */
async function withClient(
  srv: { close(): Promise<void> },
  agentOptions: AgentOptions,
  fn: (agent: Agent, client: Client) => Promise<void>,
  clientOptions: Omit<ClientOptions, 'agent'> = {},
): Promise<void> {
  const agent = new Agent(agentOptions);
  const client = new Client({ agent, ...clientOptions });
  try {
    await fn(agent, client);
  } finally {
    await agent.destroy();
    await srv.close();
  }
}

async function rejects(p: Promise<unknown>): Promise<WarmpoolError> {
  try {
    await p;
  } catch (err) {
    return err as WarmpoolError;
  }
  assert.fail('expected a rejection');
}

// ---- idle age: two clocks (invariant 4) -------------------------------------------------------------

test(
  'idle age: a frozen monotonic clock cannot hide wall time; checked when taken, not by a timer',
  { timeout: T },
  async () => {
    const srv = await startHttpServer();
    const clock = new ManualClock();
    await withClient(srv, { clock, idleTimeout: 1000 }, async (agent, client) => {
      const a = await fetchText(client, `${srv.url}/a`);
      assert.equal(a.res.connection.reused, false);
      clock.freezeMonotonic();
      clock.advanceWall(1500); // past idleTimeout by the wall clock only; no real time passes
      const b = await fetchText(client, `${srv.url}/b`);
      assert.equal(b.res.connection.reused, false, 'a connection idle 1.5 s by the wall clock was reused');
      const s = originStats(agent, srv.url);
      assert.equal(s.closed['idle-timeout'], 1);
      assert.equal(srv.stats.connectionsTotal, 2);
    });
  },
);

test('idle age: an NTP step back cannot hide monotonic time', { timeout: T }, async () => {
  const srv = await startHttpServer();
  const clock = new ManualClock();
  await withClient(srv, { clock, idleTimeout: 1000 }, async (agent, client) => {
    await fetchText(client, `${srv.url}/a`);
    clock.advanceWall(-3_600_000);
    clock.advanceMonotonic(1500);
    const b = await fetchText(client, `${srv.url}/b`);
    assert.equal(b.res.connection.reused, false);
    assert.equal(originStats(agent, srv.url).closed['idle-timeout'], 1);
  });
});

test(
  'idle age: a young connection is reused, and res.connection.idleMs is the larger elapsed time',
  { timeout: T },
  async () => {
    const srv = await startHttpServer();
    const clock = new ManualClock();
    await withClient(srv, { clock, idleTimeout: 1000 }, async (agent, client) => {
      await fetchText(client, `${srv.url}/a`);
      clock.freezeMonotonic();
      clock.advanceWall(400);
      const b = await fetchText(client, `${srv.url}/b`);
      assert.equal(b.res.connection.reused, true);
      assert.ok(
        b.res.connection.idleMs >= 400 && b.res.connection.idleMs < 1000,
        `idleMs ${b.res.connection.idleMs}`,
      );
      assert.equal(srv.stats.connectionsTotal, 1);
    });
  },
);

test(
  "idle age: the server's Keep-Alive hint (less a margin) applies to wall time too",
  { timeout: T },
  async () => {
    // timeout=1 -> limit 1000 - 250 = 750 ms.
    const srv = await startFaultServer({ keepAliveTimeoutMs: 1000, advertiseKeepAlive: true });
    const clock = new ManualClock();
    await withClient(srv, { clock }, async (agent, client) => {
      await fetchText(client, `${srv.url}/a`);
      clock.freezeMonotonic();
      clock.advanceWall(800);
      const b = await fetchText(client, `${srv.url}/b`);
      assert.equal(b.res.connection.reused, false);
      assert.equal(originStats(agent, srv.url).closed['idle-timeout'], 1);
    });
  },
);

// ---- snapshot restore ---------------------------------------------------------------------------

/**
 * The guest was frozen (snapshot) with 8 warm connections and restored later: its monotonic clock
 * stood still, its wall clock jumped, and the server closed every connection meanwhile. The process
 * resumes and at once, before its event loop polls a socket, issues 100 requests.
 */
for (const scenario of [
  { name: 'the wall clock jumps 10 minutes', wallJumpMs: 600_000 },
  { name: 'the wall clock moves only by the real pause (450 ms)', wallJumpMs: 0 },
]) {
  test(
    `snapshot restore (server closed idle connections while frozen; ${scenario.name}): 100 requests succeed, none written to a closed connection`,
    { timeout: 15_000 },
    async () => {
      const srv = await startWorkerFaultServer({ closeIdleAfterMs: 300, lingerMs: 3000 });
      const clock = new ManualClock();
      await withClient(srv, { clock }, async (agent, client) => {
        const warm = await burst(client, `${srv.url}/warm`, 8);
        assert.ok(warm.every((r) => r.res.status === 200));
        assert.equal((await srv.snapshot()).connectionsAccepted, 8);

        clock.freezeMonotonic();
        blockThread(450); // real time passes; the server (another thread) closes all 8
        clock.advanceWall(scenario.wallJumpMs);
        const results = await burst(client, `${srv.url}/after`, 100);

        assert.equal(results.length, 100);
        for (const r of results) {
          assert.equal(r.res.status, 200);
          assert.equal(r.text, 'ok\n');
        }
        await sleep(100); // let any late bytes reach the server's log
        const snap = await srv.snapshot();
        const closedIdle = snap.log.filter((e) => e.kind === 'close-by-server' && e.detail === 'idle close');
        assert.ok(closedIdle.length >= 8, `server closed only ${closedIdle.length} idle connections`);
        const wac = snap.log.filter((e) => e.kind === 'write-after-close');
        assert.deepEqual(wac, [], 'a request was written to a connection the server had closed');
        const perConn = new Map(snap.requestsPerConnection);
        for (let id = 1; id <= 8; id++)
          assert.equal(perConn.get(id), 1, `old connection ${id} was used again`);
        const s = originStats(agent, srv.url);
        assert.equal(s.retried, 0, 'nothing should need a retry: no request was sent on a dead connection');
        if (scenario.wallJumpMs > 0) assert.equal(s.closed['idle-timeout'], 8);
      });
    },
  );
}

test(
  'snapshot restore, in-thread server: monotonic frozen, wall advanced, real wait; next 100 requests succeed',
  { timeout: 15_000 },
  async () => {
    const srv = await startFaultServer({ closeIdleAfterMs: 300, lingerMs: 3000, keepBodies: false });
    const clock = new ManualClock();
    await withClient(srv, { clock }, async (agent, client) => {
      await burst(client, `${srv.url}/warm`, 8);
      clock.freezeMonotonic();
      await sleep(450);
      clock.advanceWall(600_000);
      for (let i = 0; i < 100; i++) {
        const r = await fetchText(client, `${srv.url}/n${i}`, { headers: { 'x-request-id': rid('seq') } });
        assert.equal(r.res.status, 200);
      }
      assert.equal(srv.stats.writesAfterClose, 0);
      assert.deepEqual(srv.events('write-after-close'), []);
      assert.equal(originStats(agent, srv.url).retried, 0);
    });
  },
);

// ---- liveness before reuse ----------------------------------------------------------------------

/**
 * Where the request is issued matters to the event loop: a timer callback runs before the poll phase
 * that reads sockets; an I/O callback (here an fs callback, like a server's request handler or any
 * promise continuation of one) runs inside the poll phase, after that phase's sockets were read.
 */
for (const mode of ['FIN', 'RST'] as const) {
  for (const from of ['a timer callback', 'an I/O callback'] as const) {
    test(
      `liveness: requests issued from ${from} after the server closed idle connections (${mode}) are not written to them`,
      { timeout: 15_000 },
      async () => {
        const srv = await startWorkerFaultServer({
          closeIdleAfterMs: 300,
          lingerMs: 3000,
          resetInsteadOfFin: mode === 'RST',
        });
        await withClient(srv, {}, async (agent, client) => {
          await burst(client, `${srv.url}/warm`, 4);
          // The callback is busy past the server's close (a slow synchronous task), then issues
          // requests. POSTs are not retried, so a POST written to a dead connection would fail.
          const issue = () => {
            blockThread(300);
            const both = Promise.all([
              burst(client, `${srv.url}/p`, 4, 'POST'),
              burst(client, `${srv.url}/g`, 4),
            ]);
            return both.then(([p, g]) => [...p, ...g]);
          };
          const results =
            from === 'a timer callback' ? await fromTimer(150, issue) : await fromIoCallback(150, issue);
          for (const r of results) assert.equal(r.res.status, 200);
          await sleep(100);
          const snap = await srv.snapshot();
          assert.deepEqual(
            snap.log.filter((e) => e.kind === 'write-after-close'),
            [],
          );
          const perConn = new Map(snap.requestsPerConnection);
          for (let id = 1; id <= 4; id++)
            assert.equal(perConn.get(id), 1, `closed connection ${id} was written to`);
          const s = originStats(agent, srv.url);
          assert.equal(s.retried, 0);
          assert.equal(s.closed['server-close'], 4);
        });
      },
    );
  }
}

const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n';
const STRAY = 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nbogus!\n';

test(
  'liveness: unsolicited bytes on an idle connection close it; it is never reused',
  { timeout: T },
  async () => {
    const srv = await startRawServer((i) =>
      i === 0
        ? [
            { kind: 'await-request' },
            { kind: 'write', data: RESPONSE },
            { kind: 'delay', ms: 50 },
            { kind: 'write', data: STRAY },
            { kind: 'keep-open' },
          ]
        : [{ kind: 'await-request' }, { kind: 'write', data: RESPONSE }, { kind: 'keep-open' }],
    );
    await withClient(srv, {}, async (agent, client) => {
      const a = await fetchText(client, `${srv.url}/a`);
      assert.equal(a.text, 'ok\n');
      await waitFor(
        () => originStats(agent, srv.url).open === 0,
        2000,
        'connection closed after stray bytes',
      );
      assert.equal(originStats(agent, srv.url).closed['not-reusable'], 1);
      const b = await fetchText(client, `${srv.url}/b`, { method: 'POST', body: 'x' });
      assert.equal(b.text, 'ok\n');
      assert.equal(b.res.connection.reused, false);
      assert.equal(srv.connections[0]!.text().match(/^(GET|POST) /gm)?.length, 1);
    });
  },
);

test(
  'liveness: stray bytes that arrived while the loop was busy are seen before the next request is written',
  { timeout: 10_000 },
  async () => {
    const srv = await startWorkerRawServer([
      { kind: 'await-request' },
      { kind: 'write', data: RESPONSE },
      { kind: 'delay', ms: 200 },
      { kind: 'write', data: STRAY },
      { kind: 'keep-open' },
    ]);
    await withClient(srv, {}, async (agent, client) => {
      await fetchText(client, `${srv.url}/a`);
      const b = await fromTimer(100, () => {
        blockThread(300); // the stray response arrives meanwhile
        return fetchText(client, `${srv.url}/b`, { method: 'POST', body: 'x' });
      });
      assert.equal(b.text, 'ok\n', 'the stray bytes were taken as the response to the next request');
      assert.equal(b.res.connection.reused, false);
      const snap = await srv.snapshot();
      assert.equal(snap.connections[0]!.text.match(/^(GET|POST) /gm)?.length, 1);
      assert.equal(originStats(agent, srv.url).closed['not-reusable'], 1);
    });
  },
);

test(
  'liveness: a body whose last chunk filled the reader buffer does not leave its idle socket paused',
  { timeout: 10_000 },
  async () => {
    // Regression: the socket stayed paused after the exchange completed, so the idle connection never
    // saw the server's FIN and the next response on it was never read (headers timeout).
    const srv = await startFaultServer({
      closeIdleAfterMs: 200,
      handler: () => ({ type: 'respond', body: 'x'.repeat(4000) }),
    });
    await withClient(
      srv,
      {},
      async (agent, client) => {
        const a = await client.request(`${srv.url}/a`, { highWaterMark: 16 });
        await sleep(20);
        assert.equal((await a.body.text()).length, 4000);
        const b = await client.request(`${srv.url}/b`, { highWaterMark: 16 });
        assert.equal(b.connection.reused, true);
        assert.equal((await b.body.text()).length, 4000);
        await waitFor(() => originStats(agent, srv.url).open === 0, 2000, 'idle connection saw the FIN');
        assert.equal(originStats(agent, srv.url).closed['server-close'], 1);
        const c = await fetchText(client, `${srv.url}/c`, { method: 'POST', body: 'x' });
        assert.equal(c.res.status, 200);
        assert.equal(srv.stats.writesAfterClose, 0);
      },
      { headersTimeout: 2000 },
    );
  },
);

test(
  'liveness: agent.close() during a liveness turn lets the request that took the connection finish',
  { timeout: T },
  async () => {
    const srv = await startFaultServer();
    await withClient(srv, {}, async (agent, client) => {
      await fetchText(client, `${srv.url}/a`);
      await sleep(300); // idle long enough for the liveness turn
      const pending = fetchText(client, `${srv.url}/b`, { method: 'POST', body: 'x' });
      const closed = agent.close();
      const b = await pending; // accepted before close(): graceful close lets it finish
      assert.equal(b.res.status, 200);
      assert.equal(b.res.connection.reused, true);
      await closed;
      assert.equal(originStats(agent, srv.url).open, 0);
    });
  },
);

// ---- safe retry (invariant 5) -------------------------------------------------------------------

/**
 * `x-fault` chooses what the server does with a request: `reset-if-reused` resets (RST, no response)
 * any request that is not the first on its connection; `reset` always; `mid-body-if-reused` sends the
 * head and part of the body, then RST; `partial-head-if-reused` sends part of the head, then FIN.
 */
const faultHandler: FaultHandler = (req) => {
  const f = req.headers['x-fault'];
  const reused = req.seq > 1;
  if (f === 'reset' || (f === 'reset-if-reused' && reused)) return { type: 'reset' };
  if (f === 'mid-body-if-reused' && reused) {
    return { type: 'reset-mid-body', body: 'y'.repeat(1000), bytesBeforeReset: 100 };
  }
  if (f === 'partial-head-if-reused' && reused) {
    return { type: 'raw', data: 'HTTP/1.1 200 OK\r\nContent-Le', after: 'close' };
  }
  return { type: 'respond', body: `ok ${req.method} ${req.body.toString()}` };
};

/** withClient on a fresh fault server that answers by faultHandler. */
async function withFaultServer(fn: (srv: FaultServer, agent: Agent, client: Client) => Promise<void>) {
  const srv = await startFaultServer({ handler: faultHandler });
  await withClient(srv, {}, (agent, client) => fn(srv, agent, client));
}

const countOf = (srv: FaultServer, id: string) => srv.requestIdCounts.get(id) ?? 0;

/** A fault server that resets every request on connections 1 to `upTo()` and answers `ok\n` on later ones. */
const startResettingServer = (upTo: () => number) =>
  startFaultServer({
    handler: (req) => (req.connId <= upTo() ? { type: 'reset' } : { type: 'respond', body: 'ok\n' }),
  });

test(
  'retry: a GET reset on a reused connection is retried once, on a new connection',
  { timeout: T },
  async () => {
    await withFaultServer(async (srv, agent, client) => {
      await fetchText(client, `${srv.url}/warm`);
      const id = rid('get');
      const r = await fetchText(client, `${srv.url}/g`, {
        headers: { 'x-request-id': id, 'x-fault': 'reset-if-reused' },
      });
      assert.equal(r.res.status, 200);
      assert.equal(r.res.retried, true);
      assert.equal(r.res.connection.reused, false);
      assert.equal(r.res.connection.requestCount, 1);
      assert.equal(countOf(srv, id), 2);
      assert.equal(srv.stats.connectionsAccepted, 2);
      const s = originStats(agent, srv.url);
      assert.equal(s.retried, 1);
      assert.equal(agent.stats().origins.find((o) => o.origin === srv.url)?.retried, 1);
      // A plain request afterwards is not marked retried.
      const after = await fetchText(client, `${srv.url}/after`);
      assert.equal(after.res.retried, false);
    });
  },
);

test('retry: only once; a retry that fails too is reported', { timeout: T }, async () => {
  await withFaultServer(async (srv, agent, client) => {
    await fetchText(client, `${srv.url}/warm`);
    const id = rid('get');
    const err = await rejects(
      client.request(`${srv.url}/g`, { headers: { 'x-request-id': id, 'x-fault': 'reset' } }),
    );
    assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
    assert.equal(countOf(srv, id), 2);
    assert.equal(originStats(agent, srv.url).retried, 1);
  });
});

test(
  'retry: a POST reset on a reused connection is not retried; clear error, processed at most once',
  { timeout: T },
  async () => {
    await withFaultServer(async (srv, agent, client) => {
      await fetchText(client, `${srv.url}/warm`);
      const id = rid('post');
      const err = await rejects(
        client.request(`${srv.url}/p`, {
          method: 'POST',
          body: 'payload',
          headers: { 'x-request-id': id, 'x-fault': 'reset-if-reused' },
        }),
      );
      assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
      assert.match(err.message, /not retried/);
      assert.ok(countOf(srv, id) <= 1);
      assert.equal(originStats(agent, srv.url).retried, 0);
      assert.equal(srv.stats.connectionsAccepted, 1);
    });
  },
);

test(
  'liveness: a POST waiting in line is not handed a connection whose server closed right behind the response',
  { timeout: T },
  async () => {
    // The server answers the GET and closes at once, without saying so. The POST waits in line
    // (one connection allowed) and is handed the connection from the GET's completion, before its
    // FIN has been read. A POST cannot be retried, so the pool lets the loop read the FIN first: the
    // POST goes on a new connection and is processed exactly once.
    const srv = await startFaultServer({
      handler: (req) =>
        req.path === '/last'
          ? { type: 'respond', body: 'bye', after: 'close-silently' }
          : { type: 'respond', body: `ok ${req.method}` },
    });
    await withClient(srv, { maxConnectionsPerOrigin: 1 }, async (agent, client) => {
      await fetchText(client, `${srv.url}/warm`);
      const id = rid('post');
      const [get, post] = await Promise.all([
        fetchText(client, `${srv.url}/last`),
        fetchText(client, `${srv.url}/p`, { method: 'POST', body: 'x', headers: { 'x-request-id': id } }),
      ]);
      assert.equal(get.text, 'bye');
      assert.equal(post.text, 'ok POST');
      assert.equal(post.res.retried, false);
      assert.equal(post.res.connection.reused, false, 'the POST went on a new connection');
      assert.equal(countOf(srv, id), 1);
      assert.deepEqual(srv.events('write-after-close'), []);
    });
  },
);

test('retry: a PATCH is not retried either', { timeout: T }, async () => {
  await withFaultServer(async (srv, agent, client) => {
    await fetchText(client, `${srv.url}/warm`);
    const id = rid('patch');
    const err = await rejects(
      client.request(`${srv.url}/p`, {
        method: 'PATCH',
        body: 'x',
        headers: { 'x-request-id': id, 'x-fault': 'reset-if-reused' },
      }),
    );
    assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
    assert.equal(countOf(srv, id), 1);
    assert.equal(originStats(agent, srv.url).retried, 0);
  });
});

test('retry: a POST marked idempotent: true is retried', { timeout: T }, async () => {
  await withFaultServer(async (srv, agent, client) => {
    await fetchText(client, `${srv.url}/warm`);
    const id = rid('post');
    const r = await fetchText(client, `${srv.url}/p`, {
      method: 'POST',
      body: 'payload',
      idempotent: true,
      headers: { 'x-request-id': id, 'x-fault': 'reset-if-reused' },
    });
    assert.equal(r.res.retried, true);
    assert.equal(r.text, 'ok POST payload');
    assert.equal(countOf(srv, id), 2);
    assert.equal(originStats(agent, srv.url).retried, 1);
  });
});

test('retry: a one-shot stream body is not retried', { timeout: T }, async () => {
  await withFaultServer(async (srv, agent, client) => {
    await fetchText(client, `${srv.url}/warm`);
    const id = rid('put');
    const err = await rejects(
      client.request(`${srv.url}/u`, {
        method: 'PUT',
        body: Readable.from([Buffer.from('one-'), Buffer.from('shot')]),
        headers: { 'x-request-id': id, 'x-fault': 'reset-if-reused' },
      }),
    );
    assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
    assert.match(err.message, /not retried/);
    assert.equal(countOf(srv, id), 1);
    assert.equal(originStats(agent, srv.url).retried, 0);
  });
});

test('retry: a body from a stream factory is retried, and sent whole again', { timeout: T }, async () => {
  await withFaultServer(async (srv, agent, client) => {
    await fetchText(client, `${srv.url}/warm`);
    const id = rid('put');
    let opened = 0;
    const r = await fetchText(client, `${srv.url}/u`, {
      method: 'PUT',
      body: () => {
        opened++;
        return Readable.from([Buffer.from('re-'), Buffer.from('playable')]);
      },
      headers: { 'x-request-id': id, 'x-fault': 'reset-if-reused' },
    });
    assert.equal(r.res.retried, true);
    assert.equal(r.text, 'ok PUT re-playable');
    assert.equal(opened, 2);
    assert.equal(countOf(srv, id), 2);
    const bodies = srv.requests.filter((q) => q.requestId === id).map((q) => q.body.toString());
    assert.deepEqual(bodies, ['re-playable', 're-playable']);
    assert.equal(originStats(agent, srv.url).retried, 1);
  });
});

test(
  'retry: never after response bytes arrived (reset mid-body fails the body)',
  { timeout: T },
  async () => {
    await withFaultServer(async (srv, agent, client) => {
      await fetchText(client, `${srv.url}/warm`);
      const id = rid('get');
      const res = await client.request(`${srv.url}/g`, {
        headers: { 'x-request-id': id, 'x-fault': 'mid-body-if-reused' },
      });
      assert.equal(res.status, 200);
      assert.equal(res.retried, false);
      const err = await rejects(res.body.text());
      assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
      assert.equal(countOf(srv, id), 1);
      assert.equal(originStats(agent, srv.url).retried, 0);
    });
  },
);

test('retry: never after response bytes arrived, even part of the head', { timeout: T }, async () => {
  await withFaultServer(async (srv, agent, client) => {
    await fetchText(client, `${srv.url}/warm`);
    const id = rid('get');
    const err = await rejects(
      client.request(`${srv.url}/g`, {
        headers: { 'x-request-id': id, 'x-fault': 'partial-head-if-reused' },
      }),
    );
    assert.ok(typeof err.code === 'string' && err.code.startsWith('WARMPOOL_'), String(err));
    assert.equal(countOf(srv, id), 1);
    assert.equal(originStats(agent, srv.url).retried, 0);
  });
});

test('retry: never when the failing connection was new', { timeout: T }, async () => {
  await withFaultServer(async (srv, agent, client) => {
    const id = rid('get');
    const err = await rejects(
      client.request(`${srv.url}/g`, { headers: { 'x-request-id': id, 'x-fault': 'reset' } }),
    );
    assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
    assert.equal(countOf(srv, id), 1);
    assert.equal(originStats(agent, srv.url).retried, 0);
    assert.equal(srv.stats.connectionsAccepted, 1);
  });
});

test(
  'retry: retryOnStale: false turns it off (per request, per Client, and on client.with)',
  { timeout: T },
  async () => {
    await withFaultServer(async (srv, agent, client) => {
      const off = client.with({ retryOnStale: false });
      for (const [c, init] of [
        [client, { retryOnStale: false }],
        [off, {}],
        [new Client({ agent, retryOnStale: false }), {}],
      ] as const) {
        await fetchText(c, `${srv.url}/warm`);
        const id = rid('get');
        const err = await rejects(
          c.request(`${srv.url}/g`, {
            ...init,
            headers: { 'x-request-id': id, 'x-fault': 'reset-if-reused' },
          }),
        );
        assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
        assert.equal(countOf(srv, id), 1);
      }
      assert.equal(originStats(agent, srv.url).retried, 0);
      // The per-request option wins over the Client's.
      await fetchText(off, `${srv.url}/warm`);
      const r = await fetchText(off, `${srv.url}/g`, {
        retryOnStale: true,
        headers: { 'x-request-id': rid('get'), 'x-fault': 'reset-if-reused' },
      });
      assert.equal(r.res.retried, true);
    });
  },
);

test(
  'retry: a connection that waited in the pool unused is as suspect as a reused one',
  { timeout: T },
  async () => {
    // A dial whose waiter went away (aborted here; served by another connection, in the field) leaves
    // a connection nobody has used. If the server closes it while it waits, the first request on it
    // fails exactly like one on a reused connection, and is retried the same way.
    let doomedUpTo = 0;
    const srv = await startResettingServer(() => doomedUpTo);
    await withClient(srv, {}, async (agent, client) => {
      const ac = new AbortController();
      const aborted = client.request(`${srv.url}/gone`, { signal: ac.signal });
      ac.abort();
      assert.equal((await rejects(aborted)).code, 'WARMPOOL_ABORTED');
      await waitFor(() => originStats(agent, srv.url).idle === 1, 2000, 'the dialed connection waits idle');
      assert.equal(srv.stats.requestsTotal, 0);
      doomedUpTo = srv.stats.connectionsAccepted;

      const id = rid('get');
      const r = await fetchText(client, `${srv.url}/g`, { headers: { 'x-request-id': id } });
      assert.equal(r.res.status, 200);
      assert.equal(r.res.retried, true);
      assert.equal(r.res.connection.reused, false);
      assert.equal(countOf(srv, id), 2);
      assert.equal(originStats(agent, srv.url).retried, 1);
    });
  },
);

test(
  'liveness: a connection that waited in the pool unused gets the liveness turn too',
  { timeout: 10_000 },
  async () => {
    const srv = await startWorkerFaultServer({ closeIdleAfterMs: 300, lingerMs: 3000 });
    await withClient(srv, {}, async (agent, client) => {
      const ac = new AbortController();
      const aborted = client.request(`${srv.url}/gone`, { signal: ac.signal });
      ac.abort();
      await rejects(aborted);
      await waitFor(() => originStats(agent, srv.url).idle === 1, 2000, 'the dialed connection waits idle');
      const r = await fromTimer(100, () => {
        blockThread(300); // the server closes the unused connection meanwhile
        return fetchText(client, `${srv.url}/p`, { method: 'POST', body: 'x' });
      });
      assert.equal(r.res.status, 200);
      await sleep(100);
      const snap = await srv.snapshot();
      assert.deepEqual(
        snap.log.filter((e) => e.kind === 'write-after-close'),
        [],
      );
      assert.equal(originStats(agent, srv.url).retried, 0);
    });
  },
);

// ---- recovery ---------------------------------------------------------------------------------

test(
  'recovery: after a silent server restart, the first failure drops every idle connection',
  { timeout: T },
  async () => {
    // The server lost its connection table (rebooted host, load balancer failover): nothing reaches
    // the client until it writes, and every old connection answers a request with RST.
    let oldConnsUpTo = 0;
    const srv = await startResettingServer(() => oldConnsUpTo);
    await withClient(srv, {}, async (agent, client) => {
      await burst(client, `${srv.url}/warm`, 8);
      assert.equal(originStats(agent, srv.url).idle, 8);
      oldConnsUpTo = srv.stats.connectionsAccepted;
      assert.equal(oldConnsUpTo, 8);

      const first = await fetchText(client, `${srv.url}/first`);
      assert.equal(first.res.retried, true);
      let s = originStats(agent, srv.url);
      assert.equal(s.closed.stale, 7, 'the other idle connections are dropped at the first sign');
      assert.equal(s.retried, 1);
      assert.equal(s.idle, 1);

      // Non-idempotent requests too: none may land on an old connection.
      const rest = await Promise.all([
        burst(client, `${srv.url}/p`, 10, 'POST'),
        burst(client, `${srv.url}/g`, 10),
      ]);
      for (const r of rest.flat()) {
        assert.equal(r.res.status, 200);
        assert.equal(r.res.retried, false);
      }
      for (let i = 0; i < 20; i++)
        await fetchText(client, `${srv.url}/seq${i}`, { method: 'POST', body: 'x' });
      s = originStats(agent, srv.url);
      assert.equal(s.retried, 1);
      const onOld = srv.requests.filter((q) => q.connId <= oldConnsUpTo && q.path !== '/warm');
      assert.equal(onOld.length, 1, 'only the first request reached an old connection');
    });
  },
);

test(
  'recovery: a server restart (FIN on every connection) right before a burst: every GET succeeds, then only new connections',
  { timeout: T },
  async () => {
    const srv = await startFaultServer({ lingerMs: 3000 });
    await withClient(srv, {}, async (agent, client) => {
      await burst(client, `${srv.url}/warm`, 8);
      // restart() completes within one turn of the loop: the pool has not read the FINs yet, and the
      // connections are too young (< 250 ms idle) for a liveness turn. The GETs written to them are
      // retried; everything the pool learns makes it drop the rest.
      await srv.restart();
      const gets = await burst(client, `${srv.url}/g`, 20);
      for (const r of gets) {
        assert.equal(r.res.status, 200);
        assert.equal(r.res.connection.reused, false);
      }
      const s = originStats(agent, srv.url);
      assert.equal(s.closed['server-close'] + s.closed.stale, 8);
      assert.ok(s.retried <= 8, `retried ${s.retried}`);
      // Now non-idempotent requests: none may land on an old connection.
      const posts = await burst(client, `${srv.url}/p`, 10, 'POST');
      for (const r of posts) assert.equal(r.res.status, 200);
      const perConn = srv.stats.requestsPerConnection;
      for (let id = 1; id <= 8; id++)
        assert.equal(perConn.get(id), 1, `old connection ${id} served after the restart`);
    });
  },
);
