/**
 * What a caller can make the pool hold is released as soon as the caller gives up (DESIGN.md
 * invariant 9): a waiter aborted or timed out in the queue is let go at once, not when the queue's
 * head reaches it; one AbortSignal shared by many requests costs one listener, not one per request.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import type http from 'node:http';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Agent, Client, type WarmpoolError } from '../src/index.js';
import { type TestHttpServer, startHttpServer } from './helpers/http-server.js';
import { rejectsWith, sleep, waitFor } from './helpers/pool-util.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A server that holds /hold until release(), and answers everything else at once. */
async function holdingServer(): Promise<{ server: TestHttpServer; release(): void }> {
  const held: http.ServerResponse[] = [];
  const server = await startHttpServer((req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.end('ok\n');
  });
  return { server, release: () => held.splice(0).forEach((r) => r.end('ok\n')) };
}

/** One busy connection (a held request) and a Client whose further requests must queue. */
async function busyPool(
  queueTimeout = 0,
): Promise<{ server: TestHttpServer; agent: Agent; client: Client; finish(): Promise<void> }> {
  const { server, release } = await holdingServer();
  const agent = new Agent({ maxConnectionsPerOrigin: 1, maxQueued: 1_000_000, queueTimeout });
  const client = new Client({ agent });
  const busy = client.request(`${server.url}/hold`, { headersTimeout: 0 });
  await waitFor(() => server.stats.requestsTotal === 1, 'the held request at the server');
  return {
    server,
    agent,
    client,
    async finish() {
      release();
      await (await busy).body.dump();
      await agent.destroy();
      await server.close();
    },
  };
}

/** Queues a PUT whose 1 MiB body only the request holds; returns a weak reference to that body. */
function queueBigPut(client: Client, url: string, signal?: AbortSignal): WeakRef<Uint8Array> {
  const body = new Uint8Array(1024 * 1024);
  client.request(`${url}/put`, { method: 'PUT', body, signal }).catch(() => {});
  return new WeakRef(body);
}

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
    await sleep(0);
    gc();
  }
  return ref.deref() === undefined;
}

test('a request aborted while queued is let go at once: its body can be collected while the connection ahead is still busy', async () => {
  const pool = await busyPool();
  try {
    const ac = new AbortController();
    const body = queueBigPut(pool.client, pool.server.url, ac.signal);
    assert.equal(pool.agent.originStats(pool.server.url)!.queued, 1);
    ac.abort();
    assert.equal(pool.agent.originStats(pool.server.url)!.queued, 0);
    assert.ok(await collected(body), 'the aborted request (and its body) is still held by the pool');
  } finally {
    await pool.finish();
  }
});

test('a request that timed out in the queue is let go at once: its body can be collected while the connection ahead is still busy', async () => {
  const pool = await busyPool(50);
  try {
    const body = queueBigPut(pool.client, pool.server.url);
    await waitFor(() => pool.agent.originStats(pool.server.url)!.queued === 0, 'the queue timeout');
    assert.ok(await collected(body), 'the timed-out request (and its body) is still held by the pool');
  } finally {
    await pool.finish();
  }
});

test('2 000 requests queued and aborted one by one behind a busy connection leave less than 16 MiB of their 125 MiB of bodies on the heap', async () => {
  const pool = await busyPool();
  try {
    gc();
    const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 2000; i++) {
      const ac = new AbortController();
      pool.client
        .request(`${pool.server.url}/put`, {
          method: 'PUT',
          body: new Uint8Array(64 * 1024),
          signal: ac.signal,
        })
        .catch(() => {});
      ac.abort();
    }
    // An ArrayBuffer's memory is given back by a sweeper after the collection that found it dead: on
    // a loaded machine that can take a few turns. What is still reachable stays, however long we wait.
    let grown = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 20 && grown >= 16 * 1024 * 1024; i++) {
      await sleep(i === 0 ? 0 : 25);
      gc();
      grown = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - before;
    }
    assert.equal(pool.agent.originStats(pool.server.url)!.queued, 0);
    assert.ok(grown < 16 * 1024 * 1024, `held ${(grown / 2 ** 20).toFixed(1)} MiB after the aborts`);
  } finally {
    await pool.finish();
  }
});

