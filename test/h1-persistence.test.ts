/**
 * HTTP/1.1 through real sockets: what the conformance corpus lacks.
 *
 * - The request writer: the exact bytes on the wire (host, content-length for string and Buffer
 *   bodies, chunked for streams, nothing for GET/HEAD, content-length: 0 for an empty POST), and head
 *   plus a small body in one segment.
 * - Persistence: HEAD with Content-Length and with chunked, 204 and 304 followed by another response
 *   on the same connection, HTTP/1.0 with and without keep-alive, `Connection: keep-alive, close`, TE
 *   plus CL, trailers, 100-continue then 200, truncated chunked and Content-Length bodies, oversized
 *   heads, `Keep-Alive: timeout=` and `max=`. Wherever a connection must not be reused, the server keeps
 *   it open (when the case allows) so that only the client can have closed it, and the next request
 *   is shown to open a new connection; wherever it may be reused, the next request is shown to reuse it.
 * - Header injection: CR/LF in a header value, a space in a header name, control characters in the
 *   URL, an invalid method: WARMPOOL_INVALID_ARGUMENT before a single byte is written (the server
 *   never even sees a connection).
 * - res.trailers, res.httpVersion, repeated fields and set-cookie as arrays.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  Agent,
  type AgentOptions,
  Client,
  type InformationalResponse,
  type Response,
  type ResponseBody,
  WarmpoolError,
} from '../src/index.js';
import { rejectsWith, sleep, waitFor } from './helpers/pool-util.js';
import { type RawConnection, type RawServer, type RawStep, startRawServer } from './helpers/raw-server.js';

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
/** Bounds that turn a hang into a failure; never what a test measures. */
const LIMIT_MS = 3000;

/** Connection 0 answers each request in turn with the next of `responses`, then `after`. */
function answers(responses: (string | Buffer)[], after: RawStep = { kind: 'keep-open' }): RawStep[] {
  const steps: RawStep[] = [];
  for (const r of responses) steps.push({ kind: 'await-request' }, { kind: 'write', data: r });
  steps.push(after);
  return steps;
}

/** Later connections answer one request with OK and stay open. */
const LATER: RawStep[] = answers([OK]);

interface Ctx {
  server: RawServer;
  agent: Agent;
  client: Client;
  url: string;
}

async function withServer(
  first: RawStep[],
  fn: (ctx: Ctx) => Promise<void>,
  agentOptions: AgentOptions = {},
): Promise<void> {
  const server = await startRawServer((i) => (i === 0 ? first : LATER));
  const agent = new Agent(agentOptions);
  const client = new Client({ agent, headersTimeout: LIMIT_MS, bodyTimeout: LIMIT_MS });
  try {
    await fn({ server, agent, client, url: server.url });
  } finally {
    await agent.destroy();
    await server.close();
  }
}

/** Request lines the server saw on a connection. */
function requestsOn(conn: RawConnection): string[] {
  return conn.text().match(/(?<=^|\n)[A-Z]+ \S+ HTTP\/1\.1(?=\r\n)/g) ?? [];
}

/** The bytes of the i-th request on a connection, head and body (requests without bodies only, or the last). */
function heads(conn: RawConnection): string[] {
  return conn
    .text()
    .split(/(?=(?:GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) \S+ HTTP\/1\.1\r\n)/)
    .filter((s) => s !== '');
}

/** The next request reuses the first one's connection. */
async function assertReuses(ctx: Ctx, first: Response, path = '/next'): Promise<void> {
  const res = await ctx.client.request(`${ctx.url}${path}`);
  assert.equal(await res.body.text(), 'ok');
  assert.equal(res.connection.reused, true, 'the connection was not reused');
  assert.equal(res.connection.id, first.connection.id);
  assert.equal(ctx.server.connections.length, 1);
}

/**
 * The client closed the first connection by itself (the server kept it open), and the next request
 * went on a new one, without being sent on the old one first.
 */
async function assertClosedByClientThenNew(ctx: Ctx, first: Response | undefined): Promise<void> {
  const conn0 = ctx.server.connections[0];
  await waitFor(() => conn0.closed !== undefined, 'the first connection to close', LIMIT_MS);
  assert.equal(conn0.closed, 'by-client', 'the server closed it, so this proves nothing about the client');
  await assertNewConnection(ctx, first);
}

