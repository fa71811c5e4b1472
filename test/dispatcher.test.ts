/**
 * WarmpoolDispatcher and installGlobalDispatcher: warmpool's pool under Node's built-in fetch (the
 * undici each Node bundles: 6.x on Node 20, 6.x/7.x on 22, 7.x on 24) and under the undici package
 * (the dev dependency), through undici's Dispatcher contract. Real sockets on loopback.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { interceptors, request as undiciRequest } from 'undici';
import {
  Agent,
  type DispatchController,
  type DispatchHandler,
  type OriginStats,
  WarmpoolDispatcher,
  WarmpoolError,
  installGlobalDispatcher,
} from '../src/index.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { blockThread } from './helpers/manual-clock.js';
import { startWorkerFaultServer } from './helpers/worker-server.js';

const T = 20_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const GLOBAL = Symbol.for('undici.globalDispatcher.1');

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${ms} ms`);
    await sleep(10);
  }
}

/** Node's global fetch with a dispatcher (its types want undici's full Dispatcher class). */
function fetchVia(dispatcher: unknown, url: string, init: RequestInit = {}): Promise<globalThis.Response> {
  return fetch(url, { ...init, dispatcher } as RequestInit);
}

function stats(agent: Agent, url: string): OriginStats {
  const s = agent.originStats(url);
  assert.ok(s, `no stats for ${url}`);
  return s;
}

/** A server that answers with what it received: method, url, headers, body. */
function echo(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('x-multi', ['one', 'two']);
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }),
    );
  });
}

