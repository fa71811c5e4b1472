/**
 * A connection's life: a server restart, idle expiry (idleTimeout and the server's Keep-Alive hint),
 * an idle pool that lets the process exit, leases held and released by response bodies (read, unread,
 * dump(), destroy(), garbage-collected), and agent.close() / agent.destroy().
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { test } from 'node:test';
import { Agent, Client } from '../src/index.js';
import { LIBRARY, runChild } from './helpers/child.js';
import { startFaultServer } from './helpers/fault-server.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { deferred, isSettled, rejectsWith, waitFor } from './helpers/pool-util.js';
import { startRawServer } from './helpers/raw-server.js';

const KIB = 1024;

test('after the server restarts, requests succeed on new connections without any reset by the caller', async () => {
  const server = await startFaultServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const before = await Promise.all(Array.from({ length: 4 }, () => client.request(`${server.url}/`)));
    for (const r of before) await r.body.text();
    const oldIds = new Set(before.map((r) => r.connection.id));
    assert.equal(oldIds.size, 4);

    await server.restart();

    const after = await Promise.all(Array.from({ length: 4 }, () => client.request(`${server.url}/`)));
    for (const r of after) assert.equal(await r.body.text(), 'ok\n');
    for (let i = 0; i < 3; i++) {
      const r = await client.request(`${server.url}/`);
      assert.equal(await r.body.text(), 'ok\n');
    }
    for (const r of after) {
      assert.equal(oldIds.has(r.connection.id), false, 'served on a new connection');
      assert.ok(!r.connection.reused || r.retried);
    }
    assert.equal(server.stats.connectionsAccepted, 8);
    const s = agent.originStats(server.url)!;
    assert.equal(s.open, 4);
    assert.equal(s.closed['server-close'] + s.closed.stale, 4, 'every pre-restart connection was dropped');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('a node:http server closed and listening again on the same port: later requests succeed on new connections', async () => {
  const server = await startHttpServer({ keepAliveTimeout: 60_000 });
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const first = await client.request(`${server.url}/`);
    await first.body.text();
    // Close the listener and every socket, then listen on the same port again.
    await new Promise<void>((resolve) => {
      server.server.close(() => resolve());
      server.server.closeAllConnections();
    });
    await new Promise<void>((resolve) => server.server.listen(server.port, '127.0.0.1', resolve));
    const second = await client.request(`${server.url}/`);
    assert.equal(await second.body.text(), 'ok\n');
    assert.notEqual(second.connection.id, first.connection.id);
    assert.equal(server.stats.connectionsTotal, 2);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('idleTimeout closes an idle connection: the server sees the client close it, counted as idle-timeout', async () => {
  const server = await startFaultServer(); // never closes idle connections itself
  const agent = new Agent({ idleTimeout: 200 });
  try {
    const res = await new Client({ agent }).request(`${server.url}/`);
    await res.body.text();
    await waitFor(() => server.events('close-by-client').length === 1, 'client closes the idle connection');
    const s = agent.originStats(server.url);
    assert.equal(s?.closed['idle-timeout'], 1);
    assert.equal(s?.open, 0);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('a Keep-Alive: timeout=1 hint closes the idle connection before the server does, with a long idleTimeout', async () => {
  // The server says 1 s but would keep the connection a minute; the agent's own limit is a minute:
  // only the hint can make the client close it.
  const server = await startFaultServer({ keepAliveTimeoutMs: 60_000, advertiseKeepAlive: 1 });
  const agent = new Agent({ idleTimeout: 60_000 });
  try {
    const res = await new Client({ agent }).request(`${server.url}/`);
    assert.equal(res.headers['keep-alive'], 'timeout=1');
    await res.body.text();
    await waitFor(
      () => server.events('close-by-client', 'close-by-server').length === 1,
      'the idle connection closes',
    );
    assert.equal(server.events('close-by-client').length, 1, 'the client closed it, not the server');
    assert.equal(agent.originStats(server.url)?.closed['idle-timeout'], 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('an idle pool does not keep the process alive: a child that leaves idle connections exits by itself', async () => {
  const server = await startHttpServer({ keepAliveTimeout: 60_000 }); // the server keeps them open
  try {
    const script = `
      import { Agent, Client, request, setGlobalAgent } from ${JSON.stringify(LIBRARY)};
      // Idle limits far beyond the 10 s the parent waits: only unref'd idle sockets let it exit.
      setGlobalAgent(new Agent({ idleTimeout: 60_000 }));
      const agent = new Agent({ idleTimeout: 60_000 });
      const a = await new Client({ agent }).request(${JSON.stringify(`${server.url}/a`)});
      await a.body.text();
      const b = await request(${JSON.stringify(`${server.url}/b`)});
      await b.body.text();
      console.log('done', a.status, b.status, agent.stats().open);
    `;
    const out = await runChild(script);
    assert.equal(out.killed, false, 'the child did not exit by itself within 10 s');
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.trim(), 'done 200 200 1');
    assert.equal(server.stats.connectionsTotal, 2);
  } finally {
    await server.close();
  }
});

/** /big: 1 MiB, /mid: 256 KiB, /huge: 1 MiB + 1 byte; anything else "ok\n". */
async function bodyServer() {
  const sizes: Record<string, number> = { '/big': 1024 * KIB, '/mid': 256 * KIB, '/huge': 1024 * KIB + 1 };
  return startHttpServer({
    keepAliveTimeout: 60_000,
    handler: (req: http.IncomingMessage, res: http.ServerResponse) => {
      const n = sizes[req.url ?? ''];
      res.end(n === undefined ? 'ok\n' : Buffer.alloc(n, 120));
    },
  });
}