test('10 000 queued requests on one AbortSignal add one abort listener to it; aborting rejects every one with WARMPOOL_ABORTED, in order, and leaves no listener', async () => {
  const pool = await busyPool();
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  process.on('warning', onWarning);
  try {
    const ac = new AbortController();
    const order: number[] = [];
    const requests = Array.from({ length: 10_000 }, (_, i) =>
      pool.client.request(`${pool.server.url}/x`, { signal: ac.signal }).catch((err: Error) => {
        order.push(i);
        throw err;
      }),
    );
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    assert.equal(pool.agent.originStats(pool.server.url)!.queued, 10_000);
    ac.abort();
    for (const r of requests) await rejectsWith(r, 'WARMPOOL_ABORTED', pool.server.url);
    assert.deepEqual(
      order,
      Array.from({ length: 10_000 }, (_, i) => i),
    );
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    assert.equal(pool.agent.originStats(pool.server.url)!.queued, 0);
    await sleep(10); // process warnings are emitted on a later tick
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning'),
      [],
    );
  } finally {
    process.off('warning', onWarning);
    await pool.finish();
  }
});

test('a signal shared by requests that all completed keeps no listener, and aborting it later changes nothing', async () => {
  const { server } = await holdingServer();
  const agent = new Agent({ maxConnectionsPerOrigin: 2 });
  try {
    const client = new Client({ agent });
    const ac = new AbortController();
    const bodies = await Promise.all(
      Array.from({ length: 20 }, async () =>
        (await client.request(`${server.url}/x`, { signal: ac.signal })).body.text(),
      ),
    );
    assert.deepEqual(bodies, Array(20).fill('ok\n'));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    ac.abort();
    assert.equal(agent.originStats(server.url)!.open, 2, 'no connection was closed by the late abort');
    const again = await client.request(`${server.url}/x`);
    assert.equal(again.connection.reused, true);
    await again.body.dump();
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('two queued requests sharing a signal both fail when it aborts; the request queued between them is served when the connection frees', async () => {
  const { server, release } = await holdingServer();
  const agent = new Agent({ maxConnectionsPerOrigin: 1 });
  try {
    const client = new Client({ agent });
    const busy = client.request(`${server.url}/hold`);
    await waitFor(() => server.stats.requestsTotal === 1, 'the held request at the server');
    const ac = new AbortController();
    const a = client.request(`${server.url}/a`, { signal: ac.signal });
    const c = client.request(`${server.url}/c`);
    const b = client.request(`${server.url}/b`, { signal: ac.signal });
    assert.equal(agent.originStats(server.url)!.queued, 3);
    ac.abort();
    await rejectsWith(a, 'WARMPOOL_ABORTED', server.url);
    await rejectsWith(b, 'WARMPOOL_ABORTED', server.url);
    assert.equal(agent.originStats(server.url)!.queued, 1);
    release();
    await (await busy).body.dump();
    const res = await c;
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(res.connection.reused, true);
    assert.equal(server.stats.requestsTotal, 2, 'the aborted requests were never sent');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('a request refused for a bad option (a negative headersTimeout) holds nothing of its body afterwards', async () => {
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    let body: Uint8Array | undefined = new Uint8Array(1024 * 1024);
    const ref = new WeakRef(body);
    await assert.rejects(
      client.request('http://127.0.0.1:1/put', { method: 'PUT', body, headersTimeout: -1 }),
      (err: WarmpoolError) => err.code === 'WARMPOOL_INVALID_ARGUMENT',
    );
    body = undefined;
    // No other request comes after it: nothing would overwrite what the refused one left behind.
    assert.ok(await collected(ref), 'the refused request body is still held');
  } finally {
    await agent.destroy();
  }
});