interface Echoed {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

test(
  'Node fetch through WarmpoolDispatcher: GET with status, headers (several set-cookie), body as text',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer(echo);
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const res = await fetchVia(dispatcher, `${srv.url}/path?q=1`, { headers: { 'x-req': 'yes' } });
      assert.equal(res.status, 200);
      assert.equal(res.statusText, 'OK');
      assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/']);
      assert.equal(res.headers.get('x-multi'), 'one, two');
      const got = (await res.json()) as Echoed;
      assert.equal(got.method, 'GET');
      assert.equal(got.url, '/path?q=1');
      assert.equal(got.headers['x-req'], 'yes');
      const s = stats(agent, srv.url);
      assert.equal(s.requests, 1, 'the request went through the warmpool Agent');
      // A second one reuses warmpool's connection.
      await (await fetchVia(dispatcher, `${srv.url}/again`)).text();
      assert.equal(stats(agent, srv.url).reused, 1);
      assert.equal(srv.stats.connectionsTotal, 1);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'Node fetch through WarmpoolDispatcher: POST with a string body and with a ReadableStream body (duplex half)',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer(echo);
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const a = (await (
        await fetchVia(dispatcher, `${srv.url}/s`, { method: 'POST', body: 'hello there' })
      ).json()) as Echoed;
      assert.equal(a.method, 'POST');
      assert.equal(a.body, 'hello there');
      assert.equal(a.headers['content-length'], '11', 'fetch gives the length; warmpool sends it unchunked');

      const enc = new TextEncoder();
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode('part one, '));
          c.enqueue(enc.encode('part two'));
          c.close();
        },
      });
      const b = (await (
        await fetchVia(dispatcher, `${srv.url}/r`, {
          method: 'POST',
          body: stream,
          duplex: 'half',
        } as RequestInit)
      ).json()) as Echoed;
      assert.equal(b.body, 'part one, part two');
      assert.equal(b.headers['transfer-encoding'], 'chunked');

      const form = new FormData();
      form.set('field', 'value');
      const c = (await (
        await fetchVia(dispatcher, `${srv.url}/f`, { method: 'POST', body: form })
      ).json()) as Echoed;
      assert.match(c.headers['content-type']!, /^multipart\/form-data; boundary=/);
      assert.match(c.body, /name="field"\r\n\r\nvalue\r\n/);
      assert.equal(stats(agent, srv.url).requests, 3);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'Node fetch through WarmpoolDispatcher: a large body read as a stream arrives whole',
  { timeout: T },
  async () => {
    const total = 4 * 1024 * 1024;
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('content-length', total);
      res.end(Buffer.alloc(total, 0x61));
    });
    const agent = new Agent();
    try {
      const res = await fetchVia(new WarmpoolDispatcher({ agent }), `${srv.url}/big`);
      let received = 0;
      let chunks = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        received += chunk.byteLength;
        chunks++;
      }
      assert.equal(received, total);
      assert.ok(chunks > 1);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'installGlobalDispatcher: plain fetch(url) goes through warmpool; the returned function puts the previous one back',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer();
    const agent = new Agent();
    await (await fetch(`${srv.url}/before`)).text(); // Node's own dispatcher exists now
    const previous = (globalThis as Record<symbol, unknown>)[GLOBAL];
    assert.ok(previous !== undefined);
    const restore = installGlobalDispatcher({ agent });
    try {
      const installed = (globalThis as Record<symbol, unknown>)[GLOBAL];
      assert.ok(installed instanceof WarmpoolDispatcher);
      for (let i = 0; i < 3; i++) assert.equal(await (await fetch(`${srv.url}/g${i}`)).text(), 'ok\n');
      assert.equal(stats(agent, srv.url).requests, 3, 'plain fetch went through the warmpool Agent');
      // The undici package reads the same global.
      const u = await undiciRequest(`${srv.url}/u`);
      assert.equal(await u.body.text(), 'ok\n');
      assert.equal(stats(agent, srv.url).requests, 4);
    } finally {
      restore();
    }
    try {
      assert.equal((globalThis as Record<symbol, unknown>)[GLOBAL], previous);
      assert.equal(await (await fetch(`${srv.url}/after`)).text(), 'ok\n');
      assert.equal(stats(agent, srv.url).requests, 4, 'after restore, fetch no longer uses warmpool');
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  "undici's request() with dispatcher: WarmpoolDispatcher, headers as a flat array, a Buffer body",
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer(echo);
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const res = await undiciRequest(`${srv.url}/u?x=1`, {
        dispatcher: dispatcher as never,
        method: 'PUT',
        headers: ['x-a', '1', 'x-b', '2'],
        body: Buffer.from('buffer body'),
        query: { y: '2' },
      });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
      const got = (await res.body.json()) as Echoed;
      assert.equal(got.method, 'PUT');
      assert.equal(got.url, '/u?x=1&y=2');
      assert.equal(got.headers['x-a'], '1');
      assert.equal(got.headers['x-b'], '2');
      assert.equal(got.body, 'buffer body');
      assert.equal(stats(agent, srv.url).requests, 1);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'dispatch() with a controller-style handler: start, response, data, end; headers as an object',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer(echo);
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const events: string[] = [];
      const chunks: Buffer[] = [];
      let headers: Record<string, string | string[]> = {};
      const done = new Promise<void>((resolve, reject) => {
        const handler: DispatchHandler = {
          onRequestStart: (c: DispatchController) => {
            events.push('start');
            c.pause(); // paused before the head: the body waits for resume()
            setTimeout(() => c.resume(), 20);
          },
          onResponseStart: (_c, status, h) => {
            events.push(`response ${status}`);
            headers = h;
          },
          onResponseData: (_c, chunk) => {
            chunks.push(chunk);
          },
          onResponseEnd: () => {
            events.push('end');
            resolve();
          },
          onResponseError: (_c, err) => reject(err),
        };
        assert.equal(
          dispatcher.dispatch(
            {
              origin: srv.url,
              path: '/c',
              method: 'POST',
              headers: { 'x-buf': Buffer.from('b') },
              body: 'abc',
            },
            handler,
          ),
          true,
        );
      });
      await done;
      assert.deepEqual(events, ['start', 'response 200', 'end']);
      assert.deepEqual(headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
      const got = JSON.parse(Buffer.concat(chunks).toString()) as Echoed;
      assert.equal(got.body, 'abc');
      assert.equal(got.headers['x-buf'], 'b');
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'backpressure: a slow fetch reader pauses the warmpool socket; the server waits for drain until it reads on',
  {
    timeout: 30_000,
  },
  async () => {
    const total = 64 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 0x62);
    let written = 0;
    let waitingForDrain = false;
    let finished = false;
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('content-length', total);
      const write = (): void => {
        while (written < total) {
          written += piece.length;
          if (!res.write(piece)) {
            waitingForDrain = true;
            res.once('drain', () => {
              waitingForDrain = false;
              write();
            });
            return;
          }
        }
        res.end();
        finished = true;
      };
      write();
    });
    const agent = new Agent();
    try {
      const res = await fetchVia(new WarmpoolDispatcher({ agent }), `${srv.url}/slow`);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let received = (await reader.read()).value?.byteLength ?? 0;
      // The reader now waits. Without backpressure the client would take in all 64 MiB: here the
      // server is left waiting for 'drain' with most of the body unsent, and stays there.
      // Every buffer on the way fills (the kernel's, warmpool's body, fetch's streams), and then the
      // server stays blocked: its count stops moving.
      let last = -1;
      let still = 0;
      await waitFor(
        () => {
          still = written === last && waitingForDrain ? still + 1 : 0;
          last = written;
          return still >= 10 || finished;
        },
        'the server to stay blocked on drain',
        20_000,
      );
      assert.ok(waitingForDrain);
      assert.ok(!finished);
      assert.ok(written < total / 2, `the server wrote ${written} of ${total} bytes while the reader waited`);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        received += value.byteLength;
      }
      assert.equal(received, total);
      assert.ok(finished);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'abort mid-body: the body read rejects with AbortError, the connection is closed, not reused',
  {
    timeout: T,
  },
  async () => {
    let serverSawClose = false;
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/ok') {
        res.end('fine');
        return;
      }
      if (req.url === '/silent') return; // no head
      res.setHeader('content-length', 1_000_000);
      res.write('first chunk');
      req.socket.once('close', () => {
        serverSawClose = true;
      });
    });
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const ac = new AbortController();
      const res = await fetchVia(dispatcher, `${srv.url}/hang`, { signal: ac.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      assert.equal(Buffer.from(first.value!).toString(), 'first chunk');
      ac.abort();
      await assert.rejects(reader.read(), { name: 'AbortError' });
      await waitFor(() => serverSawClose, 'the server to see the connection close');
      await waitFor(() => agent.stats().open === 0, 'the agent to have no open connection');
      const s = stats(agent, srv.url);
      assert.equal(s.busy, 0);
      assert.equal(s.idle, 0);
      // A next request takes a new connection.
      assert.equal(await (await fetchVia(dispatcher, `${srv.url}/ok`)).text(), 'fine');
      assert.equal(srv.stats.connectionsTotal, 2);
      // Nothing of the aborted request is left in the dispatcher.
      await dispatcher.close();

      // Aborted before the head: fetch itself rejects with the AbortError.
      const ac2 = new AbortController();
      const pending = fetchVia(new WarmpoolDispatcher({ agent }), `${srv.url}/silent`, {
        signal: ac2.signal,
      });
      setTimeout(() => ac2.abort(), 10);
      await assert.rejects(pending, { name: 'AbortError' });
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  "errors: a refused connection is fetch's TypeError('fetch failed') with the WarmpoolError as its cause",
  {
    timeout: T,
  },
  async () => {
    // A port nobody listens on.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const agent = new Agent();
    try {
      const err = await fetchVia(new WarmpoolDispatcher({ agent }), `http://127.0.0.1:${port}/`).then(
        () => assert.fail('fetch resolved'),
        (e: unknown) => e as TypeError,
      );
      assert.ok(err instanceof TypeError);
      assert.equal(err.message, 'fetch failed');
      assert.ok(err.cause instanceof WarmpoolError, `cause: ${String(err.cause)}`);
      assert.equal((err.cause as WarmpoolError).code, 'WARMPOOL_CONNECT_ERROR');
    } finally {
      await agent.destroy();
    }
  },
);

test(
  'an Agent passed as the dispatcher fails with an error that says to wrap it in a WarmpoolDispatcher',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer();
    const agent = new Agent();
    try {
      const err = await fetchVia(agent, `${srv.url}/`).then(
        () => assert.fail('fetch resolved'),
        (e: unknown) => e as TypeError,
      );
      assert.equal(err.message, 'fetch failed');
      assert.ok(err.cause instanceof WarmpoolError);
      assert.equal((err.cause as WarmpoolError).code, 'WARMPOOL_INVALID_ARGUMENT');
      assert.match((err.cause as Error).message, /WarmpoolDispatcher/);
      await assert.rejects(undiciRequest(`${srv.url}/`, { dispatcher: agent as never }), {
        code: 'WARMPOOL_INVALID_ARGUMENT',
        message: /new WarmpoolDispatcher\(\{ agent \}\)/,
      });
      assert.equal(srv.stats.requestsTotal, 0);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'upgrades and CONNECT are refused through onError with a typed error; nothing is sent',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer();
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      for (const options of [
        { origin: srv.url, path: '/', method: 'GET', upgrade: 'websocket' },
        { origin: srv.url, path: '/', method: 'CONNECT' },
      ]) {
        let error: unknown;
        const taken = dispatcher.dispatch(options, {
          onError: (e) => {
            error = e;
          },
        });
        assert.equal(taken, false);
        assert.ok(error instanceof WarmpoolError);
        assert.equal((error as WarmpoolError).code, 'WARMPOOL_UNSUPPORTED');
      }
      assert.equal(srv.stats.requestsTotal, 0);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'destroy() ends the requests in flight through onError; close() then dispatch() refuses; callback forms',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer(() => {}); // never answers
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const failed = new Promise<Error>((resolve) => {
        dispatcher.dispatch({ origin: srv.url, path: '/hang', method: 'GET' }, { onError: resolve });
      });
      await waitFor(() => srv.stats.requestsTotal === 1, 'the request to reach the server');
      await new Promise<void>((resolve, reject) =>
        dispatcher.destroy((err) => (err ? reject(err) : resolve())),
      );
      const err = await failed;
      assert.equal((err as WarmpoolError).code, 'WARMPOOL_AGENT_CLOSED');
      assert.equal(dispatcher.destroyed, true);
      let refused: unknown;
      assert.equal(
        dispatcher.dispatch(
          { origin: srv.url, path: '/', method: 'GET' },
          {
            onError: (e) => {
              refused = e;
            },
          },
        ),
        false,
      );
      assert.equal((refused as WarmpoolError).code, 'WARMPOOL_AGENT_CLOSED');
      await waitFor(() => agent.stats().open === 0, 'the aborted connection to close');

      const other = new WarmpoolDispatcher({ agent });
      await new Promise<void>((resolve) => other.close(() => resolve()));
      assert.equal(other.closed, true);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

/**
 * The stale scenario: the server (in a worker thread) closes idle connections after 300 ms while
 * this thread is blocked for 450 ms, then a burst of fetches goes out before the loop has read the
 * FINs. Node's own dispatcher writes some of them to closed connections; warmpool's liveness turn
 * and safe retry leave none failed.
 */
async function staleBurst(dispatcher: unknown): Promise<{ failed: number; errors: string[] }> {
  const srv = await startWorkerFaultServer({ closeIdleAfterMs: 300, lingerMs: 3000 });
  try {
    const url = `${srv.url}/`;
    const init = dispatcher === undefined ? {} : { dispatcher };
    const warm = await Promise.all(
      Array.from({ length: 8 }, () => fetch(url, init as RequestInit).then((r) => r.text())),
    );
    assert.ok(warm.every((t) => t === 'ok\n'));
    blockThread(450); // the server closes every idle connection meanwhile
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, () => fetch(url, init as RequestInit).then((r) => r.text())),
    );
    const errors = results
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => `${(r.reason as Error).message}: ${String((r.reason as Error).cause)}`);
    for (const r of results) if (r.status === 'fulfilled') assert.equal(r.value, 'ok\n');
    return { failed: errors.length, errors };
  } finally {
    await srv.close();
  }
}

