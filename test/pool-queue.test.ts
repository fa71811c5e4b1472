/**
 * The per-origin cap and its FIFO queue (DESIGN.md invariant 2), the queue limits (queueTimeout,
 * maxQueued), aborting a request in each state it can be in, and the total cap across origins.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { Agent, Client } from '../src/index.js';
import { startFaultServer } from './helpers/fault-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { deferred, isSettled, rejectsWith, waitFor } from './helpers/pool-util.js';

test('200 concurrent requests with maxConnectionsPerOrigin 4 use 4 connections, all succeed, and are sent in the order they were made', async () => {
  const TOTAL = 200;
  const CAP = 4;
  // Lock-step server: it answers one held request only when every connection is busy with one, then
  // waits for the next request before answering another. Exactly one connection is free at a time,
  // so the order in which requests arrive is the order in which the pool dispatched them.
  const arrivals: number[] = [];
  const held: http.ServerResponse[] = [];
  let answered = 0;
  let statsWhenFull: ReturnType<Agent['stats']> | undefined;
  let agent: Agent | undefined;
  const server = await startHttpServer((req, res) => {
    arrivals.push(Number(req.headers['x-id']));
    held.push(res);
    if (statsWhenFull === undefined && held.length === CAP) statsWhenFull = agent!.stats();
    while (held.length > 0 && held.length === Math.min(CAP, TOTAL - answered)) {
      answered++;
      held.shift()!.end('ok\n');
    }
  });
  agent = new Agent({ maxConnectionsPerOrigin: CAP });
  try {
    const client = new Client({ agent });
    const results = await Promise.all(
      Array.from({ length: TOTAL }, async (_, i) => {
        const res = await client.request(`${server.url}/${i}`, { headers: { 'x-id': String(i) } });
        return [res.status, await res.body.text()];
      }),
    );
    assert.deepEqual(results, Array(TOTAL).fill([200, 'ok\n']));
    assert.equal(server.stats.maxOpenConnections, CAP);
    assert.equal(server.stats.connectionsTotal, CAP);
    // The first four are sent on four connections dialed in parallel: any order among themselves.
    assert.deepEqual(
      arrivals.slice(0, CAP).sort((a, b) => a - b),
      [0, 1, 2, 3],
    );
    assert.deepEqual(
      arrivals.slice(CAP),
      Array.from({ length: TOTAL - CAP }, (_, i) => i + CAP),
    );
    const s = statsWhenFull!.origins[0]!;
    assert.deepEqual([s.open, s.busy, s.idle, s.queued], [CAP, CAP, 0, TOTAL - CAP]);
    assert.equal(agent.originStats(server.url)!.queued, 0);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

/** A server whose `/hold` requests wait for release(); everything else answers at once. */
async function holdingServer(keepAliveTimeout?: number) {
  let gate = deferred();
  const server = await startHttpServer({
    keepAliveTimeout,
    handler: async (req, res) => {
      if (req.url === '/hold') await gate.promise;
      res.end('ok\n');
    },
  });
  return {
    server,
    release() {
      gate.resolve();
      gate = deferred();
    },
  };
}