/** The next request opens a new connection; nothing more was written on the first one. */
async function assertNewConnection(ctx: Ctx, first: Response | undefined): Promise<void> {
  const before = requestsOn(ctx.server.connections[0]).length;
  const res = await ctx.client.request(`${ctx.url}/next`);
  assert.equal(await res.body.text(), 'ok');
  assert.equal(res.connection.reused, false, 'the connection was reused');
  assert.equal(res.retried, false, 'the request was first sent on the old connection');
  if (first !== undefined) assert.notEqual(res.connection.id, first.connection.id);
  assert.equal(ctx.server.connections.length, 2, 'no new connection was opened');
  assert.equal(requestsOn(ctx.server.connections[0]).length, before, 'written on the old connection');
}

/** How a body read as a stream ends: 'end', or the error it emitted. Bounded. */
function streamOutcome(
  body: ResponseBody,
): Promise<{ chunks: Buffer[]; end: 'end' | WarmpoolError | string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => resolve({ chunks, end: 'neither end nor error' }), LIMIT_MS);
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('end', () => {
      clearTimeout(timer);
      resolve({ chunks, end: 'end' });
    });
    body.on('error', (err) => {
      clearTimeout(timer);
      resolve({ chunks, end: err instanceof WarmpoolError ? err : String(err) });
    });
  });
}

// -------------------------------------------------------------------------------------------------

