/**
 * Isolation (DESIGN.md invariant 8): a request reaches only a connection identical to the one it
 * would have made. Real TLS servers, HTTP/1.1 and HTTP/2.
 *
 * - Scheme and host: the cache of parsed URL authorities once keyed https hosts as "s" + authority and
 *   http hosts as the authority, so https://H and http://sH shared an entry: after
 *   http://slocalhost:P/, https://localhost:P/ went out in cleartext to slocalhost; after
 *   https://127.0.0.1:P/, http://s127.0.0.1:P/ went over TLS to 127.0.0.1.
 * - TLS material: the pool key (which is also the TLS session cache key) named a string of 64+
 *   characters by its length and first 32 characters, and every PEM starts alike: a request made as
 *   "bob" went out on the connection authenticated as "ali", and a `ca` that does not trust the
 *   server reused a connection verified under another. The fixtures are made for it: the client
 *   certificates of ali and bob (signed by client-ca-cert.pem) have equal lengths, as do their keys, and
 *   other-localhost-cert.pem (a CA that did not sign the server's certificate) is as long as
 *   localhost-cert.pem; each pair has the same first 32 characters.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type tls from 'node:tls';
import { Agent, Client, type TlsOptions, WarmpoolError } from '../src/index.js';
import { type TestHttpsServer, startHttpsServer } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { rejectsWith } from './helpers/pool-util.js';

const fixtures = new URL('../../test/fixtures/', import.meta.url);
const pem = (name: string): string => fs.readFileSync(new URL(name, fixtures), 'utf8');

const SERVER_CERT = pem('localhost-cert.pem');
const SERVER_KEY = pem('localhost-key.pem');
/** A CA that did not sign the server's certificate, as long as SERVER_CERT. */
const OTHER_CA = pem('other-localhost-cert.pem');
const CLIENT_CA = pem('client-ca-cert.pem');
const ALI = { cert: pem('ali-cert.pem'), key: pem('ali-key.pem') };
const BOB = { cert: pem('bob-cert.pem'), key: pem('bob-key.pem') };

/** Bounds that turn a hang into a failure; never what a test measures. */
const LIMIT_MS = 5000;

describe('the fixtures are the lookalikes the tests need', () => {
  it('equal lengths and equal first 32 characters, different content', () => {
    for (const [a, b] of [
      [ALI.cert, BOB.cert],
      [ALI.key, BOB.key],
      [SERVER_CERT, OTHER_CA],
    ]) {
      assert.equal(a.length, b.length);
      assert.equal(a.slice(0, 32), b.slice(0, 32));
      assert.notEqual(a, b);
    }
  });
});

// ---- scheme and host ------------------------------------------------------------------------------

