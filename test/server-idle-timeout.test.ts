/**
 * The server's idle timeout, learned from the idle ages at which it closes connections (DESIGN.md
 * invariant 10): the rules on numbers, then the pool against a server that closes idle connections
 * after 300 ms without announcing it.
 */
import assert from 'node:assert/strict';
import type http2 from 'node:http2';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { Agent, Client, type WarmpoolError } from '../src/index.js';
import { GROUP_MS, MIN_IDLE_MS, ServerIdleTimeout } from '../src/pool/server-idle-timeout.js';
import { type FaultServer, startFaultServer } from './helpers/fault-server.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';
import { ManualClock } from './helpers/manual-clock.js';
import { sleep, waitFor } from './helpers/pool-util.js';

test('one close makes requests that cannot be retried careful; a second close confirms the timeout', () => {
  const s = new ServerIdleTimeout();
  assert.equal(s.lowestMs, Number.POSITIVE_INFINITY);
  assert.equal(s.learnedMs, undefined);
  s.observeClose(1003, 10_000);
  assert.equal(s.lowestMs, 1003);
  assert.equal(s.learnedMs, undefined, 'one close is not confirmed');
  s.observeClose(1001, 20_000);
  assert.equal(s.lowestMs, 1001);
  assert.equal(s.learnedMs, 1003);
  s.observeClose(1000.4, 30_000);
  assert.equal(s.learnedMs, 1001);
});

test('closes seen together are one observation at their longest idle age (a restart or a thaw closes many idle ages at once)', () => {
  const s = new ServerIdleTimeout();
  s.observeClose(150, 5_000);
  s.observeClose(900, 5_000 + GROUP_MS / 2);
  s.observeClose(400, 5_000 + GROUP_MS);
  assert.equal(s.lowestMs, 900);
  assert.equal(s.learnedMs, undefined, 'a single group confirms nothing');
});

test('closes right after a response (idle under the minimum) are not idle timeouts', () => {
  const s = new ServerIdleTimeout();
  s.observeClose(MIN_IDLE_MS - 1, 1_000);
  s.observeClose(2, 2_000);
  assert.equal(s.lowestMs, Number.POSITIVE_INFINITY);
});

test('a connection that served a request after idling u ms drops every observation at or below u', () => {
  const s = new ServerIdleTimeout();
  s.observeClose(300, 1_000); // a restart that happened to close a connection idle 300 ms
  s.observeClose(2000, 10_000);
  s.observeClose(2010, 20_000);
  assert.equal(s.lowestMs, 300);
  assert.equal(s.learnedMs, 2000);
  s.observeAlive(1200);
  assert.equal(s.lowestMs, 2000);
  assert.equal(s.learnedMs, 2010);
});

test('a server whose timeout went down is learned anew: the newest observations win', () => {
  const s = new ServerIdleTimeout();
  for (let i = 0; i < 8; i++) s.observeClose(5000 + i, i * 10_000);
  assert.equal(s.learnedMs, 5001);
  s.observeClose(1000, 100_000);
  s.observeClose(1002, 110_000);
  assert.equal(s.lowestMs, 1000);
  assert.equal(s.learnedMs, 1002);
});

/** A server that closes connections idle 300 ms, silently (no Keep-Alive hint). */
function quietServer(): Promise<FaultServer> {
  return startFaultServer({ keepAliveTimeoutMs: 300 });
}

/** One request, then an idle pause until the server has closed that connection (one observation). */
async function idleUntilServerCloses(client: Client, agent: Agent, url: string): Promise<void> {
  const closedBefore = agent.originStats(url)?.closed['server-close'] ?? 0;
  await (await client.request(`${url}/`)).body.dump();
  await waitFor(() => agent.originStats(url)!.closed['server-close'] > closedBefore, 'the idle close');
  await sleep(GROUP_MS + 10); // the next close is another observation
}

