/**
 * `socketPath`: connections to a unix domain socket instead of TCP, for HTTP/1.1 and h2c (prior
 * knowledge), against node:http / node:http2 servers and a real nginx listening on unix sockets. The
 * socket path is part of the pool key: two paths never share a connection, nor a path and TCP to the
 * same origin.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type tls from 'node:tls';
import { Agent, Client, type WarmpoolError, fetch } from '../src/index.js';
import { nginxOrSkip, startNginx } from './helpers/nginx.js';

/** A node:http server on `where` (a path, or 0 for a TCP port on 127.0.0.1) answering `label`. */
async function labelled(label: string, where: string | 0): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.end(label);
  });
  await new Promise<void>((r) => {
    if (where === 0) server.listen(0, '127.0.0.1', r);
    else server.listen(where, r);
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0 };
}

function close(server: http.Server | http2.Http2Server): Promise<void> {
  (server as http.Server).closeAllConnections?.();
  return new Promise((r) => server.close(() => r()));
}

test('socketPath (Agent option): HTTP/1.1 over a unix socket, the connection reused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warmpool-unix-'));
  const a = await labelled('a', join(dir, 'a.sock'));
  const agent = new Agent({ socketPath: join(dir, 'a.sock') });
  const client = new Client({ agent });
  try {
    const first = await client.request('http://localhost/x');
    assert.equal(await first.body.text(), 'a');
    const second = await client.request('http://localhost/y');
    assert.equal(await second.body.text(), 'a');
    assert.equal(second.connection.reused, true);
    assert.equal(second.connection.id, first.connection.id);
    assert.equal(first.timings.dnsMs, undefined); // no name was resolved
    // warmpool's fetch takes it too, per request.
    const fetchAgent = new Agent();
    const fetched = await fetch('http://localhost/z', { agent: fetchAgent, socketPath: join(dir, 'a.sock') });
    assert.equal(await fetched.text(), 'a');
    await fetchAgent.destroy();
  } finally {
    await agent.destroy();
    await close(a.server);
    await rm(dir, { recursive: true, force: true });
  }
});

test('socketPath is part of the pool key: two paths never share a connection, nor a path and TCP to the same origin', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warmpool-unix-'));
  const a = await labelled('a', join(dir, 'a.sock'));
  const b = await labelled('b', join(dir, 'b.sock'));
  const tcp = await labelled('tcp', 0);
  const agent = new Agent();
  const client = new Client({ agent });
  const origin = `http://127.0.0.1:${tcp.port}`;
  const get = async (socketPath?: string) => {
    const res = await client.request(`${origin}/`, { socketPath });
    return { text: await res.body.text(), id: res.connection.id, reused: res.connection.reused };
  };
  try {
    const t1 = await get();
    const a1 = await get(join(dir, 'a.sock'));
    const b1 = await get(join(dir, 'b.sock'));
    assert.deepEqual([t1.text, a1.text, b1.text], ['tcp', 'a', 'b']);
    assert.equal(new Set([t1.id, a1.id, b1.id]).size, 3);
    // Each way to the origin reuses its own connection, and only its own.
    const [t2, a2, b2] = [await get(), await get(join(dir, 'a.sock')), await get(join(dir, 'b.sock'))];
    assert.deepEqual([t2.text, a2.text, b2.text], ['tcp', 'a', 'b']);
    assert.deepEqual([t2.id, a2.id, b2.id], [t1.id, a1.id, b1.id]);
    assert.ok(t2.reused && a2.reused && b2.reused);
    // Three pools for one origin.
    const pools = agent.stats().origins.filter((o) => o.origin === origin);
    assert.deepEqual(pools.map((o) => o.socketPath ?? 'tcp').sort(), [
      join(dir, 'a.sock'),
      join(dir, 'b.sock'),
      'tcp',
    ]);

    // A request's socketPath replaces the Agent's.
    const viaA = new Client({ agent: new Agent({ socketPath: join(dir, 'a.sock') }) });
    try {
      const r1 = await viaA.request(`${origin}/`);
      assert.equal(await r1.body.text(), 'a');
      const r2 = await viaA.request(`${origin}/`, { socketPath: join(dir, 'b.sock') });
      assert.equal(await r2.body.text(), 'b');
      assert.notEqual(r2.connection.id, r1.connection.id);
    } finally {
      await viaA.agent.destroy();
    }
  } finally {
    await agent.destroy();
    await Promise.all([close(a.server), close(b.server), close(tcp.server)]);
    await rm(dir, { recursive: true, force: true });
  }
});

test('socketPath with http2: prior-knowledge: h2c over a unix socket, streams share one session', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warmpool-unix-'));
  const path = join(dir, 'h2.sock');
  const server = http2.createServer();
  let sessions = 0;
  server.on('session', () => sessions++);
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('h2c');
  });
  await new Promise<void>((r) => server.listen(path, r));
  const agent = new Agent({ socketPath: path, http2: 'prior-knowledge' });
  const client = new Client({ agent });
  try {
    const responses = await Promise.all(Array.from({ length: 5 }, () => client.request('http://localhost/')));
    for (const res of responses) {
      assert.equal(res.httpVersion, '2');
      assert.equal(await res.body.text(), 'h2c');
    }
    assert.equal(new Set(responses.map((r) => r.connection.id)).size, 1);
    assert.equal(sessions, 1);
  } finally {
    await agent.destroy();
    await close(server);
    await rm(dir, { recursive: true, force: true });
  }
});

