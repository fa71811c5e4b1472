/**
 * warmpool/testing's MockAgent: answers from interceptors through warmpool's own connection, parser
 * and body (real Responses), wherever an Agent goes (a Client, request() via setGlobalAgent, the
 * undici dispatcher); the reply forms, times/persist/delay, matching on headers and body, the
 * not-matched error, network access per origin, and pending interceptors. Timeouts, abort and the
 * retry policy act on it as on a server.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import {
  Agent,
  Client,
  ResponseBody,
  WarmpoolDispatcher,
  fetch,
  getGlobalAgent,
  request,
  setGlobalAgent,
} from '../src/index.js';
import { MockAgent, MockNotMatchedError, MockPendingInterceptorsError } from '../src/testing/index.js';
import { startHttpServer } from './helpers/http-server.js';
import { rejectsWith } from './helpers/pool-util.js';

const API = 'https://api.example.test';

describe('MockAgent', () => {
  const mocks: MockAgent[] = [];
  const mock = () => {
    const m = new MockAgent();
    mocks.push(m);
    return m;
  };
  after(async () => {
    for (const m of mocks) await m.destroy();
  });

  it('answers request() and fetch() given it as `agent`, without touching the global Agent', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/r' }).reply(200, 'via request');
    m.intercept({ origin: API, path: '/f' }).reply(201, 'via fetch', { 'content-type': 'text/plain' });
    const global = getGlobalAgent();
    const res = await request(`${API}/r`, { agent: m });
    assert.equal(await res.body.text(), 'via request');
    const fetched = await fetch(`${API}/f`, { agent: m });
    assert.equal(fetched.status, 201);
    assert.equal(await fetched.text(), 'via fetch');
    assert.equal(getGlobalAgent(), global);
    m.assertNoPendingInterceptors();
  });

  it("a Client refuses another Agent in a request's options; a non-Agent is an invalid argument", async () => {
    const m = mock();
    const other = new Agent();
    try {
      await rejectsWith(
        new Client({ agent: other }).request(`${API}/x`, { agent: m }),
        'WARMPOOL_INVALID_ARGUMENT',
      );
      await rejectsWith(request(`${API}/x`, { agent: {} as Agent }), 'WARMPOOL_INVALID_ARGUMENT');
    } finally {
      await other.destroy();
    }
  });

  it('answers a Client with a real Response: status, headers, a ResponseBody, marked as mocked', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/items' }).reply(200, 'hello', {
      'x-a': '1',
      'set-cookie': ['a=1', 'b=2'],
    });
    const client = new Client({ agent: m, baseUrl: API });
    const res = await client.request('/items');
    assert.equal(res.status, 200);
    assert.equal(res.statusText, 'OK');
    assert.equal(res.headers['x-a'], '1');
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(res.headers['content-length'], '5');
    assert.ok(res.body instanceof ResponseBody);
    assert.equal(await res.body.text(), 'hello');
    assert.equal(res.connection.mocked, true);
    assert.equal(res.url, `${API}/items`);
    const stats = m.originStats(API)!;
    assert.equal(stats.requests, 1);
    assert.equal(stats.busy, 0);
  });

  it('sends an object as JSON, and reads the request in a function reply', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/json' }).reply(201, { ok: true, n: [1, 2] });
    m.intercept({ origin: API, path: '/echo', method: 'POST' }).reply(async (req) => ({
      status: 200,
      body: { method: req.method, path: req.path, body: req.body, type: req.headers['content-type'] },
      headers: { 'x-host': String(req.headers.host) },
    }));
    const client = new Client({ agent: m, baseUrl: API });
    const json = await client.request('/json');
    assert.equal(json.status, 201);
    assert.equal(json.headers['content-type'], 'application/json');
    assert.deepEqual(await json.body.json(), { ok: true, n: [1, 2] });
    const echo = await client.request('/echo', {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'Content-Type': 'application/json' },
    });
    assert.equal(echo.headers['x-host'], 'api.example.test');
    assert.deepEqual(await echo.body.json(), {
      method: 'POST',
      path: '/echo',
      body: '{"a":1}',
      type: 'application/json',
    });
  });

  it('times(n), persist(), and WARMPOOL_MOCK_NOT_MATCHED naming the request once used up', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/twice' }).reply(200, 'x').times(2);
    m.intercept({ origin: API, path: /^\/always/ })
      .reply(204)
      .persist();
    const client = new Client({ agent: m, baseUrl: API });
    for (let i = 0; i < 2; i++) await (await client.request('/twice')).body.dump();
    for (let i = 0; i < 5; i++) assert.equal((await client.request(`/always/${i}`)).status, 204);
    const err = await rejectsWith(client.request('/twice?x=1'), 'WARMPOOL_MOCK_NOT_MATCHED', API);
    assert.ok(err instanceof MockNotMatchedError);
    assert.match(err.message, /GET https:\/\/api\.example\.test\/twice\?x=1/);
    m.assertNoPendingInterceptors();
  });

  it('matches on method, headers and body (strings, RegExps, functions), a stream body included', async () => {
    const m = mock();
    m.intercept({
      origin: API,
      path: '/upload',
      method: 'PUT',
      headers: { Authorization: /^Bearer /, 'x-n': (v) => Number(v) > 1 },
      body: 'chunk1chunk2',
    }).reply(200, 'stored');
    m.intercept({ origin: API, path: '/upload', method: 'PUT' }).reply(403, 'no');
    const client = new Client({ agent: m, baseUrl: API });
    const denied = await client.request('/upload', {
      method: 'PUT',
      body: 'chunk1chunk2',
      headers: { 'x-n': '2' },
    });
    assert.equal(denied.status, 403);
    await denied.body.dump();
    const ok = await client.request('/upload', {
      method: 'PUT',
      body: Readable.from([Buffer.from('chunk1'), Buffer.from('chunk2')]),
      headers: { authorization: 'Bearer t', 'x-n': '2' },
    });
    assert.equal(ok.status, 200);
    assert.equal(await ok.body.text(), 'stored');
  });

  it('replyWithError fails the request with that error; a HEAD gets the head only; a chunked reply is chunked', async () => {
    const m = mock();
    const boom = new Error('boom');
    m.intercept({ origin: API, path: '/err' }).replyWithError(boom);
    m.intercept({ origin: API, path: '/head', method: 'HEAD' }).reply(200, 'body not sent');
    const client = new Client({ agent: m, baseUrl: API });
    await assert.rejects(client.request('/err'), (e) => e === boom);
    const head = await client.request('/head', { method: 'HEAD' });
    assert.equal(head.headers['content-length'], '13');
    assert.equal(await head.body.text(), '');
    m.intercept({ origin: API, path: '/chunked' }).reply(200, 'in chunks', {
      'Transfer-Encoding': 'chunked',
    });
    const chunked = await client.request('/chunked');
    assert.equal(chunked.headers['content-length'], undefined);
    assert.equal(await chunked.body.text(), 'in chunks');
  });

  it('delay(): headersTimeout and the abort signal act as with a server', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/slow' }).reply(200, 'late').delay(60_000).times(2);
    const client = new Client({ agent: m, baseUrl: API });
    await rejectsWith(client.request('/slow', { headersTimeout: 20 }), 'WARMPOOL_HEADERS_TIMEOUT', API);
    const ac = new AbortController();
    const p = client.request('/slow', { signal: ac.signal });
    setImmediate(() => ac.abort());
    await rejectsWith(p, 'WARMPOOL_ABORTED', API);
  });

  it('the retry policy retries a mocked 503 as a served one', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/flaky' }).reply(503, 'busy', { 'retry-after': '0' });
    m.intercept({ origin: API, path: '/flaky' }).reply(200, 'fine');
    const res = await new Client({ agent: m }).request(`${API}/flaky`, { retry: {} });
    assert.equal(res.status, 200);
    assert.equal(res.attempts, 2);
    assert.equal(await res.body.text(), 'fine');
    assert.equal(m.originStats(API)!.retried, 1);
  });

  it('serves request() through setGlobalAgent, and the undici dispatcher (Node fetch)', async () => {
    const m = mock();
    m.intercept({ origin: 'http://svc.test:8080', path: '/g' }).reply(200, 'global');
    m.intercept({ origin: 'http://svc.test:8080', path: '/f' }).reply(200, 'fetched', {
      'content-type': 'text/plain',
    });
    const old = setGlobalAgent(m);
    try {
      assert.equal(getGlobalAgent(), m);
      const res = await request('http://svc.test:8080/g');
      assert.equal(await res.body.text(), 'global');
    } finally {
      if (old !== undefined) setGlobalAgent(old);
    }
    const dispatcher = new WarmpoolDispatcher({ agent: m });
    const res = await globalThis.fetch('http://svc.test:8080/f', { dispatcher } as unknown as RequestInit);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'fetched');
  });

  it('network access only where enabled: unmatched requests go to the real origin', async () => {
    const server = await startHttpServer((_req, res) => {
      res.end('real');
    });
    try {
      const m = mock();
      m.intercept({ origin: server.url, path: '/mocked' }).reply(200, 'mock');
      const client = new Client({ agent: m, baseUrl: server.url });
      await rejectsWith(client.request('/other'), 'WARMPOOL_MOCK_NOT_MATCHED');
      m.enableNetConnect(server.url);
      const mocked = await client.request('/mocked');
      assert.equal(await mocked.body.text(), 'mock');
      const real = await client.request('/other');
      assert.equal(await real.body.text(), 'real');
      assert.equal(real.connection.mocked, undefined);
      assert.equal(server.stats.requestsTotal, 1);
      await rejectsWith(new Client({ agent: m }).request(`${API}/x`), 'WARMPOOL_MOCK_NOT_MATCHED');
      m.disableNetConnect();
      await rejectsWith(client.request('/other'), 'WARMPOOL_MOCK_NOT_MATCHED');
    } finally {
      await server.close();
    }
  });

  it('assertNoPendingInterceptors lists those never used up', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/used' }).reply(200);
    m.intercept({ origin: API, path: '/never', method: 'DELETE' }).reply(200);
    m.intercept({ origin: API, path: '/thrice' }).reply(200).times(3);
    m.intercept({ origin: API, path: '/persistent' }).reply(200).persist();
    const client = new Client({ agent: m, baseUrl: API });
    await (await client.request('/used')).body.dump();
    await (await client.request('/thrice')).body.dump();
    assert.throws(
      () => m.assertNoPendingInterceptors(),
      (e: unknown) =>
        e instanceof MockPendingInterceptorsError &&
        e.code === 'WARMPOOL_MOCK_PENDING_INTERCEPTORS' &&
        /3 interceptors are pending/.test(e.message) &&
        /DELETE https:\/\/api\.example\.test\/never/.test(e.message) &&
        /\/thrice \(2 left/.test(e.message) &&
        /\/persistent \(persistent, used 0\)/.test(e.message) &&
        !/\/used/.test(e.message),
    );
    assert.equal(m.pendingInterceptors().length, 3);
  });

  it('refuses bad interceptors and replies with InvalidArgumentError', () => {
    const m = mock();
    assert.throws(() => m.intercept({ origin: 'not a url', path: '/' }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
    assert.throws(() => m.intercept({ origin: API, path: 1 as never }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
    assert.throws(() => m.intercept({ origin: API, path: '/' }).reply(99), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
    assert.throws(() => m.intercept({ origin: API, path: '/' }).reply(200, '', { 'x-a': 'a\r\nb: c' }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
    assert.throws(() => m.intercept({ origin: API, path: '/' }).reply(200).times(0), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
  });
});
