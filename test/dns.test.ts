/**
 * DNS against a real DNS server: dnsmasq on a loopback port serves `spread.test` with two A records
 * (127.0.0.2 and 127.0.0.3), TTL 2 s; the Agent resolves through a `lookup` built on dns.Resolver
 * pointed at it (which gives the records' TTL), with `dns: { ttl }` caching. The test server listens
 * on 0.0.0.0 and reports the local address each request came in on.
 *
 * Time: the Agent reads its clock (a ManualClock) for the cache's expiry and for maxConnectionAge; the
 * test moves it instead of sleeping through a TTL.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { test } from 'node:test';
import { Agent, Client, type WarmpoolError } from '../src/index.js';
import { dnsmasqOrSkip, resolverLookup, startDnsmasq } from './helpers/dnsmasq.js';
import { ManualClock } from './helpers/manual-clock.js';

/**
 * A server on `host` that answers each request with the local address it arrived on, holding the
 * answers until `barrier` requests are in (so that many are in flight at once: one connection each).
 */
async function addressServer(host: string, port = 0) {
  let held: Array<() => void> = [];
  let barrier = 1;
  const server = http.createServer((req, res) => {
    req.resume();
    held.push(() => res.end((req.socket as net.Socket).localAddress));
    if (held.length >= barrier) {
      const go = held;
      held = [];
      for (const f of go) f();
    }
  });
  // Its Keep-Alive hint (timeout=120) must not retire connections before maxConnectionAge does.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    /** The next `n` requests are answered together. */
    expect(n: number) {
      barrier = n;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** `n` requests at once; each one's local address and connection. */
async function round(client: Client, url: string, n: number) {
  const responses = await Promise.all(Array.from({ length: n }, () => client.request(url)));
  return Promise.all(
    responses.map(async (res) => ({
      address: await res.body.text(),
      id: res.connection.id,
      reused: res.connection.reused,
    })),
  );
}

const count = (xs: string[]) => {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
};

test(
  'dns: { ttl } with dnsmasq: new connections spread over both A records; after the records change and the TTL passes, new connections go to the new address; maxConnectionAge rotates the old ones',
  { timeout: 60_000 },
  async (t) => {
    const bin = dnsmasqOrSkip(t);
    if (!bin) return;
    const dnsmasq = await startDnsmasq(bin, { 'spread.test': ['127.0.0.2', '127.0.0.3'] }, 2);
    const srv = await addressServer('0.0.0.0');
    const clock = new ManualClock();
    const { lookup, calls } = resolverLookup(dnsmasq.server);
    const agent = new Agent({
      lookup,
      dns: { ttl: 60_000 }, // the records' 2 s TTL is shorter: it wins
      clock,
      idleTimeout: 120_000,
      maxConnectionAge: 30_000,
    });
    const client = new Client({ agent });
    const url = `http://spread.test:${srv.port}/`;
    try {
      // Four at once: four connections, two on each address, one DNS query.
      srv.expect(4);
      const first = await round(client, url, 4);
      assert.deepEqual(count(first.map((r) => r.address)), { '127.0.0.2': 2, '127.0.0.3': 2 });
      assert.equal(new Set(first.map((r) => r.id)).size, 4);
      assert.equal(calls(), 1);

      // The records change; the cached answer is still fresh: the new connections follow the old one.
      await dnsmasq.setHosts({ 'spread.test': ['127.0.0.4'] });
      srv.expect(6);
      const second = await round(client, url, 6);
      assert.equal(second.filter((r) => r.reused).length, 4);
      for (const r of second) assert.notEqual(r.address, '127.0.0.4');
      assert.equal(calls(), 1);

      // The record's TTL (2 s) passes: the next dial asks again and goes to the new address; the
      // connections already open stay (the pool key is the name, not the address).
      clock.advanceMonotonic(2_001);
      srv.expect(8);
      const third = await round(client, url, 8);
      const fresh = third.filter((r) => !r.reused);
      assert.equal(fresh.length, 2);
      for (const r of fresh) assert.equal(r.address, '127.0.0.4');
      assert.equal(calls(), 2);
      assert.equal(agent.stats().origins.length, 1);

      // maxConnectionAge passes: every old connection retires, and the new ones go to 127.0.0.4 only.
      clock.advanceMonotonic(30_001);
      srv.expect(3);
      const fourth = await round(client, url, 3);
      for (const r of fourth) {
        assert.equal(r.reused, false);
        assert.equal(r.address, '127.0.0.4');
      }
      assert.equal(agent.originStats(`http://spread.test:${srv.port}`)?.closed['max-age'], 8);
    } finally {
      await agent.destroy();
      await srv.close();
      await dnsmasq.stop();
    }
  },
);

test(
  'dns: an address a connection failed on is skipped while another is healthy, and tried again later',
  { timeout: 60_000 },
  async (t) => {
    const bin = dnsmasqOrSkip(t);
    if (!bin) return;
    // Only 127.0.0.2 listens: connections to 127.0.0.3 are refused.
    const srv = await addressServer('127.0.0.2');
    const dnsmasq = await startDnsmasq(bin, { 'half.test': ['127.0.0.2', '127.0.0.3'] }, 600);
    const clock = new ManualClock();
    const { lookup } = resolverLookup(dnsmasq.server);
    // No happy eyeballs: a dial tries one address, so a refused one fails its request and is seen.
    const agent = new Agent({
      lookup,
      dns: { ttl: 600_000, failedAddressTimeout: 10_000 },
      autoSelectFamily: false,
      maxRequestsPerConnection: 1, // every request dials
      clock,
    });
    const client = new Client({ agent });
    const url = `http://half.test:${srv.port}/`;
    const attempt = async () => {
      try {
        const res = await client.request(url);
        return await res.body.text();
      } catch (err) {
        return (err as WarmpoolError).code;
      }
    };
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 6; i++) outcomes.push(await attempt());
      // Round-robin: of the first two dials one goes to .3 (refused: its request fails), the other
      // to .2 (in the order dnsmasq answers); from then on .3 is skipped.
      assert.deepEqual([...outcomes.slice(0, 2)].sort(), ['127.0.0.2', 'WARMPOOL_CONNECT_ERROR']);
      assert.deepEqual(outcomes.slice(2), ['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.2']);
      // Past failedAddressTimeout the address is in the rotation again (and fails again).
      clock.advanceMonotonic(10_001);
      const later: string[] = [];
      for (let i = 0; i < 2; i++) later.push(await attempt());
      assert.ok(later.includes('WARMPOOL_CONNECT_ERROR'));

      // With happy eyeballs (Node's default), a refused address costs no request: the dial moves on.
      const eyeballs = new Agent({ lookup, dns: { ttl: 600_000 }, maxRequestsPerConnection: 1 });
      try {
        const c = new Client({ agent: eyeballs });
        for (let i = 0; i < 4; i++) {
          const res = await c.request(url);
          assert.equal(await res.body.text(), '127.0.0.2');
        }
      } finally {
        await eyeballs.destroy();
      }
    } finally {
      await agent.destroy();
      await srv.close();
      await dnsmasq.stop();
    }
  },
);

