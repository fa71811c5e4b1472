/**
 * Middleware: the order (first outermost), the request as a plain object (absolute url, method,
 * lowercase merged headers, the other options), next(changed) sending a changed copy, use() and
 * with() making Clients on the same Agent, and middleware outside the retry loop.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, Client, InvalidArgumentError, type Middleware, type Response } from '../src/index.js';
import { type TestHttpServer, startHttpServer } from './helpers/http-server.js';
import { rejectsWith } from './helpers/pool-util.js';

describe('middleware', () => {
  let server: TestHttpServer;
  let agent: Agent;
  let n = 0;
  before(async () => {
    server = await startHttpServer(async (req, res) => {
      let body = '';
      for await (const c of req) body += c;
      n++;
      if (req.url === '/flaky' && n % 2 === 1) {
        res.statusCode = 503;
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    });
    agent = new Agent();
  });
  after(async () => {
    await agent.destroy();
    await server.close();
  });

  it('runs in order, the first outermost, around one send', async () => {
    const log: string[] = [];
    const tag =
      (name: string): Middleware =>
      async (req, next) => {
        log.push(`${name} >`);
        const res = await next(req);
        log.push(`${name} < ${res.status}`);
        return res;
      };
    const client = new Client({ agent, baseUrl: server.url, middleware: [tag('a'), tag('b')] });
    const res = await client.request('/');
    await res.body.dump();
    assert.deepEqual(log, ['a >', 'b >', 'b < 200', 'a < 200']);
  });

  it('sees a plain request: absolute url, method, lowercase merged headers, the other options', async () => {
    let seen: Parameters<Middleware>[0] | undefined;
    const signal = new AbortController().signal;
    const client = new Client({
      agent,
      baseUrl: `${server.url}/api`,
      headers: { 'X-Default': 'd', Accept: 'text/plain' },
      middleware: [
        (req, next) => {
          seen = req;
          return next(req);
        },
      ],
    });
    const res = await client.request('/items?q=1', {
      method: 'PUT',
      headers: [
        ['Accept', 'application/json'],
        ['X-Multi', '1'],
        ['x-multi', '2'],
      ],
      body: 'hello',
      signal,
      headersTimeout: 5000,
    });
    await res.body.dump();
    assert.ok(seen !== undefined);
    assert.equal(seen.url, `${server.url}/api/items?q=1`);
    assert.equal(seen.method, 'PUT');
    assert.deepEqual(seen.headers, { 'x-default': 'd', accept: 'application/json', 'x-multi': ['1', '2'] });
    assert.equal(seen.body, 'hello');
    assert.equal(seen.signal, signal);
    assert.equal(seen.headersTimeout, 5000);
  });

  it('next(changed) sends the changed copy: a signing middleware adds a header from the body', async () => {
    const sign: Middleware = (req, next) =>
      next({ ...req, headers: { ...req.headers, 'x-signature': `sig(${req.method} ${String(req.body)})` } });
    const client = new Client({ agent, baseUrl: server.url, headers: { 'x-default': 'd' } }).use(sign);
    const res = await client.request('/signed', { method: 'POST', body: 'data' });
    const echo = await res.body.json<{ headers: Record<string, string>; body: string }>();
    assert.equal(echo.headers['x-signature'], 'sig(POST data)');
    assert.equal(echo.headers['x-default'], 'd', 'default headers arrive once, merged before middleware');
    assert.equal(echo.body, 'data');
  });

  it('use() and with() make new Clients on the same Agent; the original is unchanged', async () => {
    const calls: string[] = [];
    const base = new Client({ agent, baseUrl: server.url });
    const a = base.use((req, next) => {
      calls.push('a');
      return next(req);
    });
    const ab = a.use((req, next) => {
      calls.push('b');
      return next(req);
    });
    const abHeaders = ab.with({ headers: { 'x-with': '1' } });
    assert.equal(a.agent, agent);
    assert.equal(ab.agent, agent);
    assert.equal(base.middleware.length, 0);
    assert.equal(a.middleware.length, 1);
    await (await base.request('/')).body.dump();
    assert.deepEqual(calls, []);
    await (await ab.request('/')).body.dump();
    assert.deepEqual(calls, ['a', 'b']);
    const res = await abHeaders.request('/');
    const echo = await res.body.json<{ headers: Record<string, string> }>();
    assert.equal(echo.headers['x-with'], '1');
    assert.deepEqual(calls, ['a', 'b', 'a', 'b']);
  });

  it('sits outside the retry policy: one call, res.attempts counts the attempts', async () => {
    let calls = 0;
    n = 0;
    const client = new Client({
      agent,
      baseUrl: server.url,
      retry: { backoff: { baseMs: 1 } },
      middleware: [
        (req, next) => {
          calls++;
          return next(req);
        },
      ],
    });
    const res = await client.request('/flaky');
    await res.body.dump();
    assert.equal(res.status, 200);
    assert.equal(res.attempts, 2);
    assert.equal(calls, 1);
  });

  it('can answer without sending, and its errors reject the request', async () => {
    let cached: Response | undefined;
    const cache: Middleware = async (req, next) => {
      if (cached !== undefined && req.method === 'GET') return cached;
      cached = await next(req);
      return cached;
    };
    const client = new Client({ agent, baseUrl: server.url, middleware: [cache] });
    n = 0;
    const first = await client.request('/cached');
    const second = await client.request('/cached');
    assert.equal(first, second);
    assert.equal(n, 1);
    await first.body.dump();

    const boom = new Client({
      agent,
      middleware: [
        () => {
          throw new Error('boom');
        },
      ],
    });
    await assert.rejects(boom.request(`${server.url}/`), /boom/);
    const badNext = new Client({ agent, middleware: [(_req, next) => next(undefined as never)] });
    await rejectsWith(badNext.request(`${server.url}/`), 'WARMPOOL_INVALID_ARGUMENT');
    await rejectsWith(
      new Client({ agent, middleware: [(req, next) => next(req)] }).request('not a url'),
      'WARMPOOL_INVALID_ARGUMENT',
    );
  });

  it('a bad middleware option is an InvalidArgumentError', () => {
    assert.throws(() => new Client({ middleware: [1 as never] }), InvalidArgumentError);
    assert.throws(() => new Client({ middleware: (() => {}) as never }), InvalidArgumentError);
    assert.throws(() => new Client().use('x' as never), InvalidArgumentError);
  });
});