test('the pool learns a silent server idle timeout from two idle closes and shows it in stats()', async () => {
  const server = await quietServer();
  const agent = new Agent();
  try {
    const client = new Client({ agent });
    await idleUntilServerCloses(client, agent, server.url);
    assert.equal(agent.originStats(server.url)!.serverIdleTimeoutMs, undefined);
    await idleUntilServerCloses(client, agent, server.url);
    const learned = agent.originStats(server.url)!.serverIdleTimeoutMs;
    assert.ok(learned !== undefined && learned >= 300 && learned < 1000, `learned ${learned}`);
    assert.equal(agent.stats().origins[0]!.serverIdleTimeoutMs, learned);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('once learned, a connection idle within the margin of the timeout is not reused; one idle well below it is', async () => {
  const server = await quietServer();
  const clock = new ManualClock();
  const agent = new Agent({ clock });
  try {
    const client = new Client({ agent });
    await idleUntilServerCloses(client, agent, server.url);
    await idleUntilServerCloses(client, agent, server.url);
    const learned = agent.originStats(server.url)!.serverIdleTimeoutMs!;
    // Idle limit: learned less max(100, learned / 4) ms.
    const limit = learned - Math.max(100, learned / 4);

    await (await client.request(`${server.url}/`)).body.dump();
    clock.advanceMonotonic(limit / 2);
    const young = await client.request(`${server.url}/`);
    await young.body.dump();
    assert.equal(young.connection.reused, true, 'idle well below the learned timeout: reused');

    clock.advanceMonotonic(limit + 1);
    const old = await client.request(`${server.url}/`);
    await old.body.dump();
    assert.equal(
      old.connection.reused,
      false,
      'idle within the margin of the learned timeout: a new connection',
    );
    assert.ok(agent.originStats(server.url)!.closed['idle-timeout'] >= 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('after one idle close, a POST is not given a connection idle within the margin of it, while a GET still is', async () => {
  const server = await quietServer();
  const clock = new ManualClock();
  const agent = new Agent({ clock });
  try {
    const client = new Client({ agent });
    await idleUntilServerCloses(client, agent, server.url);
    assert.equal(agent.originStats(server.url)!.serverIdleTimeoutMs, undefined, 'not confirmed yet');

    await (await client.request(`${server.url}/`)).body.dump();
    clock.advanceMonotonic(250); // 300 ms less the 100 ms margin is 200
    const get = await client.request(`${server.url}/`);
    await get.body.dump();
    assert.equal(get.connection.reused, true, 'a GET can be retried: it may take the connection');

    clock.advanceMonotonic(250);
    const post = await client.request(`${server.url}/`, { method: 'POST', body: 'x' });
    await post.body.dump();
    assert.equal(post.connection.reused, false, 'the POST went on a new connection');
    assert.equal(post.status, 200);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('HTTP/2: after the server closed an idle session, a POST is not given a session idle within the margin of that; a GET is', async () => {
  const server = await startH2Server();
  // The server ends a session idle for 300 ms (GOAWAY), as an idle timeout does.
  server.server.on('session', (session: http2.ServerHttp2Session) =>
    session.setTimeout(300, () => session.close()),
  );
  const clock = new ManualClock();
  const agent = new Agent({ clock, tls: { ca: TEST_CERT } });
  try {
    const client = new Client({ agent });
    await idleUntilServerCloses(client, agent, server.url);

    const first = await client.request(`${server.url}/`);
    await first.body.dump();
    assert.equal(first.httpVersion, '2');
    clock.advanceMonotonic(250);
    const get = await client.request(`${server.url}/`);
    await get.body.dump();
    assert.equal(get.connection.reused, true, 'a GET can be replayed: it may take the session');

    clock.advanceMonotonic(250);
    const post = await client.request(`${server.url}/`, { method: 'POST', body: 'x' });
    await post.body.dump();
    assert.equal(post.connection.reused, false, 'the POST went on a new session');
    assert.equal(server.stats.sessionsTotal, 3);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

/**
 * A server whose idle timer decides before it reads: a connection idle 300 ms is closed, and a request
 * that arrives in the last 60 ms before that is dropped unanswered (coarse timers do this: the close
 * was decided while the request was in flight). Answers 200 "ok\n" otherwise.
 */
async function closeDecidedEarlyServer(): Promise<{
  url: string;
  dropped: () => number;
  close(): Promise<void>;
}> {
  const TIMEOUT = 300;
  const DEAD_ZONE = 60;
  let dropped = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let last = performance.now();
    let pending = '';
    const timer = setInterval(() => {
      if (performance.now() - last >= TIMEOUT) socket.destroy();
    }, 5);
    socket.on('close', () => clearInterval(timer));
    socket.on('data', (data) => {
      if (performance.now() - last >= TIMEOUT - DEAD_ZONE) {
        dropped++;
        socket.destroy();
        return;
      }
      pending += data.toString('latin1');
      // One request at a time, each with a small body: answer once head and body are in.
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: *(\d+)/i.exec(pending.slice(0, end))?.[1] ?? 0);
      if (pending.length < end + 4 + length) return;
      pending = '';
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
      last = performance.now();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    dropped: () => dropped,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('POSTs 250-290 ms apart to a server that drops requests arriving in the last 60 ms of its 300 ms idle timeout: none is lost once it closed one idle connection', async () => {
  const server = await closeDecidedEarlyServer();
  const agent = new Agent();
  const failures: string[] = [];
  try {
    const client = new Client({ agent });
    for (let i = 0; i < 12; i++) {
      try {
        const res = await client.request(`${server.url}/`, { method: 'POST', body: `post ${i}` });
        assert.equal(await res.body.text(), 'ok\n');
      } catch (err) {
        failures.push(`${i}: ${(err as WarmpoolError).code}`);
      }
      await sleep(i === 0 ? 400 : 250 + ((i * 7) % 41)); // the first pause lets the server close (the lesson)
    }
    assert.deepEqual(failures, []);
    assert.equal(server.dropped(), 0, 'no POST reached a connection inside the server’s dead zone');
  } finally {
    await agent.destroy();
    await server.close();
  }
});