describe('scheme and host: https://H and http://sH never share a parsed target', () => {
  let server: TestHttpsServer;
  /** Requests the server saw, and whether each came over TLS. */
  const seen: Array<{ host: string | undefined; encrypted: boolean }> = [];
  before(async () => {
    server = await startHttpsServer({
      handler: (req, res) => {
        seen.push({ host: req.headers.host, encrypted: (req.socket as tls.TLSSocket).encrypted === true });
        res.end('tls\n');
      },
    });
  });
  after(() => server.close());

  const withClient = async (fn: (client: Client) => Promise<void>): Promise<void> => {
    const agent = new Agent();
    try {
      await fn(
        new Client({ agent, tls: { ca: SERVER_CERT }, headersTimeout: LIMIT_MS, bodyTimeout: LIMIT_MS }),
      );
    } finally {
      await agent.destroy();
    }
  };

  it('after http://slocalhost:P/, https://localhost:P/ goes over TLS to localhost', async () => {
    await withClient(async (client) => {
      const before = seen.length;
      // slocalhost does not resolve: whatever this one does, it must not reach the TLS server.
      await assert.rejects(client.request(`http://slocalhost:${server.port}/`), WarmpoolError);
      assert.equal(seen.length, before);
      const res = await client.request(`https://localhost:${server.port}/`);
      assert.equal(await res.body.text(), 'tls\n');
      assert.deepEqual(seen.slice(before), [{ host: `localhost:${server.port}`, encrypted: true }]);
    });
  });

  it('after https://localhost:P/, http://slocalhost:P/ does not reach the TLS server', async () => {
    await withClient(async (client) => {
      const before = seen.length;
      const res = await client.request(`https://localhost:${server.port}/`);
      assert.equal(await res.body.text(), 'tls\n');
      await assert.rejects(client.request(`http://slocalhost:${server.port}/`), WarmpoolError);
      await assert.rejects(client.request(`http://slocalhost:${server.port}/x`), WarmpoolError);
      assert.equal(seen.length, before + 1);
    });
  });

  it('after https://127.0.0.1:P/, http://s127.0.0.1:P/ is an invalid host, not a TLS request', async () => {
    await withClient(async (client) => {
      const before = seen.length;
      const res = await client.request(`https://127.0.0.1:${server.port}/`);
      assert.equal(await res.body.text(), 'tls\n');
      const err = await rejectsWith(
        client.request(`http://s127.0.0.1:${server.port}/`),
        'WARMPOOL_INVALID_ARGUMENT',
      );
      assert.match(err.message, /invalid host "s127\.0\.0\.1"/);
      assert.equal(seen.length, before + 1);
    });
  });

  it('after http://s127.0.0.1:P/ was refused, https://127.0.0.1:P/ still goes over TLS', async () => {
    await withClient(async (client) => {
      const before = seen.length;
      await rejectsWith(client.request(`http://s127.0.0.1:${server.port}/`), 'WARMPOOL_INVALID_ARGUMENT');
      const res = await client.request(`https://127.0.0.1:${server.port}/`);
      assert.equal(await res.body.text(), 'tls\n');
      assert.deepEqual(seen.slice(before), [{ host: `127.0.0.1:${server.port}`, encrypted: true }]);
    });
  });
});

describe('a URL sent again is parsed as what it names, whatever was sent between', () => {
  it('each request reaches the host and path its own URL names', async () => {
    const server = await startHttpServer((req, res) => {
      res.end(`${req.headers.host} ${req.url}`);
    });
    const agent = new Agent();
    try {
      const client = new Client({ agent });
      const a = `http://127.0.0.1:${server.port}/a?x=1`;
      const b = `http://localhost:${server.port}/b`;
      // The same string again, an equal one made anew, one as long that differs at its end, longer and
      // shorter ones.
      const urls = [
        a,
        a,
        b,
        a,
        `http://127.0.0.1:${server.port}/a?x=${1}`,
        a.replace(/1$/, '3'),
        b,
        `${a}2`,
        b.slice(0, -1),
      ];
      for (const url of urls) {
        const res = await client.request(url);
        const { host, pathname, search } = new URL(url);
        assert.equal(await res.body.text(), `${host} ${pathname}${search}`, url);
        assert.equal(res.url, url);
      }
    } finally {
      await agent.destroy();
      await server.close();
    }
  });
});

// ---- TLS material ---------------------------------------------------------------------------------

interface MtlsServer {
  port: number;
  url: string;
  /** TLS connections accepted. */
  connections: number;
  close(): Promise<void>;
}

/**
 * A server that asks for a client certificate signed by CLIENT_CA and answers with its CN. HTTP/1.1
 * (https, ALPN http/1.1 only) or HTTP/2.
 */
