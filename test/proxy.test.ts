/**
 * Proxies, against real ones started here on loopback with config files of their own
 * (helpers/proxies.ts): squid for CONNECT tunnels (TLS with ALPN inside, h2 when the origin offers it)
 * and absolute-form requests; tinyproxy for Basic credentials. Each test checks the proxy's own log or
 * what the origin saw, so a request that went around the proxy cannot pass.
 *
 * Skipped, with a message, only when the binary is absent outside CI (.ci/run installs both).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Agent, Client, ConnectError, ProxyError } from '../src/index.js';
import { TEST_CERT, startH2Server, startHttpsServer } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { binaryOrSkip, startSquid, startTinyproxy } from './helpers/proxies.js';

const tls = { ca: TEST_CERT };

test('squid: an https origin offering h2 is reached through one CONNECT tunnel, h2 by ALPN inside it, reused', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  const origin = await startH2Server();
  const agent = new Agent({ proxy: squid.url, tls });
  try {
    const client = new Client({ agent });
    for (let i = 0; i < 3; i++) {
      const res = await client.request(`${origin.url}/n${i}`);
      assert.equal(res.status, 200);
      assert.equal(res.httpVersion, '2');
      assert.equal(await res.body.text(), 'ok\n');
      assert.equal(res.connection.reused, i > 0);
    }
    // Concurrent requests share the one session (streams), not new tunnels.
    await Promise.all([1, 2, 3, 4].map(async () => (await client.request(`${origin.url}/c`)).body.text()));
    assert.equal(origin.stats.sessionsTotal, 1);
    const stats = agent.originStats(origin.url);
    assert.equal(stats?.created, 1);
    await agent.destroy(); // squid logs a CONNECT when its tunnel ends
    const log = await squid.logMatching(new RegExp(`CONNECT 127\\.0\\.0\\.1:${origin.port}`));
    assert.equal(log.match(/CONNECT /g)?.length, 1, log);
  } finally {
    await agent.destroy();
    await origin.close();
    await squid.stop();
  }
});

test('squid: an HTTP/1.1-only https origin through CONNECT speaks http/1.1 inside the tunnel; allowHttp2: false too', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  const h1 = await startHttpsServer();
  const agent = new Agent({ proxy: squid.url, tls, allowHttp2: false });
  try {
    for (const url of [h1.url, h1.url]) {
      const res = await new Client({ agent }).request(`${url}/x`);
      assert.equal(res.status, 200);
      assert.equal(res.httpVersion, '1.1');
      await res.body.text();
    }
    assert.deepEqual(h1.connections, ['http/1.1']); // one tunnel, reused
    await agent.destroy();
    await squid.logMatching(new RegExp(`CONNECT 127\\.0\\.0\\.1:${h1.port}`));
  } finally {
    await agent.destroy();
    await h1.close();
    await squid.stop();
  }
});

test('squid: an http origin gets absolute-form requests (the URL on the request line), reused keep-alive', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  const seen: Array<{ url: string | undefined; via: string | undefined; host: string | undefined }> = [];
  const origin = await startHttpServer((req, res) => {
    seen.push({ url: req.url, via: req.headers.via as string | undefined, host: req.headers.host });
    res.end(`hello ${req.url}`);
  });
  const agent = new Agent({ proxy: squid.url });
  try {
    const client = new Client({ agent });
    for (let i = 0; i < 3; i++) {
      const res = await client.request(`${origin.url}/path/${i}?q=${i}`);
      assert.equal(res.status, 200);
      assert.equal(await res.body.text(), `hello /path/${i}?q=${i}`);
      assert.equal(res.connection.reused, i > 0, `request ${i}`);
    }
    // The POST body goes through too.
    const post = await client.request(`${origin.url}/post`, { method: 'POST', body: 'data' });
    assert.equal(post.status, 200);
    await post.body.text();
    assert.equal(agent.originStats(origin.url)?.created, 1);
    // squid received absolute-form and forwarded origin-form, adding its Via.
    assert.equal(seen.length, 4);
    for (const s of seen) {
      assert.match(s.via ?? '', /squid/);
      assert.equal(s.host, `127.0.0.1:${origin.port}`);
    }
    const log = await squid.logMatching(new RegExp(`POST http://127\\.0\\.0\\.1:${origin.port}/post`));
    assert.match(log, new RegExp(`GET http://127\\.0\\.0\\.1:${origin.port}/path/0\\?q=0`));
  } finally {
    await agent.destroy();
    await origin.close();
    await squid.stop();
  }
});

test('squid: a tunnel whose origin hangs up on a reused connection is stale: the GET is retried once on a new tunnel, a POST is not', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  // Every connection answers its first request and drops the second without a byte.
  const perSocket = new WeakMap<object, number>();
  const origin = await startHttpsServer({
    handler: (req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n === 2) req.socket.destroy();
      else res.end('ok\n');
    },
  });
  const agent = new Agent({ proxy: squid.url, tls, allowHttp2: false });
  try {
    const client = new Client({ agent });
    await (await client.request(`${origin.url}/first`)).body.text();
    const res = await client.request(`${origin.url}/second`);
    assert.equal(res.status, 200);
    assert.equal(res.retried, true);
    assert.equal(res.connection.reused, false);
    await res.body.text();
    assert.equal(origin.connections.length, 2);
    assert.equal(agent.originStats(origin.url)?.retried, 1);
    // A POST on the reused tunnel fails instead of being sent twice.
    await assert.rejects(client.request(`${origin.url}/post`, { method: 'POST', body: 'x' }));
    assert.equal(origin.connections.length, 2);
  } finally {
    await agent.destroy();
    await origin.close();
    await squid.stop();
  }
});

test('tinyproxy: the right Basic credentials open the tunnel; none is ProxyError 407, wrong ones 401 (tinyproxy says so)', async (t) => {
  const bin = binaryOrSkip(t, 'tinyproxy');
  if (!bin) return;
  const proxy = await startTinyproxy('alice', 's3cret', bin);
  const origin = await startHttpsServer();
  const port = proxy.port;
  const agents: Agent[] = [];
  const make = (proxyUrl: string) => {
    const agent = new Agent({ proxy: proxyUrl, tls, allowHttp2: false });
    agents.push(agent);
    return new Client({ agent });
  };
  try {
    const ok = await make(`http://alice:s3cret@127.0.0.1:${port}`).request(`${origin.url}/ok`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.body.text(), 'ok\n');
    // tinyproxy answers a CONNECT without credentials 407, and one with wrong credentials 401.
    for (const [url, status] of [
      [`http://127.0.0.1:${port}`, 407],
      [`http://alice:wrong@127.0.0.1:${port}`, 401],
    ] as const) {
      await assert.rejects(make(url).request(`${origin.url}/no`), (err: unknown) => {
        assert.ok(err instanceof ProxyError, String(err));
        assert.equal(err.code, 'WARMPOOL_PROXY_ERROR');
        assert.equal(err.statusCode, status);
        assert.equal(err.proxy, `http://127.0.0.1:${port}`);
        assert.doesNotMatch(err.message, /wrong|s3cret/);
        return true;
      });
    }
    assert.equal(origin.connections.length, 1);
  } finally {
    await Promise.all(agents.map((a) => a.destroy()));
    await origin.close();
    await proxy.stop();
  }
});

test('tinyproxy: absolute-form requests carry the proxy credentials on every request', async (t) => {
  const bin = binaryOrSkip(t, 'tinyproxy');
  if (!bin) return;
  const proxy = await startTinyproxy('alice', 's3cret', bin);
  let sawAuth = false;
  const origin = await startHttpServer((req, res) => {
    if (req.headers['proxy-authorization'] !== undefined) sawAuth = true;
    res.end('plain\n');
  });
  const agent = new Agent({ proxy: { url: `http://alice:s3cret@127.0.0.1:${proxy.port}` } });
  try {
    const client = new Client({ agent });
    for (let i = 0; i < 2; i++) {
      const res = await client.request(`${origin.url}/p${i}`);
      assert.equal(res.status, 200);
      assert.equal(await res.body.text(), 'plain\n');
    }
    assert.equal(origin.stats.requestsTotal, 2);
    assert.equal(sawAuth, false); // the proxy's header is the proxy's: not forwarded
  } finally {
    await agent.destroy();
    await origin.close();
    await proxy.stop();
  }
});

test('an unreachable proxy is a ConnectError that names the proxy (and not its credentials)', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const agent = new Agent({ proxy: `http://bob:hunter2@127.0.0.1:${port}` });
  try {
    for (const url of ['https://127.0.0.1:9/x', 'http://127.0.0.1:9/x']) {
      await assert.rejects(new Client({ agent }).request(url), (err: unknown) => {
        assert.ok(err instanceof ConnectError, String(err));
        assert.equal(err.code, 'WARMPOOL_CONNECT_ERROR');
        assert.match(err.message, new RegExp(`proxy http://127\\.0\\.0\\.1:${port}`));
        assert.doesNotMatch(err.message, /hunter2|bob/);
        return true;
      });
    }
  } finally {
    await agent.destroy();
  }
});

test('isolation: one Agent, one origin, four routes (direct, squid, tinyproxy, tinyproxy with other headers): no connection carries two', async (t) => {
  const squidBin = binaryOrSkip(t, 'squid');
  const tinyBin = squidBin && binaryOrSkip(t, 'tinyproxy');
  if (!squidBin || !tinyBin) return;
  const squid = await startSquid(squidBin);
  const tiny = await startTinyproxy('alice', 's3cret', tinyBin);
  // The route each origin-side connection carried (keyed by the peer's port): must stay one.
  const routesByConn = new Map<string, Set<string>>();
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const conn = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    let set = routesByConn.get(conn);
    if (set === undefined) {
      set = new Set();
      routesByConn.set(conn, set);
    }
    set.add(String(req.headers['x-route']));
    res.end('ok\n');
  };
  const plain = await startHttpServer(handler);
  const secure = await startHttpsServer({ handler });
  const tinyUrl = `http://alice:s3cret@127.0.0.1:${tiny.port}`;
  const routes: Array<[string, import('../src/index.js').RequestInit['proxy']]> = [
    ['direct', null],
    ['squid', squid.url],
    ['tiny', tinyUrl],
    ['tiny-tagged', { url: tinyUrl, headers: { 'X-Tag': 'b' } }],
  ];
  const agent = new Agent({ tls, allowHttp2: false });
  try {
    const client = new Client({ agent });
    for (const origin of [plain.url, secure.url]) {
      for (let round = 0; round < 3; round++) {
        for (const [name, proxy] of routes) {
          const res = await client.request(`${origin}/r`, { proxy, headers: { 'x-route': name } });
          assert.equal(res.status, 200, `${name} ${origin}`);
          // tinyproxy closes after each absolute-form request (it answers HTTP/1.0); tunnels are kept.
          const keptAlive = origin === secure.url || !name.startsWith('tiny');
          if (keptAlive) assert.equal(res.connection.reused, round > 0, `${name} ${origin} round ${round}`);
          await res.body.text();
        }
      }
      const pools = agent.stats().origins.filter((o) => o.origin === origin);
      assert.equal(pools.length, 4, origin);
      assert.equal(
        pools.reduce((n, p) => n + p.created, 0),
        origin === secure.url ? 4 : 2 + 2 * 3,
      );
    }
    assert.equal(routesByConn.size, 8 + 2 * 2);
    for (const [conn, set] of routesByConn) assert.equal(set.size, 1, `${conn} carried ${[...set]}`);
  } finally {
    await agent.destroy();
    await Promise.all([plain.close(), secure.close()]);
    await Promise.all([squid.stop(), tiny.stop()]);
  }
});

test('squid as an https:// proxy (TLS to the proxy, its CA in proxy.tls): a CONNECT tunnel with h2 inside, and absolute-form', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin, { tls: true });
  assert.match(squid.url, /^https:/);
  const h2 = await startH2Server();
  const plain = await startHttpServer((req, res) => {
    res.end(`via ${String(req.headers.via)}`);
  });
  const agent = new Agent({ proxy: { url: squid.url, tls: { ca: TEST_CERT } }, tls });
  try {
    const client = new Client({ agent });
    const res = await client.request(`${h2.url}/tunnelled`);
    assert.equal(res.httpVersion, '2');
    assert.equal(await res.body.text(), 'ok\n');
    const abs = await client.request(`${plain.url}/absolute`);
    assert.match(await abs.body.text(), /^via .*squid/);
    // The proxy's certificate is checked: without its CA the dial fails, naming the proxy.
    const untrusting = new Agent({ proxy: squid.url });
    try {
      await assert.rejects(new Client({ agent: untrusting }).request(`${plain.url}/x`), (err: unknown) => {
        assert.ok(err instanceof ConnectError, String(err));
        assert.match(err.message, /proxy https:\/\/127\.0\.0\.1/);
        return true;
      });
    } finally {
      await untrusting.destroy();
    }
    await agent.destroy();
    await squid.logMatching(new RegExp(`CONNECT 127\\.0\\.0\\.1:${h2.port}`));
  } finally {
    await agent.destroy();
    await Promise.all([h2.close(), plain.close()]);
    await squid.stop();
  }
});

test('NODE_USE_ENV_PROXY=1 with HTTP_PROXY and NO_PROXY: a new Agent proxies what NO_PROXY does not name', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  const vias: string[] = [];
  const origin = await startHttpServer((req, res) => {
    vias.push(String(req.headers.via));
    res.end('ok\n');
  });
  const names = ['NODE_USE_ENV_PROXY', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'] as const;
  const saved = names.map((n) => process.env[n]);
  for (const n of names) delete process.env[n];
  process.env.NODE_USE_ENV_PROXY = '1';
  process.env.HTTP_PROXY = squid.url;
  process.env.NO_PROXY = 'localhost';
  let agent: Agent | undefined;
  try {
    agent = new Agent();
    const client = new Client({ agent });
    await (await client.request(`${origin.url}/proxied`)).body.text();
    await (await client.request(`http://localhost:${origin.port}/direct`)).body.text();
    assert.match(vias[0], /squid/);
    assert.equal(vias[1], 'undefined');
  } finally {
    names.forEach((n, i) => {
      if (saved[i] === undefined) delete process.env[n];
      else process.env[n] = saved[i];
    });
    await agent?.destroy();
    await origin.close();
    await squid.stop();
  }
});

test('a proxy that accepts but never answers CONNECT: ConnectTimeoutError (connectTimeout bounds the whole dial)', async () => {
  const silent = net.createServer(() => {});
  const sockets = new Set<net.Socket>();
  silent.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as net.AddressInfo).port;
  const agent = new Agent({ proxy: `http://127.0.0.1:${port}`, connectTimeout: 200 });
  try {
    await assert.rejects(new Client({ agent }).request('https://127.0.0.1:9/x'), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'WARMPOOL_CONNECT_TIMEOUT');
      assert.match((err as Error).message, new RegExp(`proxy http://127\\.0\\.0\\.1:${port}`));
      return true;
    });
  } finally {
    await agent.destroy();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});

test('squid: tunnel: true sends an http origin through CONNECT (cleartext HTTP/1.1 inside), and h2c prior-knowledge tunnels too', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  const plain = await startHttpServer((req, res) => {
    res.end(`via ${String(req.headers.via)} ${req.url}`);
  });
  const h2c = await startH2Server({ secure: false });
  const tunnelled = new Agent({ proxy: { url: squid.url, tunnel: true } });
  const h2Agent = new Agent({ proxy: squid.url, http2: 'prior-knowledge' });
  try {
    const client = new Client({ agent: tunnelled });
    for (let i = 0; i < 3; i++) {
      const res = await client.request(`${plain.url}/t${i}`);
      // Through a tunnel squid sees no request, so adds no Via; the origin gets origin-form.
      assert.equal(await res.body.text(), `via undefined /t${i}`);
      assert.equal(res.connection.reused, i > 0);
    }
    for (let i = 0; i < 2; i++) {
      const res = await new Client({ agent: h2Agent }).request(`${h2c.url}/h2c`);
      assert.equal(res.httpVersion, '2');
      assert.equal(await res.body.text(), 'ok\n');
    }
    assert.equal(h2c.stats.sessionsTotal, 1);
    await Promise.all([tunnelled.destroy(), h2Agent.destroy()]);
    const log = await squid.logMatching(
      new RegExp(
        `CONNECT 127\\.0\\.0\\.1:${plain.port}[^]*CONNECT 127\\.0\\.0\\.1:${h2c.port}|CONNECT 127\\.0\\.0\\.1:${h2c.port}[^]*CONNECT 127\\.0\\.0\\.1:${plain.port}`,
      ),
    );
    assert.doesNotMatch(log, /GET http:/);
  } finally {
    await Promise.all([tunnelled.destroy(), h2Agent.destroy()]);
    await Promise.all([plain.close(), h2c.close()]);
    await squid.stop();
  }
});

test('a proxy that answers CONNECT 502, or not in HTTP, is a ProxyError (statusCode 502, or 0)', async () => {
  const answers = ['HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'];
  let next = 0;
  const seen: string[] = [];
  const fake = net.createServer((s) => {
    const answer = answers[next++];
    s.once('data', (d) => {
      seen.push(d.toString('latin1'));
      s.end(answer);
    });
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  const port = (fake.address() as net.AddressInfo).port;
  const agent = new Agent({ proxy: { url: `http://u:p@127.0.0.1:${port}`, headers: { 'X-Team': 'a' } } });
  try {
    for (const status of [502, 0]) {
      await assert.rejects(new Client({ agent }).request('https://example.test:8443/x'), (err: unknown) => {
        assert.ok(err instanceof ProxyError, String(err));
        assert.equal(err.statusCode, status);
        return true;
      });
    }
    // What the proxy was sent: CONNECT with the authority, Host, the credentials and the extra header.
    assert.equal(
      seen[0],
      `CONNECT example.test:8443 HTTP/1.1\r\nHost: example.test:8443\r\nProxy-Authorization: Basic ${Buffer.from('u:p').toString('base64')}\r\nX-Team: a\r\n\r\n`,
    );
  } finally {
    await agent.destroy();
    await new Promise<void>((r) => fake.close(() => r()));
  }
});

test('squid: maxConnectionsPerOrigin holds through the proxy: 8 concurrent requests ride 2 tunnels', async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  let inFlight = 0;
  let maxInFlight = 0;
  const origin = await startHttpsServer({
    handler: (_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setImmediate(() => {
        inFlight--;
        res.end('ok\n');
      });
    },
  });
  const agent = new Agent({ proxy: squid.url, tls, allowHttp2: false, maxConnectionsPerOrigin: 2 });
  try {
    const client = new Client({ agent });
    const bodies = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => (await client.request(`${origin.url}/${i}`)).body.text()),
    );
    assert.deepEqual(new Set(bodies), new Set(['ok\n']));
    assert.equal(origin.connections.length, 2);
    assert.ok(maxInFlight <= 2);
    const stats = agent.originStats(origin.url);
    assert.equal(stats?.created, 2);
    assert.equal(stats?.requests, 8);
  } finally {
    await agent.destroy();
    await origin.close();
    await squid.stop();
  }
});

test("squid: inside a CONNECT tunnel the origin's TLS gets every TLS option: a pin that does not match fails, one that matches connects", async (t) => {
  const bin = binaryOrSkip(t, 'squid');
  if (!bin) return;
  const squid = await startSquid(bin);
  const origin = await startH2Server();
  let checked = 0;
  const pinned = (expect: boolean) => ({
    ca: TEST_CERT,
    checkServerIdentity: (_host: string, _cert: unknown): Error | undefined => {
      checked++;
      return expect ? undefined : new Error('pin mismatch (test)');
    },
  });
  const agent = new Agent({ proxy: squid.url });
  try {
    const client = new Client({ agent });
    const err = await client.request(`${origin.url}/bad`, { tls: pinned(false) }).then(
      () => assert.fail('a pin that does not match must not connect'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConnectError, String(err));
    assert.match(String((err as ConnectError).cause), /pin mismatch/);
    const res = await client.request(`${origin.url}/good`, { tls: pinned(true) });
    assert.equal(await res.body.text(), 'ok\n');
    assert.equal(checked, 2, 'checkServerIdentity ran for each tunnel');
  } finally {
    await agent.destroy();
    await origin.close();
    await squid.stop();
  }
});
