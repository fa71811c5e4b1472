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

/** [what, options of the wrong shape, what the message must name] */
const BAD_REQUEST_OPTIONS: Array<[string, unknown, RegExp]> = [
  ['options null', null, /request options must be an object, got null/],
  ['options a number', 5, /request options must be an object, got number 5/],
  ['a number as method', { method: 123 }, /method must be a string, got number 123/],
  ['a number as headers', { headers: 5 }, /headers must be an object/],
  ['a string as headers', { headers: 'x' }, /headers must be an object/],
  ['a plain object as signal', { signal: {} }, /signal must be an AbortSignal/],
  ['a string as idempotent', { idempotent: 'yes' }, /idempotent must be a boolean/],
  ['a number as retryOnStale', { retryOnStale: 1 }, /retryOnStale must be a boolean/],
  ['a number as onInformation', { onInformation: 5 }, /onInformation must be a function/],
  ['a negative highWaterMark', { highWaterMark: -1 }, /highWaterMark must be a number >= 1/],
  ['a string as highWaterMark', { highWaterMark: '64' }, /highWaterMark must be a number >= 1/],
  ['a number as tls', { tls: 5 }, /tls must be an object/],
];

describe('request options of the wrong shape are invalid arguments naming the option, before anything is sent', () => {
  for (const [what, init, message] of BAD_REQUEST_OPTIONS) {
    it(what, async () => {
      const agent = new Agent();
      try {
        const client = new Client({ agent });
        await refused(client.request('http://127.0.0.1:9/', init as never), message);
        assert.deepEqual(agent.stats(), { open: 0, origins: [] });
      } finally {
        await agent.destroy();
      }
    });
  }
});

describe('Client and Agent options of the wrong shape throw an invalid argument naming the option', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['Client(null)', () => new Client(null as never), /Client options must be an object, got null/],
    ['a number as baseUrl', () => new Client({ baseUrl: 5 as never }), /baseUrl must be a string/],
    ['a plain object as agent', () => new Client({ agent: {} as never }), /agent must be an Agent/],
    ['a number as Client headers', () => new Client({ headers: 5 as never }), /headers must be an object/],
    ['Agent(null)', () => new Agent(null as never), /Agent options must be an object, got null/],
    [
      'a string as allowHttp2',
      () => new Agent({ allowHttp2: 'no' as never }),
      /allowHttp2 must be a boolean/,
    ],
    ['a number as Agent tls', () => new Agent({ tls: 5 as never }), /tls must be an object/],
    ['a clock without its methods', () => new Agent({ clock: {} as never }), /clock must have/],
  ];
  for (const [what, make, message] of cases) {
    it(what, () => {
      assert.throws(make, (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, `got ${String(err)}`);
        assert.equal(err.code, 'WARMPOOL_INVALID_ARGUMENT');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});
