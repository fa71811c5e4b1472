/**
 * Redirects and content decoding as parts of the core: request() with `maxRedirections` and
 * `decompress` (both off by default), and the redirect rules as pure decisions (nextHop).
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { nextHop } from '../src/client/redirect.js';
import { Agent, Client, InvalidArgumentError, RedirectError, request } from '../src/index.js';
import { startHttpServer } from './helpers/http-server.js';
import { rejectsWith } from './helpers/pool-util.js';

const T = 20_000;

test('nextHop: method and body per status, body headers dropped with the body, credentials dropped across origins', () => {
  const hop = {
    url: 'http://a.test/x',
    method: 'POST',
    headers: [
      ['Content-Type', 'text/plain'],
      ['Authorization', 'secret'],
      ['Host', 'a.test'],
      ['X-Keep', '1'],
    ] as Array<[string, string]>,
    body: 'payload',
  };
  const from = 'http://a.test/x';
  const cases: Array<[number, string, string, string, boolean]> = [
    // status, method in, Location, method out, body kept
    [301, 'POST', '/y', 'GET', false],
    [302, 'POST', '/y', 'GET', false],
    [301, 'PUT', '/y', 'PUT', true],
    [303, 'PUT', '/y', 'GET', false],
    [303, 'HEAD', '/y', 'HEAD', true],
    [307, 'POST', '/y', 'POST', true],
    [308, 'DELETE', '/y', 'DELETE', true],
  ];
  for (const [status, method, location, out, kept] of cases) {
    const next = nextHop({ ...hop, method }, from, status, location)!;
    assert.equal(next.method, out, `${status} ${method}`);
    assert.equal(next.body !== undefined, kept, `${status} ${method} body`);
    const names = (next.headers as Array<[string, string]>).map(([n]) => n.toLowerCase());
    assert.equal(names.includes('content-type'), kept);
    assert.ok(!names.includes('host'), 'host never follows a redirect');
    assert.ok(names.includes('authorization'), 'same origin keeps credentials');
    assert.ok(names.includes('x-keep'));
  }
  const cross = nextHop(hop, from, 307, 'https://b.test/z#frag')!;
  assert.equal(cross.url, 'https://b.test/z');
  assert.ok(!(cross.headers as Array<[string, string]>).some(([n]) => n === 'Authorization'));
  // https to http on the same host is another origin too.
  const down = nextHop({ ...hop, url: 'https://a.test/x' }, 'https://a.test/x', 302, 'http://a.test/y')!;
  assert.ok(!(down.headers as Array<[string, string]>).some(([n]) => n === 'Authorization'));
  assert.equal(nextHop(hop, from, 302, undefined), null);
  assert.throws(() => nextHop(hop, from, 302, 'javascript:alert(1)'), RedirectError);
  assert.throws(() => nextHop(hop, from, 302, 'http://[bad'), RedirectError);
  assert.throws(() => nextHop({ ...hop, body: Readable.from(['x']) }, from, 307, '/y'), RedirectError);
  // A UTF-8 Location arrives as latin1 text; it is read as UTF-8, not encoded twice.
  const utf8 = nextHop(hop, from, 302, Buffer.from('/café', 'utf8').toString('latin1'))!;
  assert.equal(utf8.url, 'http://a.test/caf%C3%A9');
});

test(
  'request() hands a redirect back by default, follows with maxRedirections, and fails past the limit',
  { timeout: T },
  async () => {
    const server = await startHttpServer((req, res) => {
      const n = Number(req.url!.slice(1));
      if (n > 0) {
        res.writeHead(302, { location: `/${n - 1}` });
        res.end('hop');
      } else res.end(`arrived with ${req.method}`);
    });
    const agent = new Agent();
    try {
      const client = new Client({ agent, baseUrl: server.url });
      const plain = await client.request('/2');
      assert.equal(plain.status, 302);
      await plain.body.dump();
      const followed = await client.request('/2', { maxRedirections: 2 });
      assert.equal(followed.status, 200);
      assert.equal(followed.url, `${server.url}/0`);
      assert.equal(await followed.body.text(), 'arrived with GET');
      const err = await rejectsWith(client.request('/3', { maxRedirections: 2 }), 'WARMPOOL_REDIRECT_ERROR');
      assert.ok(err instanceof RedirectError);
      assert.equal(err.statusCode, 302);
      const byDefault = await client.with({ maxRedirections: 5 }).request('/3');
      assert.equal(await byDefault.body.text(), 'arrived with GET');
      assert.equal(
        agent.originStats(server.url)?.created,
        1,
        'every hop and drained redirect reused one connection',
      );
    } finally {
      await agent.destroy();
      await server.close();
    }
  },
);

test(
  "request() redirects across origins drop the Client's default credentials too",
  { timeout: T },
  async () => {
    let seen: http.IncomingHttpHeaders | undefined;
    const other = await startHttpServer((req, res) => {
      seen = req.headers;
      res.end('other');
    });
    const server = await startHttpServer((_req, res) => {
      res.writeHead(307, { location: `${other.url}/landed` });
      res.end();
    });
    const agent = new Agent();
    try {
      const client = new Client({ agent, headers: { authorization: 'Bearer from-client', 'x-trace': 't' } });
      const res = await client.request(server.url, { maxRedirections: 1 });
      assert.equal(await res.body.text(), 'other');
      assert.equal(seen!.authorization, undefined);
      assert.equal(seen!['x-trace'], 't');
    } finally {
      await agent.destroy();
      await server.close();
      await other.close();
    }
  },
);

test(
  'request() with decompress: true decodes and asks for the codings; without it the bytes stay as sent',
  { timeout: T },
  async () => {
    let acceptEncoding: string | undefined;
    const server = await startHttpServer((req, res) => {
      acceptEncoding = req.headers['accept-encoding'];
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(zlib.gzipSync('decoded text'));
    });
    const agent = new Agent();
    try {
      const client = new Client({ agent });
      const raw = await client.request(server.url);
      assert.deepEqual(zlib.gunzipSync(await raw.body.bytes()).toString(), 'decoded text');
      assert.equal(acceptEncoding, undefined, 'request() adds no accept-encoding of its own');
      const res = await client.request(server.url, { decompress: true });
      assert.equal(await res.body.text(), 'decoded text');
      assert.match(acceptEncoding!, /gzip/);
      assert.equal(res.headers['content-encoding'], 'gzip');
      const own = await client.request(server.url, {
        decompress: true,
        headers: { 'accept-encoding': 'gzip' },
      });
      await own.body.dump();
      assert.equal(acceptEncoding, 'gzip');
      // A decoded body still streams, and still holds its connection until its end.
      const streamed = await client.request(server.url, { decompress: true });
      let text = '';
      for await (const chunk of streamed.body) text += chunk;
      assert.equal(text, 'decoded text');
      assert.equal(agent.originStats(server.url)?.busy, 0);
    } finally {
      await agent.destroy();
      await server.close();
    }
  },
);

test('maxRedirections and decompress are checked: bad values are InvalidArgumentErrors', async () => {
  for (const init of [
    { maxRedirections: -1 },
    { maxRedirections: 1.5 },
    { maxRedirections: '2' },
    { decompress: 'yes' },
  ]) {
    await assert.rejects(request('http://127.0.0.1:1/', init as never), InvalidArgumentError);
    assert.throws(() => new Client(init as never), InvalidArgumentError);
  }
});

test(
  'content-encoding with more than five codings is refused, not decoded layer by layer',
  { timeout: T },
  async () => {
    const server = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip, gzip, gzip, gzip, gzip, gzip' });
      res.end('x');
    });
    const agent = new Agent();
    try {
      await rejectsWith(
        new Client({ agent }).request(server.url, { decompress: true }),
        'WARMPOOL_DECODE_ERROR',
      );
    } finally {
      await agent.destroy();
      await server.close();
    }
  },
);
