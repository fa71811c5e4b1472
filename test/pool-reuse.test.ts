/**
 * Pool reuse: a Client is a cheap view on an Agent, so creating one per request (the usual SDK
 * mistake) still reuses the pool's connections; copies of a Client and every Client made without an
 * agent share one pool (DESIGN.md invariant 1). Also res.connection, res.timings and agent.stats().
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, Client, getGlobalAgent, request } from '../src/index.js';
import { startFaultServer } from './helpers/fault-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { deferred, waitFor } from './helpers/pool-util.js';

const BURSTS = 20;
const BURST_SIZE = 9;

/** 20 bursts of 9 concurrent requests, each through a Client made by `makeClient`. */
async function runBursts(url: string, makeClient: () => Client): Promise<{ later: number; reused: number }> {
  let later = 0;
  let reused = 0;
  for (let b = 0; b < BURSTS; b++) {
    const flags = await Promise.all(
      Array.from({ length: BURST_SIZE }, async () => {
        const res = await makeClient().request(`${url}/item`);
        assert.equal(res.status, 200);
        assert.equal(await res.body.text(), 'ok\n');
        return res.connection.reused;
      }),
    );
    if (b > 0) {
      later += flags.length;
      reused += flags.filter(Boolean).length;
    }
  }
  return { later, reused };
}

