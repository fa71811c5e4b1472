/**
 * Invalid URLs: every one is a WARMPOOL_INVALID_ARGUMENT naming the part that is wrong, reported the
 * way request() reports any invalid argument (a rejected promise; a Client's baseUrl throws when the
 * Client is made), never the URL parser's TypeError, and before any pool or connection exists.
 *
 * The URL parser refuses some authorities that look simple (a port over 65535, five IPv4 parts, a
 * part over 255, ':::'): the fast path that caches parsed authorities used to let its TypeError out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent, Client, InvalidArgumentError, request } from '../src/index.js';
import { rejectsWith } from './helpers/pool-util.js';

/** [url, what the message must name] */
const INVALID: Array<[string, RegExp]> = [
  ['http://127.0.0.1:99999/', /port 99999 is out of range/],
  ['https://127.0.0.1:65536/a', /port 65536 is out of range/],
  ['http://1.2.3.4.5/', /invalid host "1\.2\.3\.4\.5"/],
  ['http://256.0.0.1/', /invalid host "256\.0\.0\.1"/],
  ['http://[:::1]/', /invalid host "\[:::1\]"/],
  ['https://[:::1]:8443/', /invalid host "\[:::1\]"/],
  ['http://s127.0.0.1:8080/', /invalid host "s127\.0\.0\.1"/],
  ['http://127.0.0.1:8x/', /invalid port "8x"/],
  // The same, through the slow path (a path to encode, or a scheme in capitals).
  ['http://127.0.0.1:99999/a b', /port 99999 is out of range/],
  ['HTTP://256.0.0.1/', /invalid host "256\.0\.0\.1"/],
  ['http://user@1.2.3.4.5/', /invalid host "1\.2\.3\.4\.5"/],
  ['not a url', /not an absolute URL/],
];

async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await rejectsWith(p, 'WARMPOOL_INVALID_ARGUMENT');
  assert.ok(err instanceof InvalidArgumentError);
  assert.match(err.message, message);
}

describe('an invalid URL is an invalid argument naming the wrong part', () => {
  for (const [url, message] of INVALID) {
    it(`${url} through a Client: a rejected promise, no pool`, async () => {
      const agent = new Agent();
      try {
        const client = new Client({ agent });
        let p: Promise<unknown> | undefined;
        assert.doesNotThrow(() => {
          p = client.request(url);
        }, 'request() threw instead of rejecting');
        await refused(p!, message);
        // A second time: nothing half-made by the first attempt (a cached parse) changes the answer.
        await refused(client.request(url), message);
        assert.deepEqual(agent.stats(), { open: 0, origins: [] });
      } finally {
        await agent.destroy();
      }
    });
  }

  it('through request() on the global agent', async () => {
    for (const [url, message] of INVALID) await refused(request(url), message);
  });

  it('as a Client baseUrl: thrown when the Client is made', () => {
    for (const [url, message] of INVALID) {
      assert.throws(
        () => new Client({ baseUrl: url }),
        (err: unknown) =>
          err instanceof InvalidArgumentError &&
          err.code === 'WARMPOOL_INVALID_ARGUMENT' &&
          message.test(err.message),
      );
    }
  });

  it('an absolute URL, or a relative one naming another authority, against a valid baseUrl', async () => {
    const agent = new Agent();
    try {
      const client = new Client({ agent, baseUrl: 'http://127.0.0.1:1/api' });
      for (const [url, message] of INVALID.filter(([u]) => u.includes('://'))) {
        await refused(client.request(url), message);
      }
      // A special scheme followed by no '//' still names an authority: 'https:host' is https://host/.
      await refused(client.request('https:256.0.0.1'), /invalid host "256\.0\.0\.1"/);
      await refused(client.request('https:127.0.0.1:99999/x'), /port 99999 is out of range/);
      assert.deepEqual(agent.stats(), { open: 0, origins: [] });
    } finally {
      await agent.destroy();
    }
  });

  it('no URL at all (undefined, null, a number): refused the same way, with or without a baseUrl', async () => {
    const agent = new Agent();
    try {
      for (const client of [new Client({ agent }), new Client({ agent, baseUrl: 'http://127.0.0.1:1' })]) {
        for (const url of [undefined, null, 80]) {
          await refused(
            client.request(url as unknown as string),
            /the URL must be a string or a URL, got (undefined|null|number)/,
          );
        }
      }
      assert.deepEqual(agent.stats(), { open: 0, origins: [] });
    } finally {
      await agent.destroy();
    }
  });

  it('URL objects: another scheme, or credentials, are refused the same way', async () => {
    // (A URL object cannot hold an invalid host or port: new URL() refuses to make one.)
    const agent = new Agent();
    try {
      const client = new Client({ agent });
      await refused(client.request(new URL('ftp://127.0.0.1/')), /unsupported URL scheme ftp:/);
      await refused(client.request(new URL('http://u:p@127.0.0.1/')), /credentials/);
      const withBase = new Client({ agent, baseUrl: 'http://127.0.0.1:1' });
      await refused(withBase.request(new URL('ftp://127.0.0.1/')), /unsupported URL scheme ftp:/);
      assert.deepEqual(agent.stats(), { open: 0, origins: [] });
    } finally {
      await agent.destroy();
    }
  });
});