describe('request writer: the exact bytes', () => {
  it('GET: request line, host with the port, no framing header, nothing else', async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/a/b?c=1&d=%20`);
      assert.equal(await res.body.text(), 'ok');
      assert.equal(
        ctx.server.connections[0].text(),
        `GET /a/b?c=1&d=%20 HTTP/1.1\r\nhost: 127.0.0.1:${ctx.server.port}\r\n\r\n`,
      );
    });
  });

  it('HEAD: no body and no length', async () => {
    await withServer(answers(['HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n']), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`, { method: 'HEAD' });
      assert.equal(await res.body.text(), '');
      assert.equal(
        ctx.server.connections[0].text(),
        `HEAD / HTTP/1.1\r\nhost: 127.0.0.1:${ctx.server.port}\r\n\r\n`,
      );
    });
  });

  it("GET with body '' sends no content-length (an empty body is no body)", async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`, { body: '' });
      await res.body.text();
      assert.equal(
        ctx.server.connections[0].text(),
        `GET / HTTP/1.1\r\nhost: 127.0.0.1:${ctx.server.port}\r\n\r\n`,
      );
    });
  });

  it('caller headers go out as given, in order; a caller host replaces the default one', async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`, {
        headers: [
          ['Host', 'example.test'],
          ['X-Trace', 'a'],
          ['x-trace', 'b'],
        ],
      });
      await res.body.text();
      assert.equal(
        ctx.server.connections[0].text(),
        'GET / HTTP/1.1\r\nHost: example.test\r\nX-Trace: a\r\nx-trace: b\r\n\r\n',
      );
    });
  });

  it('POST with a string body: content-length in bytes (UTF-8), head and body in one segment', async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/p`, { method: 'POST', body: 'héllo wörld' });
      await res.body.text();
      const conn = ctx.server.connections[0];
      const expected = Buffer.concat([
        Buffer.from(`POST /p HTTP/1.1\r\nhost: 127.0.0.1:${ctx.server.port}\r\ncontent-length: 13\r\n\r\n`),
        Buffer.from('héllo wörld', 'utf8'),
      ]);
      assert.deepEqual(conn.received(), expected);
      assert.deepEqual(conn.chunks()[0], expected, 'head and body did not arrive in the first data event');
    });
  });

  it('PUT with a Buffer body: content-length, head and body in one segment', async () => {
    await withServer(answers([OK]), async (ctx) => {
      const body = Buffer.from([0, 1, 2, 13, 10, 255]);
      const res = await ctx.client.request(`${ctx.url}/b`, { method: 'PUT', body });
      await res.body.text();
      const conn = ctx.server.connections[0];
      const expected = Buffer.concat([
        Buffer.from(`PUT /b HTTP/1.1\r\nhost: 127.0.0.1:${ctx.server.port}\r\ncontent-length: 6\r\n\r\n`),
        body,
      ]);
      assert.deepEqual(conn.chunks()[0], expected);
      assert.equal(conn.chunks().length, 1);
    });
  });

  it('POST with no body and with an empty body: content-length: 0', async () => {
    await withServer(answers([OK, OK]), async (ctx) => {
      await (await ctx.client.request(`${ctx.url}/1`, { method: 'POST' })).body.text();
      await (await ctx.client.request(`${ctx.url}/2`, { method: 'POST', body: '' })).body.text();
      const host = `host: 127.0.0.1:${ctx.server.port}`;
      assert.deepEqual(heads(ctx.server.connections[0]), [
        `POST /1 HTTP/1.1\r\n${host}\r\ncontent-length: 0\r\n\r\n`,
        `POST /2 HTTP/1.1\r\n${host}\r\ncontent-length: 0\r\n\r\n`,
      ]);
    });
  });

  it('POST with a stream body: transfer-encoding: chunked, one chunk per piece, last-chunk', async () => {
    await withServer(answers([OK, OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/s`, {
        method: 'POST',
        body: Readable.from([Buffer.from('hello'), Buffer.alloc(0), Buffer.from(' streaming world!')]),
      });
      assert.equal(await res.body.text(), 'ok');
      async function* gen() {
        yield new TextEncoder().encode('ab');
        yield new TextEncoder().encode('c');
      }
      const res2 = await ctx.client.request(`${ctx.url}/g`, { method: 'POST', body: gen() });
      assert.equal(await res2.body.text(), 'ok');
      const host = `host: 127.0.0.1:${ctx.server.port}`;
      assert.deepEqual(heads(ctx.server.connections[0]), [
        `POST /s HTTP/1.1\r\n${host}\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n11\r\n streaming world!\r\n0\r\n\r\n`,
        `POST /g HTTP/1.1\r\n${host}\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n`,
      ]);
      assert.equal(res2.connection.reused, true);
    });
  });

  it('a stream body with a caller content-length is sent as is, not chunked', async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/s`, {
        method: 'POST',
        headers: { 'content-length': '7' },
        body: Readable.from([Buffer.from('abc'), Buffer.from('defg')]),
      });
      await res.body.text();
      assert.equal(
        ctx.server.connections[0].text(),
        `POST /s HTTP/1.1\r\nhost: 127.0.0.1:${ctx.server.port}\r\ncontent-length: 7\r\n\r\nabcdefg`,
      );
    });
  });

  it('a stream yielding more than its caller content-length fails the request before the extra bytes are sent', async () => {
    await withServer(answers([OK]), async (ctx) => {
      await rejectsWith(
        ctx.client.request(`${ctx.url}/s`, {
          method: 'POST',
          headers: { 'content-length': '5' },
          body: Readable.from([Buffer.from('abc'), Buffer.from('defg')]),
        }),
        'WARMPOOL_REQUEST_BODY_ERROR',
      );
      await waitFor(() => ctx.server.connections[0].closed !== undefined);
      // The server saw the head and the first chunk, never a byte past the declared length.
      assert.ok(ctx.server.connections[0].text().endsWith('\r\n\r\nabc'));
    });
  });

  it('a stream ending short of its caller content-length fails the request', async () => {
    await withServer(answers([OK]), async (ctx) => {
      await rejectsWith(
        ctx.client.request(`${ctx.url}/s`, {
          method: 'POST',
          headers: { 'content-length': '9' },
          body: Readable.from([Buffer.from('abc'), Buffer.from('defg')]),
        }),
        'WARMPOOL_REQUEST_BODY_ERROR',
      );
    });
  });

  it('a server that answers before a stream body is sent stops the body: its Readable source is destroyed', async () => {
    // The response comes while the body's source is quiet (one chunk, then nothing): without being
    // stopped, the source would be held until it yields again, which this one never does.
    const early = 'HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbig';
    await withServer(
      [{ kind: 'delay', ms: 50 }, { kind: 'write', data: early }, { kind: 'end' }],
      async (ctx) => {
        const source = new Readable({ read() {} });
        source.push('abc');
        const res = await ctx.client.request(`${ctx.url}/upload`, { method: 'POST', body: source });
        assert.equal(res.status, 413);
        assert.equal(await res.body.text(), 'big');
        await waitFor(() => source.destroyed, 'the body source to be destroyed', 2000);
      },
    );
  });

  it('a connection that dies while a stream body is being sent stops the body: its Readable source is destroyed', async () => {
    await withServer([{ kind: 'delay', ms: 50 }, { kind: 'reset' }], async (ctx) => {
      const source = new Readable({ read() {} });
      source.push('abc');
      await rejectsWith(
        ctx.client.request(`${ctx.url}/upload`, { method: 'POST', body: source }),
        'WARMPOOL_SOCKET_CLOSED',
      );
      await waitFor(() => source.destroyed, 'the body source to be destroyed', 2000);
    });
  });

  it('a request with Connection: close is the last on its connection (the client closes it)', async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`, { headers: { connection: 'close' } });
      assert.equal(await res.body.text(), 'ok');
      await assertClosedByClientThenNew(ctx, res);
    });
  });
});