test('socketPath: a path nothing listens on is WARMPOOL_CONNECT_ERROR; a bad path an invalid argument', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warmpool-unix-'));
  const agent = new Agent();
  const client = new Client({ agent });
  try {
    await assert.rejects(
      client.request('http://localhost/', { socketPath: join(dir, 'none.sock') }),
      (err) => {
        assert.equal((err as WarmpoolError).code, 'WARMPOOL_CONNECT_ERROR');
        assert.equal(((err as WarmpoolError).cause as NodeJS.ErrnoException).code, 'ENOENT');
        return true;
      },
    );
    for (const bad of ['', 42, 'a\0b']) {
      await assert.rejects(client.request('http://localhost/', { socketPath: bad as string }), {
        code: 'WARMPOOL_INVALID_ARGUMENT',
      });
      assert.throws(() => new Agent({ socketPath: bad as string }), { code: 'WARMPOOL_INVALID_ARGUMENT' });
    }
  } finally {
    await agent.destroy();
    await rm(dir, { recursive: true, force: true });
  }
});

test('nginx on unix sockets: HTTP/1.1 keeps one connection for sequential requests, h2c multiplexes', async (t) => {
  const bin = nginxOrSkip(t);
  if (!bin) return;
  const dir = await mkdtemp(join(tmpdir(), 'warmpool-unix-'));
  const h1 = join(dir, 'h1.sock');
  const h2 = join(dir, 'h2.sock');
  const nginx = await startNginx({
    bin,
    unixSockets: [{ path: h1 }, { path: h2, http2: true }],
    extraServerConfig: '    location /where { return 200 "$server_addr $server_protocol\\n"; }',
  });
  const agent = new Agent({ socketPath: h1 });
  const client = new Client({ agent });
  const h2agent = new Agent({ socketPath: h2, http2: 'prior-knowledge' });
  const h2client = new Client({ agent: h2agent });
  try {
    for (let i = 0; i < 3; i++) {
      const res = await client.request('http://localhost/where');
      assert.equal(await res.body.text(), `unix:${h1} HTTP/1.1\n`);
      assert.equal(res.connection.reused, i > 0);
    }
    const over2 = await Promise.all(
      Array.from({ length: 4 }, () => h2client.request('http://localhost/where')),
    );
    for (const res of over2) {
      assert.equal(res.httpVersion, '2');
      assert.equal(await res.body.text(), `unix:${h2} HTTP/2.0\n`);
    }
    assert.equal(new Set(over2.map((r) => r.connection.id)).size, 1);
    // What nginx saw: one HTTP/1.1 connection with 3 requests, one HTTP/2 connection with 4 streams.
    const log = (await nginx.accessLog()).filter((e) => e.uri === '/where');
    assert.equal(log.length, 7);
    assert.equal(new Set(log.map((e) => e.connection)).size, 2);
  } finally {
    await agent.destroy();
    await h2agent.destroy();
    await nginx.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('socketPath with https: TLS over a unix socket verifies the certificate against the URL host (SNI), ALPN picks h2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warmpool-unix-'));
  const path = join(dir, 'tls.sock');
  const fixtures = new URL('../../test/fixtures/', import.meta.url);
  const cert = readFileSync(new URL('localhost-cert.pem', fixtures), 'utf8');
  const server = http2.createSecureServer(
    { key: readFileSync(new URL('localhost-key.pem', fixtures), 'utf8'), cert, allowHTTP1: true },
    (req, res) => res.end(`${req.httpVersion} ${(req.socket as tls.TLSSocket).servername}`),
  );
  await new Promise<void>((r) => server.listen(path, r));
  const agent = new Agent({ socketPath: path, tls: { ca: cert } });
  const client = new Client({ agent });
  try {
    const res = await client.request('https://localhost/');
    assert.equal(await res.body.text(), '2.0 localhost');
    // Another name: the certificate does not cover it, and the connection is refused.
    await assert.rejects(client.request('https://example.com/'), { code: 'WARMPOOL_CONNECT_ERROR' });
  } finally {
    await agent.destroy();
    await close(server);
    await rm(dir, { recursive: true, force: true });
  }
});

test('socketPath and a proxy together are refused as an invalid argument (one way to the server or the other)', async () => {
  const agent = new Agent({ socketPath: '/tmp/warmpool-nothing.sock', proxy: 'http://127.0.0.1:9' });
  try {
    await assert.rejects(
      new Client({ agent }).request('http://example.test/'),
      (err: WarmpoolError) => err.code === 'WARMPOOL_INVALID_ARGUMENT' && /socketPath/.test(err.message),
    );
  } finally {
    await agent.destroy();
  }
});
