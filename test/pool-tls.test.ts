/**
 * HTTPS over HTTP/1.1: the agent's `tls` options trust a self-signed test certificate, connections
 * are reused like plain ones, and TLS options that change the connection (ca, servername) are part
 * of the pool key: requests with different ones never share a connection.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type net from 'node:net';
import { test } from 'node:test';
import { Agent, Client } from '../src/index.js';
import { rejectsWith } from './helpers/pool-util.js';
import { testCert } from './helpers/tls-cert.js';

async function startHttpsServer() {
  const { key, cert } = testCert();
  let connections = 0;
  const servernames: Array<string | false> = [];
  const server = https.createServer({ key, cert }, (_req, res) => res.end('secure\n'));
  server.on('secureConnection', (s) => {
    connections++;
    servernames.push((s as unknown as { servername: string | false }).servername);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    servernames,
    cert,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

test('HTTPS with the test CA in the agent tls options: the request succeeds over http/1.1 and the connection is reused', async () => {
  const server = await startHttpsServer();
  const agent = new Agent({ tls: { ca: server.cert } });
  try {
    const client = new Client({ agent });
    const first = await client.request(`${server.url}/`);
    assert.equal(await first.body.text(), 'secure\n');
    assert.equal(first.connection.protocol, 'http/1.1');
    assert.equal(first.httpVersion, '1.1');
    assert.equal(typeof first.timings.tlsMs, 'number');
    assert.equal(typeof first.timings.connectMs, 'number');
    const second = await client.request(`${server.url}/`);
    assert.equal(await second.body.text(), 'secure\n');
    assert.equal(second.connection.reused, true);
    assert.equal(second.connection.id, first.connection.id);
    assert.equal(second.timings.tlsMs, undefined, 'no handshake on a reused connection');
    assert.equal(server.connections, 1);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('HTTPS without the test CA fails with WARMPOOL_CONNECT_ERROR naming the origin', async () => {
  const server = await startHttpsServer();
  const agent = new Agent();
  try {
    const err = await rejectsWith(
      new Client({ agent }).request(`${server.url}/`),
      'WARMPOOL_CONNECT_ERROR',
      server.url,
    );
    assert.ok(err.cause instanceof Error);
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test('a request with a different servername or ca goes to a different pool key and never shares a connection', async () => {
  const server = await startHttpsServer();
  const agent = new Agent({ tls: { ca: server.cert } });
  try {
    const plain = new Client({ agent });
    const named = new Client({ agent, tls: { ca: server.cert, servername: 'localhost' } });
    // Same PEM text, but a different object: a different key (ids are by identity for objects).
    const otherCa = new Client({ agent, tls: { ca: [server.cert] } });
    for (const client of [plain, named, otherCa, plain, named, otherCa]) {
      const res = await client.request(`${server.url}/`);
      assert.equal(await res.body.text(), 'secure\n');
    }
    const pools = agent.stats().origins;
    assert.equal(pools.length, 3);
    for (const p of pools) {
      assert.equal(p.origin, server.url);
      assert.deepEqual([p.created, p.requests, p.reused], [1, 2, 1]);
    }
    assert.equal(server.connections, 3);
    assert.ok(server.servernames.includes('localhost'), 'the servername option was sent as SNI');
  } finally {
    await agent.destroy();
    await server.close();
  }
});