// -------------------------------------------------------------------------------------------------

describe('responses without a body keep the connection', () => {
  it('HEAD answered with Content-Length: no body is read, the connection is reused', async () => {
    await withServer(answers(['HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n', OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`, { method: 'HEAD' });
      assert.equal(res.headers['content-length'], '1000');
      assert.equal((await res.body.bytes()).length, 0);
      await assertReuses(ctx, res);
    });
  });

  it('HEAD answered with Transfer-Encoding: chunked: no body, reused', async () => {
    await withServer(answers(['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`, { method: 'HEAD' });
      assert.equal(res.headers['transfer-encoding'], 'chunked');
      assert.equal(await res.body.text(), '');
      await assertReuses(ctx, res);
    });
  });

  it('HEAD answered with a body it must not have: the stray bytes end the connection', async () => {
    await withServer(answers(['HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello']), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`, { method: 'HEAD' });
      assert.equal(await res.body.text(), '');
      await assertClosedByClientThenNew(ctx, res);
    });
  });

  for (const [status, text] of [
    [204, 'No Content'],
    [304, 'Not Modified'],
  ] as const) {
    it(`${status} (with a Content-Length it must ignore) then a 200 on the same connection`, async () => {
      const head = `HTTP/1.1 ${status} ${text}\r\n${status === 304 ? 'content-length: 50\r\n' : ''}etag: "x"\r\n\r\n`;
      await withServer(answers([head, OK]), async (ctx) => {
        const res = await ctx.client.request(`${ctx.url}/`);
        assert.equal(res.status, status);
        assert.equal(res.statusText, text);
        assert.equal(await res.body.text(), '');
        await assertReuses(ctx, res);
      });
    });

    it(`${status} followed by body bytes it must not have: the stray bytes end the connection`, async () => {
      const bytes = `HTTP/1.1 ${status} ${text}\r\ncontent-length: 5\r\n\r\nhello`;
      await withServer(answers([bytes]), async (ctx) => {
        const res = await ctx.client.request(`${ctx.url}/`);
        assert.equal(res.status, status);
        assert.equal(await res.body.text(), '');
        await assertClosedByClientThenNew(ctx, res);
      });
    });
  }
});

describe('persistence by version and Connection', () => {
  it("HTTP/1.0 without keep-alive: httpVersion '1.0', the client closes the connection after it", async () => {
    await withServer(answers(['HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nhi']), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(res.httpVersion, '1.0');
      assert.equal(await res.body.text(), 'hi');
      await assertClosedByClientThenNew(ctx, res);
    });
  });

  it('HTTP/1.0 with Connection: keep-alive and a length: reused', async () => {
    const r = 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 2\r\n\r\nhi';
    await withServer(answers([r, OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(res.httpVersion, '1.0');
      assert.equal(await res.body.text(), 'hi');
      await assertReuses(ctx, res);
    });
  });

  it('HTTP/1.0 with keep-alive but no length: the body runs to the close, then a new connection', async () => {
    const r = 'HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\nuntil the end';
    await withServer(answers([r], { kind: 'end' }), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(await res.body.text(), 'until the end');
      await assertNewConnection(ctx, res);
    });
  });

  it("HTTP/1.1: httpVersion '1.1'", async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(res.httpVersion, '1.1');
      await res.body.dump();
    });
  });

  for (const value of ['close', 'keep-alive, close', 'Keep-Alive,CLOSE', 'upgrade, close']) {
    it(`Connection: ${value} ends the connection after the response`, async () => {
      const r = `HTTP/1.1 200 OK\r\nconnection: ${value}\r\ncontent-length: 2\r\n\r\nhi`;
      await withServer(answers([r]), async (ctx) => {
        const res = await ctx.client.request(`${ctx.url}/`);
        assert.equal(await res.body.text(), 'hi');
        await assertClosedByClientThenNew(ctx, res);
      });
    });
  }

  it('Connection split over two fields (keep-alive, then close) ends the connection', async () => {
    const r = 'HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi';
    await withServer(answers([r]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(await res.body.text(), 'hi');
      await assertClosedByClientThenNew(ctx, res);
    });
  });

  it('Transfer-Encoding with Content-Length: framed by chunked, then the connection is closed', async () => {
    const r =
      'HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    await withServer(answers([r]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(await res.body.text(), 'hello');
      await assertClosedByClientThenNew(ctx, res);
    });
  });

  it('chunked in an HTTP/1.0 response: read, then the connection is closed', async () => {
    const r =
      'HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n';
    await withServer(answers([r]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(await res.body.text(), 'hi');
      await assertClosedByClientThenNew(ctx, res);
    });
  });

  for (const [what, te] of [
    ['two fields', 'transfer-encoding: chunked\r\ntransfer-encoding: chunked'],
    ['a list', 'transfer-encoding: chunked, chunked'],
  ]) {
    it(`chunked applied twice (${what}): WARMPOOL_PARSE_ERROR, and the client closes the connection`, async () => {
      // Read until close, as it once was, the body would be the chunk framing and the response after it.
      const r = `HTTP/1.1 200 OK\r\n${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n${OK}`;
      await withServer(answers([r]), async (ctx) => {
        const err = await rejectsWith(ctx.client.request(`${ctx.url}/`), 'WARMPOOL_PARSE_ERROR', ctx.url);
        assert.match(err.message, /chunked 2 times/);
        await assertClosedByClientThenNew(ctx, undefined);
      });
    });
  }
});

describe('trailers and interim responses', () => {
  it('res.trailers holds the trailer fields once the body has ended; the connection is reused', async () => {
    const head = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n3\r\nabc\r\n';
    const rest = '3;ext=1\r\ndef\r\n0\r\nX-Checksum: 1234\r\nx-multi: a\r\nX-Multi: b\r\n\r\n';
    const first: RawStep[] = [
      { kind: 'await-request' },
      { kind: 'write', data: head },
      { kind: 'delay', ms: 30 },
      { kind: 'write', data: rest },
      ...answers([OK]),
    ];
    await withServer(first, async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(res.trailers, undefined, 'trailers before the body has ended');
      assert.equal(await res.body.text(), 'abcdef');
      assert.deepEqual(res.trailers, { 'x-checksum': '1234', 'x-multi': ['a', 'b'] });
      await assertReuses(ctx, res);
    });
  });

  it('a chunked body without trailers has res.trailers undefined', async () => {
    const r = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n';
    await withServer(answers([r]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.equal(await res.body.text(), 'hi');
      assert.equal(res.trailers, undefined);
    });
  });

  it('100 Continue and 103 Early Hints go to onInformation, then the 200; the connection is reused', async () => {
    const r =
      'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nlink: </b.js>; rel=preload\r\n\r\n' +
      'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone';
    await withServer(answers([r, OK]), async (ctx) => {
      const info: InformationalResponse[] = [];
      const res = await ctx.client.request(`${ctx.url}/`, {
        method: 'POST',
        body: 'x',
        onInformation: (i) => info.push({ ...i, headers: { ...i.headers } }),
      });
      assert.equal(res.status, 200);
      assert.equal(await res.body.text(), 'done');
      assert.deepEqual(info, [
        { status: 100, statusText: 'Continue', headers: {} },
        {
          status: 103,
          statusText: 'Early Hints',
          headers: { link: ['</a.css>; rel=preload', '</b.js>; rel=preload'] },
        },
      ]);
      await assertReuses(ctx, res);
    });
  });

  it('100 Continue arriving in its own segment before the final response', async () => {
    const first: RawStep[] = [
      { kind: 'await-request' },
      { kind: 'write', data: 'HTTP/1.1 100 Continue\r\n\r\n' },
      { kind: 'delay', ms: 20 },
      { kind: 'write', data: 'HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n' },
      ...answers([OK]),
    ];
    await withServer(first, async (ctx) => {
      const statuses: number[] = [];
      const res = await ctx.client.request(`${ctx.url}/`, {
        method: 'PUT',
        body: 'data',
        onInformation: (i) => statuses.push(i.status),
      });
      assert.equal(res.status, 201);
      assert.deepEqual(statuses, [100]);
      await res.body.dump();
      await assertReuses(ctx, res);
    });
  });
});

describe('headers', () => {
  it('repeated fields are arrays in order; set-cookie values are never joined or split', async () => {
    const r =
      'HTTP/1.1 200 OK\r\n' +
      'Set-Cookie: a=1; Expires=Wed, 21 Oct 2035 07:28:00 GMT; Path=/\r\n' +
      'X-Dup: one\r\n' +
      'set-cookie: b=2, c=3\r\n' +
      'x-dup: two\r\n' +
      'X-DUP: three\r\n' +
      'X-Single: only\r\n' +
      'content-length: 0\r\n\r\n';
    await withServer(answers([r]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.deepEqual(res.headers['set-cookie'], [
        'a=1; Expires=Wed, 21 Oct 2035 07:28:00 GMT; Path=/',
        'b=2, c=3',
      ]);
      assert.deepEqual(res.headers['x-dup'], ['one', 'two', 'three']);
      assert.equal(res.headers['x-single'], 'only');
      await res.body.dump();
    });
  });

  it('a single set-cookie is an array too, as node:http and HTTP/2 give it', async () => {
    const r = 'HTTP/1.1 200 OK\r\nSet-Cookie: only=1\r\ncontent-length: 0\r\n\r\n';
    await withServer(answers([r]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      assert.deepEqual(res.headers['set-cookie'], ['only=1']);
      await res.body.dump();
    });
  });
});

// -------------------------------------------------------------------------------------------------

describe('cut short: the body fails, never ends, and the next request opens a new connection', () => {
  const cases: Array<[string, string]> = [
    ['Content-Length body', 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello'],
    ['chunked body in a chunk', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\nhello'],
    [
      'chunked body before the last chunk',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n',
    ],
    [
      'chunked body in the trailers',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n',
    ],
  ];
  for (const [what, bytes] of cases) {
    for (const close of ['end', 'reset'] as const) {
      it(`${what}, then ${close === 'end' ? 'FIN' : 'RST'}: stream reader`, async () => {
        await withServer(answers([bytes], { kind: close }), async (ctx) => {
          const res = await ctx.client.request(`${ctx.url}/`);
          const out = await streamOutcome(res.body);
          assert.ok(out.end instanceof WarmpoolError, `the body ended with ${String(out.end)}`);
          assert.equal(out.end.code, 'WARMPOOL_SOCKET_CLOSED');
          assert.equal(Buffer.concat(out.chunks).toString(), 'hello');
          assert.equal(res.body.complete, false);
          await assertNewConnection(ctx, res);
        });
      });
    }
    it(`${what}: text() rejects`, async () => {
      await withServer(answers([bytes], { kind: 'end' }), async (ctx) => {
        const res = await ctx.client.request(`${ctx.url}/`);
        await rejectsWith(res.body.text(), 'WARMPOOL_SOCKET_CLOSED');
        await assertNewConnection(ctx, res);
      });
    });
  }

  it('a framing error in the same read as the head reaches a stream reader attached after await', async () => {
    // The head resolves request() and the bad chunk size fails the body within one socket read, before
    // the caller's continuation runs: the failure must wait for the listeners it attaches.
    const bytes = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\nzz\r\n';
    await withServer(answers([bytes]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      const out = await streamOutcome(res.body);
      assert.ok(out.end instanceof WarmpoolError, `the body ended with ${String(out.end)}`);
      assert.equal(out.end.code, 'WARMPOOL_PARSE_ERROR');
      assert.equal(Buffer.concat(out.chunks).toString(), 'hi');
      await assertClosedByClientThenNew(ctx, res);
    });
  });

  it('the same, read with for await', async () => {
    const bytes = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\nzz\r\n';
    await withServer(answers([bytes]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/`);
      const got: Buffer[] = [];
      let caught: unknown;
      try {
        for await (const c of res.body) got.push(c as Buffer);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof WarmpoolError, `iteration ended with ${String(caught)}`);
      assert.equal(caught.code, 'WARMPOOL_PARSE_ERROR');
      assert.equal(Buffer.concat(got).toString(), 'hi');
    });
  });

  it('a truncated body nobody reads does not crash the process (no unhandled error event)', async () => {
    await withServer(
      answers(['HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhel'], { kind: 'end' }),
      async (ctx) => {
        const res = await ctx.client.request(`${ctx.url}/`);
        await waitFor(() => res.body.destroyed, 'the body to be destroyed', LIMIT_MS);
        await assertNewConnection(ctx, res);
      },
    );
  });
});