test('a large body (1 MiB) left unread holds its connection until body.destroy(), which closes it', async () => {
  const server = await bodyServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const big = await client.request(`${server.url}/big`);
    const other = await client.request(`${server.url}/small`);
    await other.body.text();
    assert.equal(other.connection.reused, false, 'the unread body still holds the first connection');
    assert.notEqual(other.connection.id, big.connection.id);
    let s = agent.originStats(server.url)!;
    assert.deepEqual([s.open, s.busy, s.idle], [2, 1, 1]);

    big.body.destroy();
    s = agent.originStats(server.url)!;
    assert.equal(s.closed.aborted, 1);
    assert.deepEqual([s.open, s.busy], [1, 0]);
    await waitFor(() => server.stats.openConnections === 1, 'server sees the held connection closed');
    const next = await client.request(`${server.url}/small`);
    await next.body.text();
    assert.equal(next.connection.id, other.connection.id);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('body.dump() of a held body under the dump limit drains it and the connection is reused', async () => {
  const server = await bodyServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const mid = await client.request(`${server.url}/mid`); // 256 KiB: more than the body buffers
    const other = await client.request(`${server.url}/small`);
    await other.body.text();
    assert.notEqual(other.connection.id, mid.connection.id, 'the unread body holds its connection');
    await mid.body.dump();
    const next = await client.request(`${server.url}/small`);
    await next.body.text();
    assert.equal(
      next.connection.id,
      mid.connection.id,
      'the drained connection is reused (most recent first)',
    );
    assert.equal(next.connection.reused, true);
    assert.equal(server.stats.connectionsTotal, 2);
    assert.equal(agent.originStats(server.url)!.closed.aborted, 0);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('body.dump() of a body past the dump limit (1 MiB) resolves and closes the connection instead of draining it', async () => {
  const server = await bodyServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const huge = await client.request(`${server.url}/huge`);
    await huge.body.dump();
    assert.equal(agent.originStats(server.url)!.closed.aborted, 1);
    await waitFor(() => server.stats.openConnections === 0, 'server sees the connection closed');
    const next = await client.request(`${server.url}/small`);
    assert.equal(await next.body.text(), 'ok\n');
    assert.equal(next.connection.reused, false);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('body.destroy() called synchronously from a data handler on the last chunk closes the connection and nothing throws', async () => {
  const head = 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n';
  const server = await startRawServer([
    { kind: 'await-request' },
    { kind: 'write', data: `${head}0123456789`, splitAt: [head.length + 5], delayMs: 30 },
    { kind: 'keep-open' },
  ]);
  const agent = new Agent();
  try {
    const res = await new Client({ agent }).request(`${server.url}/`);
    const closed = new Promise((r) => res.body.once('close', r));
    let bytes = 0;
    res.body.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes === 10) res.body.destroy(); // the last chunk: the parser completes the response next
    });
    await closed;
    await waitFor(() => server.connections[0]?.closed === 'by-client', 'server sees the connection closed');
    assert.equal(agent.originStats(server.url)!.open, 0);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('a held body that is garbage-collected unread closes its connection and emits a WARMPOOL_BODY_ABANDONED warning', async () => {
  const server = await bodyServer();
  try {
    const script = `
      import { Agent, Client } from ${JSON.stringify(LIBRARY)};
      let warned = false;
      process.on('warning', (w) => { if (w.code === 'WARMPOOL_BODY_ABANDONED') warned = true; });
      const agent = new Agent();
      await (async () => {
        const res = await new Client({ agent }).request(${JSON.stringify(`${server.url}/big`)});
        if (res.status !== 200) process.exit(3);
      })(); // the response is dropped here, its body unread
      for (let i = 0; i < 100 && !warned; i++) {
        await new Promise((r) => setTimeout(r, 20));
        globalThis.gc();
      }
      const s = agent.stats().origins[0];
      console.log(JSON.stringify({ warned, aborted: s.closed.aborted, open: s.open }));
      // Stay alive until the parent has checked its server (it closes our stdin).
      process.stdin.resume();
      process.stdin.on('end', () => process.exit(0));
    `;
    let closedWhileChildAlive: Promise<void> | undefined;
    const out = await runChild(script, ['--expose-gc'], (_line, child) => {
      closedWhileChildAlive = waitFor(
        () => server.stats.openConnections === 0,
        'server sees the close',
        5000,
      ).finally(() => child.stdin!.end());
    });
    assert.equal(out.killed, false, out.stderr);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout.trim()), { warned: true, aborted: 1, open: 0 });
    assert.match(out.stderr, /WARMPOOL_BODY_ABANDONED/);
    await closedWhileChildAlive;
    assert.equal(server.stats.connectionsTotal, 1);
  } finally {
    await server.close();
  }
});

test('bodies abandoned over HTTP/1.1 and over HTTP/2 in one process: both are closed, and the warning comes once', async () => {
  const h1 = await bodyServer();
  const h2 = await startH2Server({
    handler: (stream) => {
      stream.respond({ ':status': 200 });
      stream.write(Buffer.alloc(4 * 1024 * 1024)); // far past the client's windows: the stream pauses
    },
  });
  try {
    const script = `
      import { Agent, Client } from ${JSON.stringify(LIBRARY)};
      let warnings = 0;
      process.on('warning', (w) => { if (w.code === 'WARMPOOL_BODY_ABANDONED') warnings++; });
      const agent = new Agent({ tls: { ca: ${JSON.stringify(TEST_CERT.toString())} } });
      await (async () => {
        const client = new Client({ agent });
        const a = await client.request(${JSON.stringify(`${h1.url}/big`)});
        const b = await client.request(${JSON.stringify(`${h2.url}/`)});
        if (a.status !== 200 || b.httpVersion !== '2') process.exit(3);
      })(); // both responses are dropped here, their bodies unread
      const done = () => agent.originStats(${JSON.stringify(h1.url)}).closed.aborted === 1 &&
        agent.originStats(${JSON.stringify(h2.url)}).activeStreams === 0;
      for (let i = 0; i < 100 && !done(); i++) {
        await new Promise((r) => setTimeout(r, 20));
        globalThis.gc();
      }
      await new Promise((r) => setTimeout(r, 50)); // warnings are emitted on a later tick
      console.log(JSON.stringify({ done: done(), warnings }));
      process.exit(0);
    `;
    const out = await runChild(script, ['--expose-gc']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout.trim()), { done: true, warnings: 1 });
  } finally {
    await h1.close();
    await h2.close();
  }
});

test('agent.close(): in-flight and queued requests finish, new ones reject with WARMPOOL_AGENT_CLOSED, idle connections close at once', async () => {
  let gate = deferred();
  const server = await startHttpServer({
    keepAliveTimeout: 60_000,
    handler: async (req, res) => {
      if (req.url === '/hold') await gate.promise;
      res.end('ok\n');
    },
  });
  const agent = new Agent({ maxConnectionsPerOrigin: 2 });
  try {
    const client = new Client({ agent });
    const warm = await Promise.all([client.request(`${server.url}/`), client.request(`${server.url}/`)]);
    for (const r of warm) await r.body.text();
    const inflight = client.request(`${server.url}/hold`);
    const second = client.request(`${server.url}/hold`);
    const queued = client.request(`${server.url}/queued`);
    await waitFor(() => server.stats.requestsTotal === 4, 'both held requests at the server');
    assert.equal(agent.originStats(server.url)!.queued, 1);

    const closed = agent.close();
    await rejectsWith(client.request(`${server.url}/new`), 'WARMPOOL_AGENT_CLOSED', server.url);
    assert.equal(await isSettled(closed), false);

    gate.resolve();
    gate = deferred();
    for (const p of [inflight, second, queued]) assert.equal(await (await p).body.text(), 'ok\n');
    await closed;
    assert.equal(agent.stats().open, 0);
    await waitFor(() => server.stats.openConnections === 0, 'server sees every connection closed');
    assert.equal(agent.originStats(server.url)!.closed['agent-close'], 2);
  } finally {
    gate.resolve();
    await agent.destroy();
    await server.close();
  }
});

test('agent.close() closes idle connections at once while a request is still in flight', async () => {
  const gate = deferred();
  const server = await startHttpServer({
    keepAliveTimeout: 60_000,
    handler: async (req, res) => {
      if (req.url === '/hold') await gate.promise;
      res.end('ok\n');
    },
  });
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    const warm = await Promise.all([client.request(`${server.url}/`), client.request(`${server.url}/`)]);
    for (const r of warm) await r.body.text();
    const inflight = client.request(`${server.url}/hold`);
    await waitFor(() => server.stats.requestsTotal === 3, 'held request at the server');
    const closed = agent.close();
    await waitFor(() => server.stats.openConnections === 1, 'server sees the idle connection closed');
    assert.equal(await isSettled(inflight), false);
    gate.resolve();
    assert.equal(await (await inflight).body.text(), 'ok\n');
    await closed;
    await waitFor(() => server.stats.openConnections === 0, 'server sees the last connection closed');
  } finally {
    gate.resolve();
    await agent.destroy();
    await server.close();
  }
});

test('agent.destroy() fails waiting, in-flight and mid-body requests with WARMPOOL_AGENT_CLOSED and closes every socket', async () => {
  const server = await startFaultServer({
    handler: (req) =>
      req.path === '/stall'
        ? { type: 'stall' }
        : req.path.startsWith('/body')
          ? { type: 'stall-body', body: 'x'.repeat(1000), bytesBeforeStall: 10 }
          : undefined,
  });
  const agent = new Agent({ maxConnectionsPerOrigin: 3 });
  try {
    const client = new Client({ agent });
    const waitingHead = client.request(`${server.url}/stall`);
    const read = await client.request(`${server.url}/body-read`);
    const unread = await client.request(`${server.url}/body-unread`);
    const queued = client.request(`${server.url}/queued`);
    await waitFor(() => server.stats.requestsTotal === 3, 'three requests at the server');
    const text = read.body.text();
    assert.equal(agent.originStats(server.url)!.queued, 1);

    await agent.destroy();
    await rejectsWith(waitingHead, 'WARMPOOL_AGENT_CLOSED');
    await rejectsWith(queued, 'WARMPOOL_AGENT_CLOSED');
    await rejectsWith(text, 'WARMPOOL_AGENT_CLOSED');
    // Nobody listened to the unread body: no uncaught 'error'; reading it now gives the failure.
    await rejectsWith(unread.body.text(), 'WARMPOOL_AGENT_CLOSED');
    await rejectsWith(client.request(`${server.url}/new`), 'WARMPOOL_AGENT_CLOSED');
    await waitFor(() => server.stats.openConnections === 0, 'server sees every connection closed');
    assert.equal(agent.stats().open, 0);
  } finally {
    await agent.destroy();
    await server.close();
  }
});