test(
  'stale connections after a blocked event loop: a burst through WarmpoolDispatcher has no failure',
  {
    timeout: 30_000,
  },
  async (t) => {
    // Every run on the development machine lost 1 to 7 of the 16 through Node's own dispatcher
    // ('other side closed'), often just 1: up to three rounds, so that the one assertion about Node's
    // dispatcher (that the scenario does catch it out) does not hang on one lucky round.
    let viaNode = await staleBurst(undefined);
    for (let round = 1; round < 3 && viaNode.failed === 0; round++) viaNode = await staleBurst(undefined);
    t.diagnostic(
      `through Node's default dispatcher: ${viaNode.failed} of 16 failed ${viaNode.errors[0] ?? ''}`,
    );
    assert.ok(viaNode.failed > 0, "the scenario did not catch Node's own dispatcher out");
    const agent = new Agent();
    try {
      const viaWarmpool = await staleBurst(new WarmpoolDispatcher({ agent }));
      assert.equal(viaWarmpool.failed, 0, viaWarmpool.errors.join('\n'));
    } finally {
      await agent.destroy();
    }
  },
);

test(
  'dispatch() with a classic handler: 103 then the head as raw Buffers, pause by returning false, resume(), trailers',
  {
    timeout: T,
  },
  async () => {
    const srv = await startHttpServer((req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.writeHead(200, {
        'content-type': 'text/plain',
        trailer: 'x-checksum',
        'x-got': String(req.headers['x-pair']),
      });
      res.write('one ');
      setTimeout(() => {
        res.write('two');
        res.addTrailers({ 'x-checksum': 'abc' });
        res.end();
      }, 20);
    });
    const agent = new Agent();
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const statuses: number[] = [];
      const chunks: string[] = [];
      let head: string[] = [];
      let trailers: string[] = [];
      let resumeLater: (() => void) | undefined;
      let pausedAtData = false;
      await new Promise<void>((resolve, reject) => {
        dispatcher.dispatch(
          {
            origin: new URL(srv.url),
            path: '/t',
            method: 'GET',
            headers: new Map([['x-pair', 'from a Map']]),
          },
          {
            onConnect: (abort) => assert.equal(typeof abort, 'function'),
            onHeaders: (status, raw, resume) => {
              statuses.push(status);
              if (status !== 200) return true;
              head = raw.map((b) => b.toString('latin1'));
              resumeLater = resume;
              return false; // paused: no data until resume()
            },
            onData: (chunk) => {
              pausedAtData = resumeLater !== undefined;
              chunks.push(chunk.toString());
              return true;
            },
            onComplete: (raw) => {
              trailers = (raw ?? []).map((b) => b.toString('latin1'));
              resolve();
            },
            onError: reject,
          },
        );
        void waitFor(() => resumeLater !== undefined, 'the head').then(async () => {
          await sleep(50);
          assert.deepEqual(chunks, [], 'data arrived while paused');
          const resume = resumeLater!;
          resumeLater = undefined;
          resume();
        }, reject);
      });
      assert.deepEqual(statuses, [103, 200]);
      assert.ok(!pausedAtData);
      assert.equal(chunks.join(''), 'one two');
      assert.equal(head[head.indexOf('x-got') + 1], 'from a Map');
      assert.equal(head[head.indexOf('content-type') + 1], 'text/plain');
      assert.deepEqual(trailers, ['x-checksum', 'abc']);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'Node fetch through WarmpoolDispatcher over HTTP/2 (TLS, ALPN h2): several requests on one session',
  {
    timeout: T,
  },
  async () => {
    const srv = await startH2Server({
      handler: (stream, headers) => {
        stream.respond({ ':status': 200, 'set-cookie': ['a=1', 'b=2'], 'x-path': String(headers[':path']) });
        stream.end('h2 body');
      },
    });
    const agent = new Agent({ tls: { ca: TEST_CERT } });
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      const all = await Promise.all(
        [1, 2, 3].map(async (i) => {
          const res = await fetchVia(dispatcher, `${srv.url}/h${i}`);
          return {
            path: res.headers.get('x-path'),
            cookies: res.headers.getSetCookie(),
            text: await res.text(),
          };
        }),
      );
      assert.deepEqual(
        all.map((r) => r.path),
        ['/h1', '/h2', '/h3'],
      );
      for (const r of all) {
        assert.equal(r.text, 'h2 body');
        assert.deepEqual(r.cookies, ['a=1', 'b=2']);
      }
      const s = stats(agent, srv.url);
      assert.equal(s.protocol, 'h2');
      assert.equal(s.created, 1);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  "compose(): undici's retry interceptor over WarmpoolDispatcher retries a 503 through warmpool",
  {
    timeout: T,
  },
  async () => {
    let seen = 0;
    const srv = await startHttpServer((_req, res) => {
      seen++;
      if (seen < 3) {
        res.statusCode = 503;
        res.end('busy');
      } else {
        res.end('done');
      }
    });
    const agent = new Agent();
    try {
      const dispatcher = new WarmpoolDispatcher({ agent }).compose(
        interceptors.retry({ statusCodes: [503], minTimeout: 1, maxRetries: 5 }),
      );
      const res = await undiciRequest(`${srv.url}/r`, { dispatcher: dispatcher as never });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'done');
      assert.equal(seen, 3);
      assert.equal(stats(agent, srv.url).requests, 3);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'a classic handler that pauses in onData on a body that came whole gets onComplete only after resume()',
  { timeout: T },
  async () => {
    const srv = await startHttpServer((_req, res) => void res.end('small body'));
    const agent = new Agent();
    try {
      const dispatcher = new WarmpoolDispatcher({ agent });
      const events: string[] = [];
      let resume: (() => void) | undefined;
      const done = new Promise<void>((resolve, reject) => {
        const handler: DispatchHandler = {
          onHeaders(_status, _raw, resumeFn) {
            resume = resumeFn;
            events.push('headers');
            return true;
          },
          onData(chunk) {
            events.push(`data ${chunk.toString()}`);
            return false; // pause
          },
          onComplete() {
            events.push('complete');
            resolve();
          },
          onError: reject,
        };
        dispatcher.dispatch({ origin: srv.url, path: '/', method: 'GET' }, handler);
      });
      await waitFor(() => events.length === 2, 'headers and data');
      await sleep(50);
      assert.deepEqual(events, ['headers', 'data small body'], 'no onComplete while paused');
      resume!();
      await done;
      assert.deepEqual(events, ['headers', 'data small body', 'complete']);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  "undici's expectContinue option: the head goes with expect: 100-continue and the body follows the server's 100 Continue",
  { timeout: T },
  async () => {
    let sawExpect: string | undefined;
    const srv = await startHttpServer(async (req, res) => {
      sawExpect = req.headers.expect;
      let body = '';
      for await (const c of req) body += c;
      res.end(`got ${body}`);
    });
    const agent = new Agent();
    try {
      const res = await undiciRequest(`${srv.url}/put`, {
        method: 'PUT',
        body: 'payload',
        expectContinue: true,
        dispatcher: new WarmpoolDispatcher({ agent }) as never,
      } as never);
      assert.equal(await res.body.text(), 'got payload');
      assert.equal(sawExpect, '100-continue');
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'a large body through WarmpoolDispatcher reaches the handler in the buffers the socket read into: from the second response on a connection, its first chunk is a view of the read that brought the head',
  { timeout: T },
  async () => {
    const size = 200 * 1024;
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
    // writeHead + end(body): node sends the head and the body in one write, so the first read brings both.
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': size });
      res.end(body);
    });
    const agent = new Agent({ maxConnectionsPerOrigin: 1 });
    const dispatcher = new WarmpoolDispatcher({ agent });
    try {
      for (let n = 1; n <= 3; n++) {
        const chunks: Buffer[] = [];
        await new Promise<void>((resolve, reject) => {
          dispatcher.dispatch(
            { origin: srv.url, path: `/${n}`, method: 'GET' },
            {
              onData: (chunk) => void chunks.push(chunk),
              onComplete: () => resolve(),
              onError: reject,
            },
          );
        });
        assert.deepEqual(Buffer.concat(chunks), body, `response ${n}`);
        if (n === 1) continue; // the first read of a new connection goes to the shared buffer
        const first = chunks[0]!;
        const before = Buffer.from(first.buffer, 0, first.byteOffset).toString('latin1');
        assert.match(
          before,
          /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n$/,
          `response ${n}: the first chunk is a copy`,
        );
      }
      assert.equal(stats(agent, srv.url).created, 1);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);