describe('oversized response heads', () => {
  it('a head over maxHeaderSize rejects with WARMPOOL_HEADERS_OVERFLOW; the client closes the connection', async () => {
    const r = `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(2000)}\r\ncontent-length: 0\r\n\r\n`;
    await withServer(
      answers([r]),
      async (ctx) => {
        await rejectsWith(ctx.client.request(`${ctx.url}/`), 'WARMPOOL_HEADERS_OVERFLOW', ctx.url);
        await assertClosedByClientThenNew(ctx, undefined);
      },
      { maxHeaderSize: 1024 },
    );
  });

  it('the default limit (64 KiB) refuses a 70 KB head that arrives in pieces', async () => {
    const r = `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70_000)}\r\ncontent-length: 0\r\n\r\n`;
    const first: RawStep[] = [
      { kind: 'await-request' },
      { kind: 'write', data: r, splitAt: [10, 20_000, 40_000, 60_000], delayMs: 1 },
      { kind: 'keep-open' },
    ];
    await withServer(first, async (ctx) => {
      await rejectsWith(ctx.client.request(`${ctx.url}/`), 'WARMPOOL_HEADERS_OVERFLOW');
      await assertClosedByClientThenNew(ctx, undefined);
    });
  });

  it('more fields than maxHeaderCount rejects with WARMPOOL_HEADERS_OVERFLOW', async () => {
    let r = 'HTTP/1.1 200 OK\r\n';
    for (let i = 0; i < 10; i++) r += `x-${i}: v\r\n`;
    r += 'content-length: 0\r\n\r\n';
    await withServer(
      answers([r]),
      async (ctx) => {
        await rejectsWith(ctx.client.request(`${ctx.url}/`), 'WARMPOOL_HEADERS_OVERFLOW');
        await assertClosedByClientThenNew(ctx, undefined);
      },
      { maxHeaderCount: 5 },
    );
  });

  it('a head just under maxHeaderSize is accepted', async () => {
    const filler = 'a'.repeat(900);
    const r = `HTTP/1.1 200 OK\r\nx-big: ${filler}\r\ncontent-length: 2\r\n\r\nok`;
    await withServer(
      answers([r, OK]),
      async (ctx) => {
        const res = await ctx.client.request(`${ctx.url}/`);
        assert.equal(res.headers['x-big'], filler);
        assert.equal(await res.body.text(), 'ok');
        await assertReuses(ctx, res);
      },
      { maxHeaderSize: 1024 },
    );
  });
});