test('lookup: a custom resolver is used for every dial; without dns caching, each dial asks it', async () => {
  const srv = await addressServer('127.0.0.1');
  const asked: string[] = [];
  const lookup = ((hostname: string, options: { all?: boolean }, cb: (...a: unknown[]) => void) => {
    asked.push(hostname);
    if (options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
  }) as unknown as net.LookupFunction;
  const agent = new Agent({ lookup, maxRequestsPerConnection: 1 });
  try {
    const client = new Client({ agent });
    for (let i = 0; i < 3; i++) {
      const res = await client.request(`http://no-such-name.invalid:${srv.port}/`);
      assert.equal(await res.body.text(), '127.0.0.1');
    }
    assert.deepEqual(asked, ['no-such-name.invalid', 'no-such-name.invalid', 'no-such-name.invalid']);
    assert.throws(() => new Agent({ lookup: 'dns' as unknown as net.LookupFunction }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
    assert.throws(() => new Agent({ dns: {} as { ttl: number } }), { code: 'WARMPOOL_INVALID_ARGUMENT' });
    assert.throws(() => new Agent({ autoSelectFamilyAttemptTimeout: 5 }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
    assert.throws(() => new Agent({ autoSelectFamily: 'yes' as unknown as boolean }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
  } finally {
    await agent.destroy();
    await srv.close();
  }
});