test('bursts of 9 through a new Client per request on one Agent open at most 9 connections and reuse them', async () => {
  const server = await startHttpServer();
  const agent = new Agent();
  try {
    const { later, reused } = await runBursts(server.url, () => new Client({ agent }));
    assert.ok(server.stats.connectionsTotal <= BURST_SIZE, `opened ${server.stats.connectionsTotal}`);
    assert.ok(
      reused >= later * 0.95,
      `${reused} of ${later} requests after the first burst reused a connection`,
    );
    const s = agent.originStats(server.url)!;
    assert.equal(s.created, server.stats.connectionsTotal);
    assert.equal(s.requests, BURSTS * BURST_SIZE);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('bursts of 9 through new Client() with no agent share the global agent: at most 9 connections, reused', async () => {
  const server = await startHttpServer();
  try {
    const { later, reused } = await runBursts(server.url, () => new Client());
    assert.ok(server.stats.connectionsTotal <= BURST_SIZE, `opened ${server.stats.connectionsTotal}`);
    assert.ok(
      reused >= later * 0.95,
      `${reused} of ${later} requests after the first burst reused a connection`,
    );
    assert.equal(getGlobalAgent().originStats(server.url)!.created, server.stats.connectionsTotal);
  } finally {
    await server.close();
  }
});

test('getGlobalAgent() returns the same agent every time, and request() and new Client() use it', async () => {
  const server = await startHttpServer();
  try {
    assert.equal(getGlobalAgent(), getGlobalAgent());
    assert.equal(new Client().agent, getGlobalAgent());
    const a = await request(`${server.url}/a`);
    await a.body.text();
    const b = await new Client().request(`${server.url}/b`);
    await b.body.text();
    assert.equal(b.connection.reused, true);
    assert.equal(b.connection.id, a.connection.id);
    assert.equal(server.stats.connectionsTotal, 1);
  } finally {
    await server.close();
  }
});

test('a copy made with client.with({headers}) shares the pool: its request reuses the connection and sends both headers', async () => {
  const seen: Array<{ a: unknown; b: unknown }> = [];
  const server = await startHttpServer((req, res) => {
    seen.push({ a: req.headers['x-a'], b: req.headers['x-b'] });
    res.end('ok\n');
  });
  const agent = new Agent();
  try {
    const client = new Client({ agent, baseUrl: server.url, headers: { 'x-a': '1' } });
    const copy = client.with({ headers: { 'x-b': '2' } });
    assert.equal(copy.agent, client.agent);
    const r1 = await client.request('/one');
    await r1.body.text();
    const r2 = await copy.request('/two');
    await r2.body.text();
    assert.equal(r2.connection.reused, true);
    assert.equal(r2.connection.id, r1.connection.id);
    assert.equal(server.stats.connectionsTotal, 1);
    assert.deepEqual(seen, [
      { a: '1', b: undefined },
      { a: '1', b: '2' },
    ]);
    assert.equal(agent.stats().origins.length, 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('res.timings has queuedMs, connectMs and ttfbMs on a new connection and no connectMs on a reused one', async () => {
  const server = await startHttpServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const first = await client.request(`${server.url}/`);
    await first.body.text();
    const t1 = first.timings;
    for (const v of [t1.queuedMs, t1.connectMs, t1.ttfbMs]) {
      assert.equal(typeof v, 'number');
      assert.ok(v! >= 0 && Number.isFinite(v));
    }
    assert.equal(t1.dnsMs, undefined, 'an IP literal needs no DNS lookup');
    assert.equal(t1.tlsMs, undefined, 'no TLS on http://');

    const second = await client.request(`${server.url}/`);
    await second.body.text();
    const t2 = second.timings;
    assert.equal(t2.connectMs, undefined);
    assert.equal(t2.dnsMs, undefined);
    assert.equal(t2.tlsMs, undefined);
    assert.ok(t2.queuedMs >= 0 && t2.ttfbMs >= 0);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('res.connection tells the connection id, protocol, reuse, age, idle time and request count', async () => {
  const server = await startHttpServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const first = await client.request(`${server.url}/`);
    await first.body.text();
    assert.deepEqual(
      { ...first.connection, ageMs: 0 },
      { id: first.connection.id, protocol: 'http/1.1', reused: false, ageMs: 0, idleMs: 0, requestCount: 1 },
    );
    assert.ok(first.connection.ageMs >= 0);
    await new Promise((r) => setTimeout(r, 20));
    const second = await client.request(`${server.url}/`);
    await second.body.text();
    const c = second.connection;
    assert.equal(c.id, first.connection.id);
    assert.equal(c.protocol, 'http/1.1');
    assert.equal(c.reused, true);
    assert.equal(c.requestCount, 2);
    assert.ok(c.idleMs > 0, 'the connection had been idle');
    assert.ok(c.ageMs >= c.idleMs, 'a connection is at least as old as its idle time');

    // Two at once: the second gets a connection of its own, with its own id.
    const [x, y] = await Promise.all([client.request(`${server.url}/`), client.request(`${server.url}/`)]);
    await Promise.all([x.body.text(), y.body.text()]);
    assert.notEqual(x.connection.id, y.connection.id);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('maxRequestsPerConnection: 3 requests share a connection, the 4th gets a new one and the first closes as max-requests', async () => {
  const server = await startHttpServer({ keepAliveTimeout: 60_000 });
  const agent = new Agent({ maxRequestsPerConnection: 3 });
  try {
    const client = new Client({ agent });
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await client.request(`${server.url}/`);
      await res.body.text();
      ids.push(res.connection.id);
    }
    assert.deepEqual(ids.slice(0, 3), [ids[0], ids[0], ids[0]]);
    assert.notEqual(ids[3], ids[0]);
    assert.equal(server.stats.connectionsTotal, 2);
    assert.equal(agent.originStats(server.url)!.closed['max-requests'], 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('maxConnectionAge: a connection past that age is not reused, however recently it served', async () => {
  const server = await startHttpServer({ keepAliveTimeout: 60_000 });
  const agent = new Agent({ maxConnectionAge: 300 });
  try {
    const client = new Client({ agent });
    const first = await client.request(`${server.url}/`);
    await first.body.text();
    const second = await client.request(`${server.url}/`); // young: reused
    await second.body.text();
    assert.equal(second.connection.id, first.connection.id);
    await new Promise((r) => setTimeout(r, 350)); // idle far below idleTimeout, but past the age limit
    const third = await client.request(`${server.url}/`);
    await third.body.text();
    assert.notEqual(third.connection.id, first.connection.id);
    assert.equal(third.connection.reused, false);
    assert.equal(agent.originStats(server.url)!.closed['max-age'], 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('a response whose small body is never read still releases its connection: the next request reuses it', async () => {
  const server = await startFaultServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const first = await client.request(`${server.url}/small`);
    assert.equal(first.status, 200); // body ('ok\n') deliberately not read
    const second = await client.request(`${server.url}/small`);
    assert.equal(second.connection.reused, true);
    assert.equal(second.connection.id, first.connection.id);
    assert.equal(await second.body.text(), 'ok\n');
    assert.equal(server.stats.connectionsAccepted, 1);
    assert.equal(await first.body.text(), 'ok\n', 'the unread body is still there to read');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('agent.stats() reports open, idle, busy, queued, created, reused, requests, closed by reason and retried', async () => {
  // /2 sent on a reused connection is answered by closing it (a stale connection); /3 waits for a gate.
  const gate = deferred();
  const server = await startFaultServer({
    handler: async (req, ctx) => {
      if (req.path === '/2' && ctx.requestsOnConnection === 2) return { type: 'close' };
      if (req.path === '/3') await gate.promise;
      return undefined;
    },
  });
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const r1 = await client.request(`${server.url}/1`);
    await r1.body.text();
    let s = agent.originStats(server.url)!;
    assert.equal(s.origin, server.url);
    assert.equal(s.protocol, 'http/1.1');
    assert.deepEqual(
      [s.open, s.connecting, s.idle, s.busy, s.queued, s.created, s.requests, s.reused, s.retried],
      [1, 0, 1, 0, 0, 1, 1, 0, 0],
    );
    assert.deepEqual(Object.values(s.closed), Array(Object.keys(s.closed).length).fill(0));

    // Reuses connection 1; the server closes it without answering; the GET is retried on a new one.
    const r2 = await client.request(`${server.url}/2`);
    assert.equal(await r2.body.text(), 'ok\n');
    assert.equal(r2.retried, true);
    assert.equal(r2.connection.reused, false);
    s = agent.originStats(server.url)!;
    assert.equal(s.created, 2);
    assert.equal(s.reused, 1);
    assert.equal(s.retried, 1);
    assert.equal(s.open, 1);
    assert.equal(s.idle, 1);
    assert.equal(s.closed['server-close'], 1);

    // While a request is in flight the connection counts as busy.
    const pending = client.request(`${server.url}/3`);
    await waitFor(() => server.stats.requestsTotal === 4, '/3 at the server');
    s = agent.originStats(server.url)!;
    assert.deepEqual([s.open, s.busy, s.idle, s.queued], [1, 1, 0, 0]);
    gate.resolve();
    const r3 = await pending;
    assert.equal(r3.connection.id, r2.connection.id);
    await r3.body.text();
    const all = agent.stats();
    assert.equal(all.open, 1);
    assert.equal(all.origins.length, 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});
