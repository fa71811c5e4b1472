/**
 * Each limit fails with its own error code, and every error names its origin: connectTimeout,
 * headersTimeout, bodyTimeout (queueTimeout and maxQueued are in pool-queue.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { Agent, Client } from '../src/index.js';
import { startFaultServer } from './helpers/fault-server.js';
import { rejectsWith, waitFor } from './helpers/pool-util.js';

/**
 * A listening socket that completes no more TCP handshakes: a child process listens with backlog 1
 * and then blocks its event loop, so it never accepts; we fill its accept queue with raw connections
 * until one of them hangs. After that the kernel drops every SYN to that port: a connect that hangs.
 */
async function unresponsivePort(): Promise<{ port: number; close(): void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer();
       s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
         process.stdout.write(s.address().port + '\\n');
         setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 20);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  });
  await new Promise((r) => setTimeout(r, 100)); // let the child block
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 64; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    const connected = await Promise.race([
      new Promise<boolean>((r) => s.once('connect', () => r(true))),
      // Setup only: a loopback connect completes at once unless the queue is full; 1 s is plenty.
      new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
    ]);
    if (!connected) break; // the queue is full: SYNs are dropped from here on
  }
  return {
    port,
    close() {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}

test('connectTimeout: a connect that never completes fails with WARMPOOL_CONNECT_TIMEOUT naming the origin', async () => {
  const blackhole = await unresponsivePort();
  const agent = new Agent({ connectTimeout: 200 });
  try {
    const origin = `http://127.0.0.1:${blackhole.port}`;
    const err = await rejectsWith(
      new Client({ agent }).request(`${origin}/`),
      'WARMPOOL_CONNECT_TIMEOUT',
      origin,
    );
    assert.match(err.message, /timed out/);
    const s = agent.originStats(origin);
    assert.equal(s?.open ?? 0, 0);
    assert.equal(s?.connecting ?? 0, 0);
    assert.equal(agent.stats().open, 0, 'the failed dial gave its place back');
  } finally {
    await agent.destroy();
    blackhole.close();
  }
});

test('a refused connect fails with WARMPOOL_CONNECT_ERROR (not a timeout), with the socket error as cause', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r)); // nothing listens there now
  const agent = new Agent();
  try {
    const origin = `http://127.0.0.1:${port}`;
    const err = await rejectsWith(
      new Client({ agent }).request(`${origin}/`),
      'WARMPOOL_CONNECT_ERROR',
      origin,
    );
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  } finally {
    await agent.destroy();
  }
});

test('headersTimeout: a server that never answers fails the request with WARMPOOL_HEADERS_TIMEOUT and its connection is closed', async () => {
  const server = await startFaultServer({ handler: () => ({ type: 'stall' }) });
  const agent = new Agent();
  try {
    const client = new Client({ agent, headersTimeout: 150 });
    await rejectsWith(client.request(`${server.url}/`), 'WARMPOOL_HEADERS_TIMEOUT', server.url);
    await waitFor(() => server.stats.openConnections === 0, 'server sees the connection closed');
    assert.equal(agent.originStats(server.url)!.open, 0);
    // The per-request option overrides the client's.
    await rejectsWith(
      new Client({ agent }).request(`${server.url}/`, { headersTimeout: 100 }),
      'WARMPOOL_HEADERS_TIMEOUT',
      server.url,
    );
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('bodyTimeout: a body that stalls fails its reader with WARMPOOL_BODY_TIMEOUT and its connection is closed', async () => {
  const server = await startFaultServer({
    handler: () => ({ type: 'stall-body', body: 'x'.repeat(4096), bytesBeforeStall: 1000 }),
  });
  const agent = new Agent();
  try {
    const res = await new Client({ agent, bodyTimeout: 150 }).request(`${server.url}/`);
    assert.equal(res.status, 200);
    await rejectsWith(res.body.text(), 'WARMPOOL_BODY_TIMEOUT', server.url);
    await waitFor(() => server.stats.openConnections === 0, 'server sees the connection closed');
    assert.equal(agent.originStats(server.url)!.closed.error, 1);

    // Read as a stream, the same failure arrives as the stream's error.
    const res2 = await new Client({ agent }).request(`${server.url}/`, { bodyTimeout: 100 });
    const chunks: Buffer[] = [];
    const iterate = (async () => {
      for await (const c of res2.body) chunks.push(c as Buffer);
    })();
    await rejectsWith(iterate, 'WARMPOOL_BODY_TIMEOUT', server.url);
    assert.equal(Buffer.concat(chunks).length, 1000);
  } finally {
    await agent.destroy();
    await server.close();
  }
});