test('queueTimeout fails a waiter with WARMPOOL_QUEUE_TIMEOUT and frees its place: the next waiter proceeds', async () => {
  const { server, release } = await holdingServer();
  const agent = new Agent({ maxConnectionsPerOrigin: 1, queueTimeout: 100 });
  try {
    const client = new Client({ agent });
    const busy = client.request(`${server.url}/hold`);
    await waitFor(() => server.stats.requestsTotal === 1, 'first request at the server');
    await rejectsWith(client.request(`${server.url}/late`), 'WARMPOOL_QUEUE_TIMEOUT', server.url);
    assert.equal(agent.originStats(server.url)!.queued, 0);
    const next = client.request(`${server.url}/next`);
    release();
    const first = await busy;
    await first.body.text();
    const res = await next;
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(res.connection.reused, true);
    assert.equal(server.stats.connectionsTotal, 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('maxQueued: a request past the queue limit is rejected at once with WARMPOOL_QUEUE_FULL; the queued one still runs', async () => {
  const { server, release } = await holdingServer();
  const agent = new Agent({ maxConnectionsPerOrigin: 1, maxQueued: 1 });
  try {
    const client = new Client({ agent });
    const busy = client.request(`${server.url}/hold`);
    await waitFor(() => server.stats.requestsTotal === 1, 'first request at the server');
    const queued = client.request(`${server.url}/queued`);
    const refused = client.request(`${server.url}/refused`);
    // Rejected while the connection is still held: it did not wait for anything.
    await rejectsWith(refused, 'WARMPOOL_QUEUE_FULL', server.url);
    assert.equal(await isSettled(busy), false);
    assert.equal(await isSettled(queued), false);
    assert.equal(agent.originStats(server.url)!.queued, 1);
    release();
    await (await busy).body.text();
    const res = await queued;
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(server.stats.requestsTotal, 2);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('abort while queued rejects with WARMPOOL_ABORTED, frees the place in line and leaks no socket', async () => {
  const { server, release } = await holdingServer();
  const agent = new Agent({ maxConnectionsPerOrigin: 1 });
  try {
    const client = new Client({ agent });
    const busy = client.request(`${server.url}/hold`);
    await waitFor(() => server.stats.requestsTotal === 1, 'first request at the server');
    const ac = new AbortController();
    const aborted = client.request(`${server.url}/aborted`, { signal: ac.signal });
    const next = client.request(`${server.url}/next`);
    assert.equal(agent.originStats(server.url)!.queued, 2);
    ac.abort();
    await rejectsWith(aborted, 'WARMPOOL_ABORTED', server.url);
    assert.equal(agent.originStats(server.url)!.queued, 1);
    release();
    await (await busy).body.text();
    const res = await next;
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(res.connection.reused, true);
    assert.equal(server.stats.requestsTotal, 2, 'the aborted request was never sent');
    assert.equal(server.stats.connectionsTotal, 1);
    await agent.close();
    await waitFor(() => server.stats.openConnections === 0, 'server sees the connection closed');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('abort while the connection is being dialed rejects with WARMPOOL_ABORTED; the dialed connection serves the next request', async () => {
  const server = await startHttpServer();
  const agent = new Agent({ maxConnectionsPerOrigin: 1 });
  try {
    const client = new Client({ agent });
    const ac = new AbortController();
    const aborted = client.request(`${server.url}/aborted`, { signal: ac.signal });
    assert.equal(agent.originStats(server.url)!.connecting, 1);
    ac.abort();
    await rejectsWith(aborted, 'WARMPOOL_ABORTED', server.url);
    const res = await client.request(`${server.url}/next`);
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(server.stats.connectionsTotal, 1);
    assert.equal(server.stats.requestsTotal, 1, 'the aborted request was never sent');
    const s = agent.originStats(server.url)!;
    assert.deepEqual([s.open, s.idle, s.connecting, s.queued], [1, 1, 0, 0]);
    await agent.close();
    await waitFor(() => server.stats.openConnections === 0, 'server sees the connection closed');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('abort during a TLS handshake that stalls rejects with WARMPOOL_ABORTED; the dial ends at connectTimeout and leaks no socket', async () => {
  // Accepts TCP, never answers the ClientHello.
  let open = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    open++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume(); // read (and drop) the ClientHello, so the client's close is seen
    socket.on('close', () => {
      open--;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const agent = new Agent({ connectTimeout: 300 });
  try {
    const ac = new AbortController();
    const aborted = new Client({ agent }).request(`${origin}/`, { signal: ac.signal });
    await waitFor(() => open === 1, 'the TCP connection is accepted');
    assert.equal(agent.originStats(origin)!.connecting, 1);
    ac.abort();
    await rejectsWith(aborted, 'WARMPOOL_ABORTED', origin);
    await waitFor(() => open === 0, 'the stalled handshake socket is closed');
    const s = agent.originStats(origin);
    assert.equal(s?.connecting ?? 0, 0);
    assert.equal(agent.stats().open, 0);
  } finally {
    await agent.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('abort while waiting for the response head rejects with WARMPOOL_ABORTED, closes that connection and lets the next waiter proceed', async () => {
  const server = await startFaultServer({
    handler: (req) => (req.path === '/stall' ? { type: 'stall' } : undefined),
  });
  const agent = new Agent({ maxConnectionsPerOrigin: 1 });
  try {
    const client = new Client({ agent });
    const ac = new AbortController();
    const stalled = client.request(`${server.url}/stall`, { signal: ac.signal });
    const next = client.request(`${server.url}/next`);
    await waitFor(() => server.stats.requestsTotal === 1, 'stalled request at the server');
    ac.abort();
    await rejectsWith(stalled, 'WARMPOOL_ABORTED', server.url);
    const res = await next;
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(res.connection.reused, false, 'a connection with an unanswered request is never reused');
    await waitFor(
      () => server.events('close-by-client').length === 1,
      'server sees the aborted connection closed',
    );
    assert.equal(server.stats.openConnections, 1);
    assert.equal(agent.originStats(server.url)!.closed.aborted, 1);
    await agent.close();
    await waitFor(() => server.stats.openConnections === 0, 'server sees every connection closed');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('abort mid-body errors the body with WARMPOOL_ABORTED, closes that connection and lets the next waiter proceed', async () => {
  const server = await startFaultServer({
    handler: (req) =>
      req.path === '/stall-body'
        ? { type: 'stall-body', body: 'x'.repeat(1000), bytesBeforeStall: 100 }
        : undefined,
  });
  const agent = new Agent({ maxConnectionsPerOrigin: 1 });
  try {
    const client = new Client({ agent });
    const ac = new AbortController();
    const res = await client.request(`${server.url}/stall-body`, { signal: ac.signal });
    assert.equal(res.status, 200);
    const text = res.body.text();
    const next = client.request(`${server.url}/next`);
    ac.abort();
    await rejectsWith(text, 'WARMPOOL_ABORTED', server.url);
    const r2 = await next;
    assert.equal(await r2.body.text(), 'ok\n');
    assert.equal(r2.connection.reused, false);
    await waitFor(
      () => server.events('close-by-client').length === 1,
      'server sees the aborted connection closed',
    );
    assert.equal(agent.originStats(server.url)!.closed.aborted, 1);
    await agent.close();
    await waitFor(() => server.stats.openConnections === 0, 'server sees every connection closed');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('maxConnections caps open connections across origins: never more than 2 in total while both origins are busy', async () => {
  let agent: Agent | undefined;
  let worst = 0;
  const sample = () => {
    const s = agent!.stats();
    let sum = 0;
    for (const o of s.origins) sum += o.open + o.connecting;
    worst = Math.max(worst, s.open, sum);
  };
  const handler = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    sample();
    setTimeout(() => res.end('ok\n'), 1);
  };
  const a = await startHttpServer(handler);
  const b = await startHttpServer(handler);
  agent = new Agent({ maxConnections: 2 });
  try {
    const client = new Client({ agent });
    for (let round = 0; round < 5; round++) {
      const all = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const res = await client.request(`${i % 2 === 0 ? a.url : b.url}/`);
          sample();
          return res.body.text();
        }),
      );
      assert.deepEqual(all, Array(12).fill('ok\n'));
      sample();
    }
    assert.ok(worst <= 2, `${worst} connections were open at once`);
    assert.ok(a.stats.requestsTotal === 30 && b.stats.requestsTotal === 30);
  } finally {
    await agent.destroy();
    await a.close();
    await b.close();
  }
});

test('maxConnections: an idle connection of one origin is closed to make room for another origin', async () => {
  const a = await startHttpServer();
  const b = await startHttpServer();
  const agent = new Agent({ maxConnections: 2 });
  try {
    const client = new Client({ agent });
    const two = await Promise.all([client.request(`${a.url}/`), client.request(`${a.url}/`)]);
    await Promise.all(two.map((r) => r.body.text()));
    assert.equal(agent.originStats(a.url)!.idle, 2);
    const res = await client.request(`${b.url}/`);
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(agent.stats().open, 2);
    assert.equal(agent.originStats(a.url)!.open, 1);
    assert.equal(agent.originStats(a.url)!.closed['agent-close'], 1);
    await waitFor(() => a.stats.openConnections === 1, 'origin A sees one of its connections closed');
  } finally {
    await agent.destroy();
    await a.close();
    await b.close();
  }
});

test('maxConnections: a connection that goes idle while another origin waits for room is closed for it', async () => {
  // keepAliveTimeout 0: origin A sends no Keep-Alive hint and never closes idle connections, and the
  // agent's idleTimeout is long: only making room can end B's wait (else QUEUE_TIMEOUT, 10 s).
  const held = await holdingServer(0);
  const a = held.server;
  const b = await startHttpServer();
  const agent = new Agent({ maxConnections: 2, idleTimeout: 60_000, queueTimeout: 10_000 });
  try {
    const client = new Client({ agent });
    const busy = [client.request(`${a.url}/hold`), client.request(`${a.url}/hold`)];
    await waitFor(() => a.stats.requestsTotal === 2, 'both requests at origin A');
    const waiting = client.request(`${b.url}/`);
    assert.equal(await isSettled(waiting), false);
    held.release();
    for (const r of await Promise.all(busy)) await r.body.text();
    const res = await waiting;
    assert.equal(await res.body.text(), 'ok\n');
    assert.ok(agent.stats().open <= 2);
  } finally {
    await agent.destroy();
    await a.close();
    await b.close();
  }
});