async function startMtlsServer(protocol: 'http/1.1' | 'h2'): Promise<MtlsServer> {
  const options = {
    cert: SERVER_CERT,
    key: SERVER_KEY,
    ca: CLIENT_CA,
    requestCert: true,
    rejectUnauthorized: true,
  };
  const cn = (socket: tls.TLSSocket): string => String(socket.getPeerCertificate().subject?.CN);
  let server: https.Server | http2.Http2SecureServer;
  if (protocol === 'h2') {
    const h2 = http2.createSecureServer({ ...options, allowHTTP1: false });
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end(cn(stream.session!.socket as tls.TLSSocket));
    });
    server = h2;
  } else {
    server = https.createServer({ ...options, ALPNProtocols: ['http/1.1'] }, (req, res) => {
      res.end(cn(req.socket as tls.TLSSocket));
    });
  }
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    state.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('sessionError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const protocol of ['http/1.1', 'h2'] as const) {
  describe(`TLS material is identified by its whole content (${protocol})`, () => {
    let server: MtlsServer;
    let agent: Agent;
    before(async () => {
      server = await startMtlsServer(protocol);
    });
    after(() => server.close());

    const fresh = (): Client => {
      agent = new Agent();
      return new Client({ agent, headersTimeout: LIMIT_MS, bodyTimeout: LIMIT_MS });
    };
    /** The CN the server saw, after checking the protocol. */
    const whoAmI = async (client: Client, tlsOptions: TlsOptions): Promise<string> => {
      const res = await client.request(`${server.url}/`, { tls: tlsOptions });
      assert.equal(res.connection.protocol, protocol);
      return res.body.text();
    };

    it('a request as bob after one as ali is seen as bob (strings of equal length)', async () => {
      const client = fresh();
      try {
        assert.equal(await whoAmI(client, { ca: SERVER_CERT, ...ALI }), 'ali');
        assert.equal(await whoAmI(client, { ca: SERVER_CERT, ...BOB }), 'bob');
        assert.equal(await whoAmI(client, { ca: SERVER_CERT, ...ALI }), 'ali');
        assert.equal(agent.stats().origins.length, 2, 'one pool per identity');
      } finally {
        await agent.destroy();
      }
    });

    it('the same, with Buffers and with arrays', async () => {
      const client = fresh();
      try {
        const buf = (s: string): Buffer => Buffer.from(s);
        assert.equal(
          await whoAmI(client, { ca: buf(SERVER_CERT), cert: buf(ALI.cert), key: buf(ALI.key) }),
          'ali',
        );
        assert.equal(
          await whoAmI(client, { ca: [SERVER_CERT], cert: [BOB.cert], key: [buf(BOB.key)] }),
          'bob',
        );
        assert.equal(await whoAmI(client, { ca: [buf(SERVER_CERT)], cert: ALI.cert, key: ALI.key }), 'ali');
      } finally {
        await agent.destroy();
      }
    });

    it('equal content in other objects is the same connection', async () => {
      const client = fresh();
      try {
        const before = server.connections;
        await whoAmI(client, { ca: Buffer.from(SERVER_CERT), ...ALI });
        await whoAmI(client, { ca: Buffer.from(SERVER_CERT), ...ALI });
        await whoAmI(client, { ca: [Buffer.from(SERVER_CERT)], cert: `${ALI.cert}`, key: ALI.key });
        await whoAmI(client, { ca: [Buffer.from(SERVER_CERT)], cert: `${ALI.cert}`, key: ALI.key });
        // A ca given whole and the same ca as a one-element array are told apart (two connections);
        // each is reused by the request with an equal value in another object.
        assert.equal(server.connections - before, 2);
      } finally {
        await agent.destroy();
      }
    });

    it('a ca that does not trust the server fails, even right after a trusted request', async () => {
      const client = fresh();
      try {
        assert.equal(await whoAmI(client, { ca: SERVER_CERT, ...ALI }), 'ali');
        const before = server.connections;
        const err = await rejectsWith(
          client.request(`${server.url}/`, { tls: { ca: OTHER_CA, ...ALI } }),
          'WARMPOOL_CONNECT_ERROR',
        );
        assert.match(String((err.cause as { code?: unknown }).code), /CERT|SELF_SIGNED/);
        assert.equal(server.connections, before, 'the server completed a handshake it should not have');
        // And in the other order: a failed untrusted attempt leaves nothing that a trusted one reuses.
        await rejectsWith(
          client.request(`${server.url}/`, { tls: { ca: OTHER_CA, ...BOB } }),
          'WARMPOOL_CONNECT_ERROR',
        );
        assert.equal(await whoAmI(client, { ca: SERVER_CERT, ...BOB }), 'bob');
      } finally {
        await agent.destroy();
      }
    });
  });
}