describe('Keep-Alive parameters from the server', () => {
  it('Keep-Alive: timeout=1 is kept: reused at once, closed by the client once idle well past it', async () => {
    const ka = 'HTTP/1.1 200 OK\r\nkeep-alive: timeout=1, max=100\r\ncontent-length: 2\r\n\r\nok';
    // The agent's own idleTimeout (4 s) would keep it far longer: only the hint can close it.
    await withServer(answers([ka, ka]), async (ctx) => {
      const res1 = await ctx.client.request(`${ctx.url}/1`);
      await res1.body.text();
      const res2 = await ctx.client.request(`${ctx.url}/2`);
      await res2.body.text();
      assert.equal(res2.connection.reused, true, 'not reused right away');
      await sleep(1600);
      const conn0 = ctx.server.connections[0];
      assert.equal(conn0.closed, 'by-client', 'the idle connection was not closed by the client');
      assert.equal(ctx.agent.originStats(ctx.url)!.closed['idle-timeout'], 1);
      assert.equal(ctx.agent.stats().open, 0);
      await assertNewConnection(ctx, res1);
    });
  });

  it('Keep-Alive: max= counting down (as Apache sends it): the connection is retired, never overrun', async () => {
    // Apache announces the requests left after this one: max=2, then max=1. The client stops one early
    // (it never sends the request the server would answer with Connection: close).
    const ka = (n: number) =>
      `HTTP/1.1 200 OK\r\nkeep-alive: timeout=5, max=${n}\r\ncontent-length: 2\r\n\r\nok`;
    await withServer(answers([ka(2), ka(1)]), async (ctx) => {
      const res1 = await ctx.client.request(`${ctx.url}/1`);
      await res1.body.text();
      const res2 = await ctx.client.request(`${ctx.url}/2`);
      await res2.body.text();
      assert.equal(res2.connection.reused, true);
      await assertClosedByClientThenNew(ctx, res1);
      assert.equal(ctx.agent.originStats(ctx.url)!.closed['max-requests'], 1);
    });
  });
});

