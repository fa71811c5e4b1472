/**
 * Isolation (DESIGN.md invariant 8): a request reaches only a connection identical to the one it
 * would have made. Real TLS servers, HTTP/1.1 and HTTP/2.
 *
 * - Scheme and host: the cache of parsed URL authorities once keyed https hosts as "s" + authority and
 *   http hosts as the authority, so https://H and http://sH shared an entry: after
 *   http://slocalhost:P/, https://localhost:P/ went out in cleartext to slocalhost; after
 *   https://127.0.0.1:P/, http://s127.0.0.1:P/ went over TLS to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type tls from 'node:tls';
import { Agent, Client, WarmpoolError } from '../src/index.js';
import { type TestHttpsServer, startHttpsServer } from './helpers/h2-server.js';
import { rejectsWith } from './helpers/pool-util.js';

const fixtures = new URL('../../test/fixtures/', import.meta.url);
const pem = (name: string): string => fs.readFileSync(new URL(name, fixtures), 'utf8');

const SERVER_CERT = pem('localhost-cert.pem');

/** Bounds that turn a hang into a failure; never what a test measures. */
const LIMIT_MS = 5000;

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