// -------------------------------------------------------------------------------------------------

describe('header injection and invalid requests: refused before a byte is written', () => {
  const attempts: Array<[string, (url: string) => [string, Parameters<Client['request']>[1]]]> = [
    ['CR LF in a header value', (u) => [`${u}/`, { headers: { 'x-a': 'v\r\nx-injected: 1' } }]],
    ['a bare LF in a header value', (u) => [`${u}/`, { headers: { 'x-a': 'v\nx-injected: 1' } }]],
    ['a bare CR in a header value', (u) => [`${u}/`, { headers: { 'x-a': 'v\rx' } }]],
    ['NUL in a header value', (u) => [`${u}/`, { headers: { 'x-a': 'v\0' } }]],
    [
      'U+010A (latin1 would write LF) in a header value',
      (u) => [`${u}/`, { headers: { 'x-a': 'v\u010Ax' } }],
    ],
    [
      'CR LF in a header value given as pairs',
      (u) => [`${u}/`, { headers: [['x-a', 'a\r\n\r\nGET /x HTTP/1.1']] }],
    ],
    ['CR LF in the host header', (u) => [`${u}/`, { headers: { host: 'a\r\nx: y' } }]],
    ['a space in a header name', (u) => [`${u}/`, { headers: { 'x a': 'v' } }]],
    ['a colon in a header name', (u) => [`${u}/`, { headers: { 'x:a': 'v' } }]],
    ['CR LF in a header name', (u) => [`${u}/`, { headers: { 'x\r\ny': 'v' } }]],
    ['an empty header name', (u) => [`${u}/`, { headers: { '': 'v' } }]],
    ['CR LF in the path', (u) => [`${u}/a\r\nx-injected: 1`, {}]],
    ['a bare CR in the path', (u) => [`${u}/a\rb`, {}]],
    ['a TAB in the path', (u) => [`${u}/a\tb`, {}]],
    ['NUL in the query', (u) => [`${u}/a?b=\0`, {}]],
    ['CR LF in the host part of the URL', (u) => [`${u.replace('127.0.0.1', '127.0.0.1\r\nx: y')}/`, {}]],
    ['a method with a space', (u) => [`${u}/`, { method: 'GET /x HTTP/1.1\r\nx:' }]],
    ['a method with a space only', (u) => [`${u}/`, { method: 'GE T' }]],
    ['an empty method', (u) => [`${u}/`, { method: '' }]],
    ['a method with a non-token character', (u) => [`${u}/`, { method: 'G(T' }]],
    ['a method with a non-ASCII character', (u) => [`${u}/`, { method: 'GÉT' }]],
  ];
  for (const [what, make] of attempts) {
    it(what, async () => {
      const server = await startRawServer(answers([OK]));
      const agent = new Agent();
      try {
        const client = new Client({ agent });
        const [url, init] = make(server.url);
        await rejectsWith(client.request(url, init), 'WARMPOOL_INVALID_ARGUMENT');
        assert.deepEqual(agent.stats(), { open: 0, origins: [] }, 'a pool was made for the request');
        await sleep(20);
        assert.equal(server.connections.length, 0, 'the server saw a connection');
      } finally {
        await agent.destroy();
        await server.close();
      }
    });
  }

  it('a Client with a control character in its baseUrl is refused when made', () => {
    assert.throws(() => new Client({ baseUrl: 'http://127.0.0.1:1/a\r\nb' }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
  });

  it('a relative path with CR LF against a baseUrl is refused', async () => {
    const server = await startRawServer(answers([OK]));
    const agent = new Agent();
    try {
      const client = new Client({ agent, baseUrl: `${server.url}/api` });
      await rejectsWith(client.request('v1\r\nx-injected: 1'), 'WARMPOOL_INVALID_ARGUMENT');
      await rejectsWith(client.request('/v1\r\nx-injected: 1'), 'WARMPOOL_INVALID_ARGUMENT');
      await sleep(20);
      assert.equal(server.connections.length, 0);
    } finally {
      await agent.destroy();
      await server.close();
    }
  });

  it('a space in the URL path is percent-encoded (as by WHATWG URL and fetch), so the request line stays whole', async () => {
    await withServer(answers([OK]), async (ctx) => {
      const res = await ctx.client.request(`${ctx.url}/a b?c d`);
      await res.body.text();
      const line = ctx.server.connections[0].text().split('\r\n')[0];
      assert.equal(line, 'GET /a%20b?c%20d HTTP/1.1');
    });
  });
});
