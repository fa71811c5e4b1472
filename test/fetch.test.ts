/**
 * warmpool's fetch(): the WHATWG API as Node's built-in fetch behaves (real global Response and
 * Headers, the standard's bodies, redirects, content codings, errors), on warmpool's pool. Real
 * node:http and node:http2 servers on loopback; where the behaviour is "as Node's fetch does", the
 * same request goes through Node's fetch too and the two are compared.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { inspect } from 'node:util';
import zlib from 'node:zlib';
import {
  Agent,
  Client,
  HeadersTimeoutError,
  RedirectError,
  WarmpoolError,
  fetch,
  fetchDetails,
} from '../src/index.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';
import { type TestHttpServer, startHttpServer } from './helpers/http-server.js';
import { sleep, waitFor } from './helpers/pool-util.js';

const T = 20_000;

/** What an echo server saw of a request. */
interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function readAll(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A server that answers every request with what it saw, as JSON. */
function echo(): Promise<TestHttpServer> {
  return startHttpServer(async (req, res) => {
    const body = (await readAll(req)).toString('latin1');
    const seen: Seen = { method: req.method!, url: req.url!, headers: req.headers, body };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(seen));
  });
}

/** Runs `fn` with a fresh Agent, destroyed afterwards. */
async function withAgent<T>(fn: (agent: Agent) => Promise<T>): Promise<T> {
  const agent = new Agent();
  try {
    return await fn(agent);
  } finally {
    await agent.destroy();
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

/** A network failure as fetch users expect it: TypeError('fetch failed') with the warmpool error as cause. */
function assertFetchFailed(err: unknown, code: string): WarmpoolError {
  assert.ok(err instanceof TypeError, `expected a TypeError, got ${String(err)}`);
  assert.equal(err.message, 'fetch failed');
  assert.ok(err.cause instanceof WarmpoolError, `cause: ${String(err.cause)}`);
  assert.equal(err.cause.code, code, err.cause.message);
  return err.cause;
}

test(
  'fetch returns a real global Response: instanceof, web stream body, Headers with getSetCookie, url, type',
  { timeout: T },
  async () => {
    const server = await startHttpServer((_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('content-type', 'text/plain');
      res.end('hello');
    });
    try {
      await withAgent(async (agent) => {
        const res = await fetch(`${server.url}/path?q=1`, { agent });
        assert.ok(res instanceof Response);
        assert.ok(res.headers instanceof Headers);
        assert.ok(res.body instanceof ReadableStream);
        assert.equal(res.status, 200);
        assert.equal(res.statusText, 'OK');
        assert.equal(res.ok, true);
        assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
        assert.equal(res.headers.get('content-type'), 'text/plain');
        assert.equal(res.url, `${server.url}/path?q=1`);
        assert.equal(res.redirected, false);
        assert.equal(res.type, 'basic');
        assert.equal(await res.text(), 'hello');
        assert.equal(res.bodyUsed, true);
        // As Node's fetch: the same fields for the same answer.
        const node = await globalThis.fetch(`${server.url}/path?q=1`);
        await node.text();
        for (const field of ['status', 'statusText', 'url', 'redirected', 'type', 'ok'] as const) {
          assert.equal(res[field], node[field], field);
        }
      });
    } finally {
      await server.close();
    }
  },
);

test(
  "fetch's Response answers as Node's does to what asks the public way (status, ok, toStringTag, inspect, structuredClone, constructor), and refuses Response.prototype's members called on it directly",
  { timeout: T },
  async () => {
    const server = await startHttpServer((req, res) => {
      res.statusCode = req.url === '/teapot' ? 418 : 200;
      if (req.url === '/teapot') res.statusMessage = 'Short And Stout';
      res.end('body');
    });
    try {
      await withAgent(async (agent) => {
        for (const path of ['/ok', '/teapot']) {
          const res = await fetch(`${server.url}${path}`, { agent });
          const node = await globalThis.fetch(`${server.url}${path}`);
          assert.equal(res.status, node.status, path);
          assert.equal(res.statusText, node.statusText, path);
          assert.equal(res.ok, node.ok, path);
          assert.equal(Object.prototype.toString.call(res), Object.prototype.toString.call(node));
          // util.inspect goes through Response.prototype's own inspect, which reads the public members.
          const shown = inspect(res);
          assert.match(shown, /^Response \{/);
          assert.match(shown, new RegExp(`status: ${node.status}`));
          assert.match(shown, new RegExp(`statusText: '${node.statusText}'`));
          // Refused by structuredClone exactly when Node's own Response is (Node 22.10 and later).
          const cloneOutcome = (r: Response): string => {
            try {
              return JSON.stringify(structuredClone(r));
            } catch (err) {
              return (err as Error).name;
            }
          };
          assert.equal(cloneOutcome(res), cloneOutcome(node));
          assert.equal(res.constructor, node.constructor);
          const remade = new (res.constructor as typeof Response)('again', res);
          assert.equal(remade.status, node.status);
          assert.equal(await remade.text(), 'again');
          await node.arrayBuffer();
          // Response.prototype's own members would read state fetch's Response does not have: they
          // throw rather than answer from an empty body.
          assert.throws(() => Response.prototype.clone.call(res), TypeError);
          await assert.rejects(async () => Response.prototype.text.call(res), TypeError);
          // ... and its own members, taken off it and called on another object, are refused as Node's
          // are: accessors and clone() throw, the methods that return a promise reject.
          const ownProto = Object.getPrototypeOf(res) as object;
          for (const name of Reflect.ownKeys(Response.prototype)) {
            if (name === 'constructor' || typeof name === 'symbol') continue;
            const outcome = async (proto: object): Promise<string> => {
              const d = Object.getOwnPropertyDescriptor(proto, name)!;
              try {
                const got: unknown = d.get ? d.get.call({}) : (d.value as () => unknown).call({});
                await got;
                return 'no error';
              } catch (err) {
                return `${(err as Error).name}: ${(err as Error).message}`;
              }
            };
            const ours = await outcome(ownProto);
            assert.equal(ours, 'TypeError: Illegal invocation', name);
            assert.equal(ours, await outcome(Response.prototype), name);
            const d = Object.getOwnPropertyDescriptor(ownProto, name)!;
            if (typeof d.value === 'function' && name !== 'clone') {
              const returned = (d.value as () => unknown).call({});
              assert.ok(returned instanceof Promise, `${name} rejects, not throws`);
              await returned.catch(() => {});
            }
          }
          assert.equal(await res.text(), 'body');
        }
      });
    } finally {
      await server.close();
    }
  },
);

test('fetch: a clone keeps url and redirected, and both copies read the body', { timeout: T }, async () => {
  const server = await startHttpServer((_req, res) => void res.end('twice'));
  try {
    await withAgent(async (agent) => {
      const res = await fetch(`${server.url}/c`, { agent });
      const copy = res.clone();
      assert.ok(copy instanceof Response);
      assert.equal(copy.url, res.url);
      assert.equal(copy.type, 'basic');
      assert.equal(await copy.text(), 'twice');
      assert.equal(await res.text(), 'twice');
    });
  } finally {
    await server.close();
  }
});

test(
  'fetch: a body read with a BYOB reader, and one read in chunks as it streams',
  { timeout: T },
  async () => {
    const big = Buffer.alloc(1_000_000, 0x61);
    const server = await startHttpServer((_req, res) => {
      // Written in pieces, so the response is still arriving when fetch resolves.
      let at = 0;
      const next = () => {
        if (at >= big.length) return res.end();
        res.write(big.subarray(at, at + 100_000), next);
        at += 100_000;
      };
      next();
    });
    try {
      await withAgent(async (agent) => {
        const res = await fetch(`${server.url}/big`, { agent });
        const reader = res.body!.getReader({ mode: 'byob' });
        let total = 0;
        for (;;) {
          const { done, value } = await reader.read(new Uint8Array(16 * 1024));
          if (done) break;
          total += value.byteLength;
        }
        assert.equal(total, big.length);
        const again = await fetch(`${server.url}/big`, { agent });
        let chunks = 0;
        let bytes = 0;
        for await (const chunk of again.body!) {
          assert.ok(chunk instanceof Uint8Array);
          chunks++;
          bytes += chunk.byteLength;
        }
        assert.equal(bytes, big.length);
        assert.ok(chunks > 1, 'streamed in more than one chunk');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: input as a string, a URL, and a Request (its method, headers, body, redirect mode)',
  { timeout: T },
  async () => {
    const server = await echo();
    try {
      await withAgent(async (agent) => {
        const a = (await (await fetch(`${server.url}/s`, { agent })).json()) as Seen;
        assert.equal(a.url, '/s');
        const b = (await (await fetch(new URL('/u?x=1', server.url), { agent })).json()) as Seen;
        assert.equal(b.url, '/u?x=1');
        const req = new Request(`${server.url}/r`, {
          method: 'PUT',
          headers: { 'x-from': 'request' },
          body: 'from a Request',
        });
        const c = (await (await fetch(req, { agent })).json()) as Seen;
        assert.equal(c.method, 'PUT');
        assert.equal(c.headers['x-from'], 'request');
        assert.equal(c.body, 'from a Request');
        assert.equal(c.headers['content-type'], 'text/plain;charset=UTF-8');
        // init overrides the Request's members.
        const d = (await (
          await fetch(new Request(`${server.url}/r`, { method: 'POST', body: 'x' }), {
            agent,
            method: 'PATCH',
            body: 'y',
          })
        ).json()) as Seen;
        assert.equal(d.method, 'PATCH');
        assert.equal(d.body, 'y');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: method names are normalized as the standard says; CONNECT, TRACE and invalid tokens are TypeErrors',
  { timeout: T },
  async () => {
    const server = await echo();
    try {
      await withAgent(async (agent) => {
        const seen = (await (await fetch(server.url, { agent, method: 'post', body: '' })).json()) as Seen;
        assert.equal(seen.method, 'POST');
        const patch = (await (await fetch(server.url, { agent, method: 'PATCH', body: 'p' })).json()) as Seen;
        assert.equal(patch.method, 'PATCH');
        for (const method of ['CONNECT', 'trace', 'TRACK', 'BAD METHOD', '']) {
          const err = await rejection(fetch(server.url, { agent, method }));
          assert.ok(err instanceof TypeError, `${method}: ${String(err)}`);
        }
        const get = await rejection(fetch(server.url, { agent, method: 'GET', body: 'x' }));
        assert.ok(get instanceof TypeError);
        assert.match((get as Error).message, /GET\/HEAD method cannot have body/);
        assert.equal(server.stats.requestsTotal, 2, 'nothing was sent for the refused ones');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: bodies of every standard kind, with the Content-Type the standard gives each',
  { timeout: T },
  async () => {
    const server = await echo();
    try {
      await withAgent(async (agent) => {
        const send = async (body: unknown, extra: Record<string, unknown> = {}): Promise<Seen> =>
          (await (
            await fetch(server.url, { agent, method: 'POST', body: body as string, ...extra })
          ).json()) as Seen;

        let seen = await send('text é');
        assert.equal(seen.headers['content-type'], 'text/plain;charset=UTF-8');
        assert.equal(Buffer.from(seen.body, 'latin1').toString('utf8'), 'text é');

        seen = await send(new URLSearchParams({ a: '1', b: 'x y' }));
        assert.equal(seen.headers['content-type'], 'application/x-www-form-urlencoded;charset=UTF-8');
        assert.equal(seen.body, 'a=1&b=x+y');

        seen = await send(new TextEncoder().encode('bytes').buffer);
        assert.equal(seen.headers['content-type'], undefined);
        assert.equal(seen.body, 'bytes');

        const backing = new Uint8Array([0x78, 0x61, 0x62, 0x63, 0x78]);
        seen = await send(backing.subarray(1, 4));
        assert.equal(seen.body, 'abc', 'a view sends only its own bytes');

        seen = await send(new Blob(['blob ', 'parts'], { type: 'text/x-blob' }));
        assert.equal(seen.headers['content-type'], 'text/x-blob');
        assert.equal(seen.headers['content-length'], '10');
        assert.equal(seen.body, 'blob parts');

        seen = await send('typed', { headers: { 'content-type': 'application/x-mine' } });
        assert.equal(seen.headers['content-type'], 'application/x-mine', "the caller's Content-Type wins");

        seen = await send(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode('web '));
              c.enqueue(new TextEncoder().encode('stream'));
              c.close();
            },
          }),
          { duplex: 'half' },
        );
        assert.equal(seen.body, 'web stream');
        assert.equal(seen.headers['transfer-encoding'], 'chunked');

        seen = await send(Readable.from([Buffer.from('node '), Buffer.from('readable')]));
        assert.equal(seen.body, 'node readable');

        seen = await send(
          (async function* () {
            yield new TextEncoder().encode('async ');
            yield new TextEncoder().encode('iterable');
          })(),
        );
        assert.equal(seen.body, 'async iterable');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: a ReadableStream body without duplex: "half" is a TypeError, as the standard says',
  { timeout: T },
  async () => {
    const server = await echo();
    try {
      await withAgent(async (agent) => {
        const err = await rejection(
          fetch(server.url, { agent, method: 'POST', body: new ReadableStream({ pull: (c) => c.close() }) }),
        );
        assert.ok(err instanceof TypeError);
        assert.match((err as Error).message, /duplex/);
        assert.equal(server.stats.requestsTotal, 0);
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: bytes are copied at the call, so a buffer changed afterwards does not change what is sent',
  { timeout: T },
  async () => {
    const server = await echo();
    try {
      await withAgent(async (agent) => {
        const buf = Buffer.from('original');
        const pending = fetch(server.url, { agent, method: 'POST', body: buf });
        buf.write('CHANGED!');
        const seen = (await (await pending).json()) as Seen;
        assert.equal(seen.body, 'original');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: FormData goes as multipart/form-data that a standard parser reads back (fields, files, names, types)',
  { timeout: T },
  async () => {
    let parsed: FormData | undefined;
    let length: string | undefined;
    let received = 0;
    const server = await startHttpServer(async (req, res) => {
      const body = await readAll(req);
      received = body.length;
      length = req.headers['content-length'];
      // Node's own multipart parser (the Response body mixin) reads it back.
      parsed = await new Response(body, {
        headers: { 'content-type': req.headers['content-type']! },
      }).formData();
      res.end('ok');
    });
    try {
      await withAgent(async (agent) => {
        const form = new FormData();
        form.append('field', 'line one\nline two');
        form.append('quote"d\nname', 'v');
        form.append('file', new Blob(['file contents'], { type: 'text/x-file' }), 'a "quoted" name.txt');
        form.append('blob', new Blob([new Uint8Array([0, 1, 2, 255])]));
        const res = await fetch(server.url, { agent, method: 'POST', body: form });
        await res.text();
        assert.equal(Number(length), received, 'content-length is the exact size');
        assert.equal(parsed!.get('field'), 'line one\r\nline two');
        assert.equal(parsed!.get('quote"d\r\nname'), 'v');
        const file = parsed!.get('file') as File;
        assert.equal(file.name, 'a "quoted" name.txt');
        assert.equal(file.type, 'text/x-file');
        assert.equal(await file.text(), 'file contents');
        const blob = parsed!.get('blob') as File;
        assert.equal(blob.name, 'blob');
        assert.equal(blob.type, 'application/octet-stream');
        assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), new Uint8Array([0, 1, 2, 255]));
      });
    } finally {
      await server.close();
    }
  },
);

test(
  "fetch: the multipart bytes are those Node's own encoder makes for the same FormData, boundary aside",
  { timeout: T },
  async () => {
    let received: Buffer | undefined;
    let type = '';
    const server = await startHttpServer(async (req, res) => {
      received = await readAll(req);
      type = req.headers['content-type']!;
      res.end();
    });
    try {
      await withAgent(async (agent) => {
        const form = new FormData();
        form.append('a', 'x\ry\r\nz');
        form.append('we"ird\nname', 'v');
        form.append('f', new Blob(['data'], { type: 'image/png' }), 'pic "1".png');
        form.append('g', new File(['more'], 'plain.txt'));
        await (await fetch(server.url, { agent, method: 'POST', body: form })).arrayBuffer();
        const ours = received!.toString('latin1').replaceAll(/boundary=.*$/.exec(type)![0].slice(9), 'B');
        const node = new Response(form);
        const nodeBoundary = /boundary=(.*)$/.exec(node.headers.get('content-type')!)![1]!;
        const theirs = Buffer.from(await node.arrayBuffer())
          .toString('latin1')
          .replaceAll(nodeBoundary, 'B');
        assert.equal(ours, theirs);
      });
    } finally {
      await server.close();
    }
  },
);

/** A server whose paths redirect: /s/<status>/<location> answers <status> with that Location. */
function redirector(extra?: http.RequestListener): Promise<TestHttpServer> {
  return startHttpServer(async (req, res) => {
    const body = (await readAll(req)).toString();
    const m = /^\/s\/(\d+)\/(.*)$/.exec(req.url!);
    if (m !== null) {
      res.writeHead(Number(m[1]), m[2] === 'none' ? {} : { location: decodeURIComponent(m[2]!) });
      res.end(`redirect body ${m[1]}`);
      return;
    }
    if (extra !== undefined) return extra(req, res);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
  });
}

test(
  'fetch redirects: 301/302 turn a POST into a GET, 303 turns all but HEAD into GET, 307/308 keep method and body',
  { timeout: T },
  async () => {
    const server = await redirector();
    try {
      await withAgent(async (agent) => {
        const go = async (
          status: number,
          method: string,
          body?: string,
        ): Promise<Seen & { res: Response }> => {
          const res = await fetch(`${server.url}/s/${status}/%2Fdone`, {
            agent,
            method,
            body,
            headers: body === undefined ? {} : { 'content-type': 'text/x-mine', 'content-language': 'en' },
          });
          const seen = (method === 'HEAD' ? { method: 'HEAD' } : await res.json()) as Seen;
          return { ...seen, res };
        };
        for (const status of [301, 302]) {
          const post = await go(status, 'POST', 'payload');
          assert.equal(post.method, 'GET', `${status} POST`);
          assert.equal(post.body, '');
          assert.equal(post.headers['content-type'], undefined, 'the body headers went with the body');
          assert.equal(post.headers['content-language'], undefined);
          assert.equal(post.res.redirected, true);
          assert.equal(post.res.url, `${server.url}/done`);
          const put = await go(status, 'PUT', 'payload');
          assert.equal(put.method, 'PUT', `${status} keeps a PUT`);
          assert.equal(put.body, 'payload');
        }
        const put303 = await go(303, 'PUT', 'payload');
        assert.equal(put303.method, 'GET');
        assert.equal(put303.body, '');
        const head303 = await go(303, 'HEAD');
        assert.equal(head303.res.status, 200);
        for (const status of [307, 308]) {
          const post = await go(status, 'POST', 'payload');
          assert.equal(post.method, 'POST', `${status}`);
          assert.equal(post.body, 'payload');
          assert.equal(post.headers['content-type'], 'text/x-mine');
        }
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch redirects: a 307 that must resend a one-shot stream fails; a 303 drops it and goes on',
  { timeout: T },
  async () => {
    const server = await redirector();
    try {
      await withAgent(async (agent) => {
        const stream = () => Readable.from([Buffer.from('once')]);
        const err = await rejection(
          fetch(`${server.url}/s/307/%2Fdone`, { agent, method: 'POST', body: stream() }),
        );
        const cause = assertFetchFailed(err, 'WARMPOOL_REDIRECT_ERROR');
        assert.ok(cause instanceof RedirectError);
        assert.equal(cause.statusCode, 307);
        const ok = await fetch(`${server.url}/s/303/%2Fdone`, { agent, method: 'POST', body: stream() });
        assert.equal(((await ok.json()) as Seen).method, 'GET');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch redirects: a cross-origin hop drops authorization, cookie and proxy-authorization; a same-origin hop keeps them',
  { timeout: T },
  async () => {
    const other = await redirector();
    const server = await redirector();
    try {
      await withAgent(async (agent) => {
        const headers = {
          authorization: 'Bearer secret',
          cookie: 'session=1',
          'proxy-authorization': 'Basic eDp5',
          'x-other': 'kept',
        };
        const cross = (await (
          await fetch(`${server.url}/s/302/${encodeURIComponent(`${other.url}/landed`)}`, { agent, headers })
        ).json()) as Seen;
        assert.equal(cross.url, '/landed');
        assert.equal(cross.headers.authorization, undefined);
        assert.equal(cross.headers.cookie, undefined);
        assert.equal(cross.headers['proxy-authorization'], undefined);
        assert.equal(cross.headers['x-other'], 'kept');
        assert.equal(cross.headers.host, `127.0.0.1:${other.port}`);
        const same = (await (
          await fetch(`${server.url}/s/302/%2Flanded`, { agent, headers })
        ).json()) as Seen;
        assert.equal(same.headers.authorization, 'Bearer secret');
        assert.equal(same.headers.cookie, 'session=1');
      });
    } finally {
      await server.close();
      await other.close();
    }
  },
);

test(
  'fetch redirects: relative Location, a missing Location, manual and error modes, a bad scheme, a loop',
  { timeout: T },
  async () => {
    const server = await redirector();
    try {
      await withAgent(async (agent) => {
        const rel = await fetch(`${server.url}/s/301/..%2F..%2Fup%3Fq%3D1`, { agent });
        assert.equal(rel.url, `${server.url}/up?q=1`);
        await rel.text();

        const none = await fetch(`${server.url}/s/302/none`, { agent });
        assert.equal(none.status, 302, 'no Location: the redirect is the answer');
        assert.equal(none.redirected, false);
        assert.equal(await none.text(), 'redirect body 302');

        const manual = await fetch(`${server.url}/s/302/%2Fdone`, { agent, redirect: 'manual' });
        assert.equal(manual.status, 302);
        assert.equal(manual.headers.get('location'), '/done');
        await manual.text();

        const error = await rejection(fetch(`${server.url}/s/302/%2Fdone`, { agent, redirect: 'error' }));
        assertFetchFailed(error, 'WARMPOOL_REDIRECT_ERROR');

        const ftp = await rejection(
          fetch(`${server.url}/s/302/${encodeURIComponent('ftp://x/')}`, { agent }),
        );
        assertFetchFailed(ftp, 'WARMPOOL_REDIRECT_ERROR');

        const loop = await rejection(
          fetch(`${server.url}/s/302/${encodeURIComponent(`${server.url}/s/302/x`)}`, { agent }),
        );
        assertFetchFailed(loop, 'WARMPOOL_REDIRECT_ERROR');
        // The same for Node's fetch.
        const nodeLoop = await rejection(
          globalThis.fetch(`${server.url}/s/302/${encodeURIComponent(`${server.url}/s/302/x`)}`),
        );
        assert.ok(nodeLoop instanceof TypeError);
      });
    } finally {
      await server.close();
    }
  },
);

test('fetch redirects: exactly 20 are followed; the 21st fails', { timeout: T }, async () => {
  const server = await startHttpServer((req, res) => {
    const n = Number(req.url!.slice(1));
    if (n > 0) {
      res.writeHead(302, { location: `/${n - 1}` });
      res.end();
    } else res.end('arrived');
  });
  try {
    await withAgent(async (agent) => {
      const twenty = await fetch(`${server.url}/20`, { agent });
      assert.equal(await twenty.text(), 'arrived');
      assert.equal(fetchDetails(twenty)!.redirects, 20);
      assertFetchFailed(await rejection(fetch(`${server.url}/21`, { agent })), 'WARMPOOL_REDIRECT_ERROR');
      // Node's fetch draws the line in the same place.
      assert.equal(await (await globalThis.fetch(`${server.url}/20`)).text(), 'arrived');
      assert.ok((await rejection(globalThis.fetch(`${server.url}/21`))) instanceof TypeError);
    });
  } finally {
    await server.close();
  }
});

/** A server that sends 'hello, coded world' in the coding its path names (several: 'gzip,br'). */
function coder(): Promise<TestHttpServer> {
  const plain: Buffer = Buffer.from('hello, coded world');
  const encoders: Record<string, (b: Buffer) => Buffer> = {
    gzip: (b) => zlib.gzipSync(b),
    'x-gzip': (b) => zlib.gzipSync(b),
    deflate: (b) => zlib.deflateSync(b),
    'deflate-raw': (b) => zlib.deflateRawSync(b),
    br: (b) => zlib.brotliCompressSync(b),
    zstd: (b) => (zlib as unknown as { zstdCompressSync: (b: Buffer) => Buffer }).zstdCompressSync(b),
    identity: (b) => b,
  };
  return startHttpServer((req, res) => {
    const codings = decodeURIComponent(req.url!.slice(1)).split(',');
    let body: Buffer = plain;
    for (const c of codings) body = encoders[c] === undefined ? body : encoders[c]!(body);
    if (codings[0] === 'corrupt')
      body = Buffer.concat([zlib.gzipSync(plain).subarray(0, 12), Buffer.alloc(40, 7)]);
    res.writeHead(200, {
      'content-encoding': codings
        .map((c) => (c === 'deflate-raw' ? 'deflate' : c === 'corrupt' ? 'gzip' : c))
        .join(', '),
      'content-length': body.length,
    });
    res.end(body);
  });
}

test(
  'fetch decodes gzip, x-gzip, deflate (zlib and raw), br, zstd where Node has it, and several in a row',
  { timeout: T },
  async () => {
    const server = await coder();
    const zstd = typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
    try {
      await withAgent(async (agent) => {
        const cases = [
          'gzip',
          'x-gzip',
          'deflate',
          'deflate-raw',
          'br',
          'gzip,br',
          'identity',
          'deflate,gzip,br',
        ];
        if (zstd) cases.push('zstd', 'zstd,gzip');
        for (const codings of cases) {
          const res = await fetch(`${server.url}/${encodeURIComponent(codings)}`, { agent });
          assert.equal(await res.text(), 'hello, coded world', codings);
          assert.ok(res.headers.get('content-encoding') !== null, 'content-encoding left as sent');
          assert.ok(Number(res.headers.get('content-length')) > 0, 'content-length left as sent');
        }
        const seen = await fetch(`${server.url}/gzip`, { agent });
        await seen.text();
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: an unknown coding is handed over as received; a corrupt body errors the stream with TypeError("terminated")',
  { timeout: T },
  async () => {
    const server = await startHttpServer((req, res) => {
      if (req.url === '/unknown') {
        res.writeHead(200, { 'content-encoding': 'x-custom' });
        res.end('as sent');
        return;
      }
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(Buffer.concat([zlib.gzipSync('x').subarray(0, 10), Buffer.alloc(40, 7)]));
    });
    try {
      await withAgent(async (agent) => {
        assert.equal(await (await fetch(`${server.url}/unknown`, { agent })).text(), 'as sent');
        const res = await fetch(`${server.url}/corrupt`, { agent });
        const err = await rejection(res.text());
        assert.ok(err instanceof TypeError, String(err));
        assert.equal(err.message, 'terminated');
        assert.ok(err.cause instanceof WarmpoolError);
        assert.equal(err.cause.code, 'WARMPOOL_DECODE_ERROR');
      });
    } finally {
      await server.close();
    }
  },
);

test('fetch sends accept and accept-encoding unless the caller set them', { timeout: T }, async () => {
  const server = await echo();
  try {
    await withAgent(async (agent) => {
      const seen = (await (await fetch(server.url, { agent })).json()) as Seen;
      assert.equal(seen.headers.accept, '*/*');
      assert.match(String(seen.headers['accept-encoding']), /gzip, deflate, br/);
      const own = (await (
        await fetch(server.url, {
          agent,
          headers: new Headers({ accept: 'text/html', 'accept-encoding': 'identity' }),
        })
      ).json()) as Seen;
      assert.equal(own.headers.accept, 'text/html');
      assert.equal(own.headers['accept-encoding'], 'identity');
    });
  } finally {
    await server.close();
  }
});

test(
  'fetch: the usual call (a URL and at most { agent }) sends a plain GET and follows redirects; any other member set is honoured',
  { timeout: T },
  async () => {
    const server = await startHttpServer(async (req, res) => {
      if (req.url === '/moved') {
        res.writeHead(302, { location: '/' }).end();
        return;
      }
      if (req.url === '/slow') await sleep(2_000);
      if (req.url === '/stall') {
        res.writeHead(200, { 'content-length': '10' }).write('part');
        await sleep(2_000);
        res.end('of it!');
        return;
      }
      const body = (await readAll(req)).toString('latin1');
      const seen: Seen = { method: req.method!, url: req.url!, headers: req.headers, body };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(seen));
    });
    const other = new Agent();
    try {
      await withAgent(async (agent) => {
        const url = `${server.url}/`;
        const seenOf = async (res: Response): Promise<Seen> => (await res.json()) as Seen;
        // The usual calls, without an init, with { agent }, and with members left undefined or null.
        for (const init of [
          { agent },
          { agent, signal: null },
          { agent, method: undefined, headers: undefined },
        ]) {
          const seen = await seenOf(await fetch(url, init));
          assert.equal(seen.method, 'GET');
          assert.equal(seen.headers.accept, '*/*');
          assert.equal(seen.body, '');
        }
        assert.equal((await seenOf(await fetch(url))).method, 'GET');
        const followed = await fetch(`${server.url}/moved`, { agent });
        assert.equal(followed.redirected, true);
        assert.equal(followed.url, url);
        assert.equal((await seenOf(followed)).url, '/');

        // Each member set alone takes effect.
        assert.equal(
          (await fetch(url, { agent, method: 'HEAD' })).headers.get('content-type'),
          'application/json',
        );
        assert.equal((await seenOf(await fetch(url, { agent, method: 'DELETE' }))).method, 'DELETE');
        assert.equal(
          (await seenOf(await fetch(url, { agent, headers: { 'x-a': '1' } }))).headers['x-a'],
          '1',
        );
        const posted = await seenOf(await fetch(url, { agent, method: 'POST', body: 'hi' }));
        assert.deepEqual(
          [posted.method, posted.body, posted.headers['content-type']],
          ['POST', 'hi', 'text/plain;charset=UTF-8'],
        );
        const manual = await fetch(`${server.url}/moved`, { agent, redirect: 'manual' });
        assert.equal(manual.status, 302);
        await manual.arrayBuffer();
        const refused = await rejection(fetch(`${server.url}/moved`, { agent, redirect: 'error' }));
        assert.ok(refused instanceof TypeError);
        const reason = new Error('caller gave up');
        assert.equal(await rejection(fetch(url, { agent, signal: AbortSignal.abort(reason) })), reason);
        const late = await rejection(fetch(`${server.url}/slow`, { agent, headersTimeout: 50 }));
        assert.ok(assertFetchFailed(late, 'WARMPOOL_HEADERS_TIMEOUT') instanceof HeadersTimeoutError);
        const stalled = await fetch(`${server.url}/stall`, { agent, bodyTimeout: 50 });
        const cut = await rejection(stalled.text());
        assert.ok(cut instanceof TypeError);
        assert.equal((cut.cause as WarmpoolError).code, 'WARMPOOL_BODY_TIMEOUT');
        const nowhere = await rejection(fetch(url, { agent, socketPath: '/nonexistent/warmpool.sock' }));
        assertFetchFailed(nowhere, 'WARMPOOL_CONNECT_ERROR');
        const wrongAgent = await rejection(new Client({ agent }).fetch(url, { agent: other }));
        assert.ok(wrongAgent instanceof TypeError);
      });
    } finally {
      await other.destroy();
      await server.close();
    }
  },
);

test(
  'fetch errors: a refused connection is TypeError("fetch failed") with the warmpool error as cause; invalid headers are TypeErrors',
  { timeout: T },
  async () => {
    await withAgent(async (agent) => {
      const server = await echo();
      const url = server.url;
      await server.close();
      assertFetchFailed(await rejection(fetch(url, { agent })), 'WARMPOOL_CONNECT_ERROR');
      const bad = await rejection(fetch(url, { agent, headers: { 'bad name': 'x' } }));
      assert.ok(bad instanceof TypeError);
      const crlf = await rejection(fetch(url, { agent, headers: [['x-a', 'b\r\nx-injected: 1']] }));
      assert.ok(crlf instanceof TypeError);
      const scheme = await rejection(fetch('ftp://127.0.0.1/', { agent }));
      assert.ok(scheme instanceof TypeError);
    });
  },
);

test(
  'fetch abort: before sending, while waiting for the head, and mid-body reject with the signal reason',
  { timeout: T },
  async () => {
    const server = await startHttpServer(async (req, res) => {
      if (req.url === '/slow-head') {
        await sleep(5_000);
        res.end('late');
        return;
      }
      res.writeHead(200);
      res.write('first part');
      // The rest never comes.
    });
    try {
      await withAgent(async (agent) => {
        const before = new AbortController();
        before.abort();
        const e1 = await rejection(fetch(server.url, { agent, signal: before.signal }));
        assert.ok(e1 instanceof DOMException);
        assert.equal(e1.name, 'AbortError');

        const waiting = new AbortController();
        const pending = fetch(`${server.url}/slow-head`, { agent, signal: waiting.signal });
        await sleep(50);
        const reason = new Error('my reason');
        waiting.abort(reason);
        assert.equal(await rejection(pending), reason);

        const mid = new AbortController();
        const res = await fetch(`${server.url}/body`, { agent, signal: mid.signal });
        const reader = res.body!.getReader();
        const first = await reader.read();
        assert.equal(new TextDecoder().decode(first.value), 'first part');
        const next = reader.read();
        mid.abort();
        const e3 = await rejection(next);
        assert.ok(e3 instanceof DOMException);
        assert.equal(e3.name, 'AbortError');
        await waitFor(() => agent.originStats(server.url)?.busy === 0, 'the aborted connection released');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch backpressure: a body nobody reads stops the socket; reading it lets the rest through',
  { timeout: T },
  async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    let stalled: (() => void) | undefined;
    const stall = new Promise<void>((r) => {
      stalled = r;
    });
    const server = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': total });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            stalled?.();
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    try {
      await withAgent(async (agent) => {
        const res = await fetch(server.url, { agent });
        await stall;
        await sleep(200);
        const whileUnread = written;
        assert.ok(whileUnread < total / 2, `the server got ${whileUnread} bytes out while nobody read`);
        let received = 0;
        for await (const c of res.body!) received += c.byteLength;
        assert.equal(received, total);
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch options: agent, headersTimeout, and fetchDetails with the connection facts',
  { timeout: T },
  async () => {
    const server = await startHttpServer(async (req, res) => {
      if (req.url === '/slow') await sleep(2_000);
      res.end('ok');
    });
    try {
      await withAgent(async (agent) => {
        const first = await fetch(`${server.url}/a`, { agent });
        await first.text();
        const second = await fetch(`${server.url}/b`, { agent });
        await second.text();
        const details = fetchDetails(second)!;
        assert.equal(details.connection.reused, true);
        assert.equal(details.connection.protocol, 'http/1.1');
        assert.equal(details.retried, false);
        assert.equal(details.httpVersion, '1.1');
        assert.equal(typeof details.timings.ttfbMs, 'number');
        assert.equal(fetchDetails(new Response('x')), undefined);
        assert.equal(agent.originStats(server.url)?.created, 1, 'both went through the given agent');

        const err = await rejection(fetch(`${server.url}/slow`, { agent, headersTimeout: 50 }));
        assert.ok(assertFetchFailed(err, 'WARMPOOL_HEADERS_TIMEOUT') instanceof HeadersTimeoutError);
      });
    } finally {
      await server.close();
    }
  },
);

test("client.fetch() uses the Client's agent, baseUrl and default headers", { timeout: T }, async () => {
  const server = await echo();
  try {
    await withAgent(async (agent) => {
      const client = new Client({ agent, baseUrl: `${server.url}/api`, headers: { 'x-default': 'd' } });
      const res = await client.fetch('/items', { headers: { 'x-own': 'o' } });
      const seen = (await res.json()) as Seen;
      assert.equal(seen.url, '/api/items');
      assert.equal(seen.headers['x-default'], 'd');
      assert.equal(seen.headers['x-own'], 'o');
      assert.equal(res.url, `${server.url}/api/items`);
      assert.equal(agent.originStats(server.url)?.created, 1);
      const other = new Agent();
      try {
        assert.ok((await rejection(client.fetch('/x', { agent: other }))) instanceof TypeError);
      } finally {
        await other.destroy();
      }
    });
  } finally {
    await server.close();
  }
});

test('fetch over HTTP/2: headers, body, decoding and the h2 connection facts', { timeout: T }, async () => {
  const server = await startH2Server({
    handler: (stream, headers) => {
      stream.respond({
        ':status': 200,
        'content-encoding': 'gzip',
        'set-cookie': ['a=1', 'b=2'],
        'x-path': String(headers[':path']),
      });
      stream.end(zlib.gzipSync('over h2'));
    },
  });
  const agent = new Agent({ tls: { ca: TEST_CERT } });
  try {
    const res = await fetch(`${server.url}/h2`, { agent });
    assert.equal(await res.text(), 'over h2');
    assert.equal(res.headers.get('x-path'), '/h2');
    assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.equal(fetchDetails(res)!.httpVersion, '2');
    assert.equal(fetchDetails(res)!.connection.protocol, 'h2');
  } finally {
    await agent.destroy();
    await server.close();
  }
});

test(
  'fetch parses the URL as the standard does (dot segments, case, default port), as Node fetch; only http(s)',
  { timeout: T },
  async () => {
    const server = await echo();
    try {
      await withAgent(async (agent) => {
        const input = `http://LOCALHOST:${server.port}/a/../b/./c?x=1#frag`;
        const res = await fetch(input.replace('LOCALHOST', '127.0.0.1'), { agent });
        const seen = (await res.json()) as Seen;
        assert.equal(seen.url, '/b/c?x=1');
        const node = await globalThis.fetch(input.replace('LOCALHOST', '127.0.0.1'));
        await node.text();
        assert.equal(res.url, node.url);
        for (const bad of ['not a url', 'data:text/plain,hi', 'file:///etc/passwd']) {
          const err = await rejection(fetch(bad, { agent }));
          assert.ok(err instanceof TypeError, `${bad}: ${String(err)}`);
        }
        assert.match(
          String(((await rejection(fetch('not a url', { agent }))) as Error).message),
          /Failed to parse URL/,
        );
      });
    } finally {
      await server.close();
    }
  },
);

/**
 * What a caller can observe of a body that came whole with its head (warmpool makes its stream and
 * Headers only when asked for: src/fetch/response.ts). Each scenario runs on a response from our
 * fetch and on one from Node's fetch, and what it saw must be the same.
 */
test(
  'fetch: a body read every way (text, json, arrayBuffer, bytes, blob, formData, body, clone), whole or streaming, behaves as on Node fetch',
  { timeout: T },
  async () => {
    const server = await startHttpServer((req, res) => {
      if (req.url === '/json') res.setHeader('content-type', 'application/json; charset=utf-8');
      if (req.url === '/form') res.setHeader('content-type', 'application/x-www-form-urlencoded');
      res.setHeader('x-one', '1');
      const [path, query] = req.url!.split('?');
      const body =
        path === '/bom'
          ? Buffer.from([0xef, 0xbb, 0xbf, 0x68, 0x69, 0xff])
          : Buffer.from(
              path === '/empty'
                ? ''
                : path === '/form'
                  ? 'a=1&b=%C3%A9'
                  : path === '/json'
                    ? '{"x":[1,2]}'
                    : 'hello',
            );
      if (query !== 'split' || body.length < 2) {
        res.end(body);
        return;
      }
      // The body's second half comes later: the response is handed over while its body streams.
      res.write(body.subarray(0, 2));
      setTimeout(() => res.end(body.subarray(2)), 20);
    });
    /** What a scenario saw: values, or the error's class and whether it was thrown synchronously. */
    type Scenario = (res: Response) => Promise<unknown[]>;
    const outcome = async (f: () => unknown): Promise<string> => {
      try {
        const value = f();
        return `ok ${JSON.stringify(value instanceof Promise ? await value.then(show, (e) => `rejects ${(e as Error).name}`) : show(value))}`;
      } catch (err) {
        return `throws ${(err as Error).name}`;
      }
    };
    const show = (v: unknown): unknown =>
      v instanceof ArrayBuffer
        ? `ArrayBuffer ${Buffer.from(v).toString('hex')}`
        : v instanceof Uint8Array
          ? `${v.constructor.name} ${Buffer.from(v).toString('hex')}`
          : v instanceof Blob
            ? `Blob ${v.type} ${v.size}`
            : v instanceof FormData
              ? `FormData ${JSON.stringify([...v])}`
              : v instanceof ReadableStream
                ? 'ReadableStream'
                : v;
    const scenarios: Record<string, [string, Scenario]> = {
      'text twice': [
        '/x',
        async (r) => [await outcome(() => r.text()), r.bodyUsed, await outcome(() => r.text()), show(r.body)],
      ],
      json: ['/json', async (r) => [await outcome(() => r.json()), r.bodyUsed]],
      'bad json': ['/x', async (r) => [await outcome(() => r.json()), r.bodyUsed]],
      arrayBuffer: ['/x', async (r) => [await outcome(() => r.arrayBuffer())]],
      // Response.bytes() is newer than the DOM types this project compiles with.
      bytes: [
        '/x',
        async (r) => [await outcome(() => (r as Response & { bytes(): Promise<Uint8Array> }).bytes())],
      ],
      blob: ['/json', async (r) => [await outcome(() => r.blob())]],
      formData: ['/form', async (r) => [await outcome(() => r.formData())]],
      'formData of text': ['/x', async (r) => [await outcome(() => r.formData())]],
      'BOM and a bad byte': ['/bom', async (r) => [await outcome(() => r.text())]],
      'empty body': ['/empty', async (r) => [show(r.body), await outcome(() => r.text()), r.bodyUsed]],
      'body then text': [
        '/x',
        async (r) => {
          const reader = r.body!.getReader();
          const before = r.bodyUsed;
          const text = await outcome(() => r.text());
          const first = await reader.read();
          return [before, text, Buffer.from(first.value!).toString(), (await reader.read()).done, r.bodyUsed];
        },
      ],
      'body untouched then text': [
        '/x',
        async (r) => [show(r.body), r.bodyUsed, await outcome(() => r.text()), r.bodyUsed],
      ],
      'text then body': [
        '/x',
        async (r) => [
          await outcome(() => r.text()),
          show(r.body),
          r.bodyUsed,
          r.body!.locked,
          await outcome(() => r.body!.getReader().read()),
        ],
      ],
      'clone, read both': [
        '/x',
        async (r) => {
          const c = r.clone();
          return [
            await outcome(() => c.text()),
            await outcome(() => r.arrayBuffer()),
            c.headers.get('x-one'),
            c.status,
          ];
        },
      ],
      'clone after read': [
        '/x',
        async (r) => [await outcome(() => r.text()), await outcome(() => r.clone())],
      ],
      'clone after body locked': [
        '/x',
        async (r) => [r.body!.getReader() !== null, await outcome(() => r.clone())],
      ],
      'headers are one object, a clone has its own': [
        '/x',
        async (r) => {
          const first = r.headers;
          const c = r.clone();
          return [
            first === r.headers,
            c.headers === r.headers,
            [...c.headers].length === [...r.headers].length,
            c.headers.get('x-one'),
          ];
        },
      ],
      'cancel the body': [
        '/x',
        async (r) => [await outcome(() => r.body!.cancel()), r.bodyUsed, await outcome(() => r.text())],
      ],
    };
    try {
      await withAgent(async (agent) => {
        for (const query of ['', '?split']) {
          for (const [name, [path, scenario]] of Object.entries(scenarios)) {
            const ours = await scenario(await fetch(`${server.url}${path}${query}`, { agent }));
            const node = await scenario(await globalThis.fetch(`${server.url}${path}${query}`));
            assert.deepEqual(ours, node, `${name}${query}`);
          }
        }
        // Our headers are mutable (a documented difference from Node's): a clone's changes stay its own.
        const res = await fetch(`${server.url}/x`, { agent });
        res.headers.set('x-two', '2');
        const copy = res.clone();
        copy.headers.set('x-three', '3');
        assert.deepEqual(
          [res.headers.get('x-two'), copy.headers.get('x-two'), res.headers.get('x-three')],
          ['2', '2', null],
        );
        await res.body?.cancel();
        const head = await fetch(`${server.url}/x`, { agent, method: 'HEAD' });
        const nodeHead = await globalThis.fetch(`${server.url}/x`, { method: 'HEAD' });
        assert.deepEqual(
          [head.body, head.bodyUsed, await head.text()],
          [nodeHead.body, nodeHead.bodyUsed, await nodeHead.text()],
        );
        // util.inspect goes through the getters (Node's Response has its own inspect).
        const shown = (await import('node:util')).inspect(await fetch(`${server.url}/x`, { agent }));
        assert.match(shown, /bodyUsed: false/);
        assert.match(shown, /x-one/);
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: text() of a long streamed body, a clone teed from it, and text() cut by an abort or by the server, as Node fetch',
  { timeout: T },
  async () => {
    const long = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh');
    const server = await startHttpServer((req, res) => {
      if (req.url === '/long') {
        res.end(long);
        return;
      }
      res.writeHead(200, { 'content-length': 100 });
      res.write('first part');
      // /cut: the server closes with 90 bytes missing; /stall: the rest never comes.
      if (req.url === '/cut') setTimeout(() => res.destroy(), 20);
    });
    try {
      await withAgent(async (agent) => {
        const res = await fetch(`${server.url}/long`, { agent });
        const copy = res.clone();
        const [a, b] = await Promise.all([res.text(), copy.arrayBuffer()]);
        assert.equal(a, long.toString());
        assert.ok(Buffer.from(b).equals(long));
        assert.equal(
          (await (await fetch(`${server.url}/long`, { agent })).arrayBuffer()).byteLength,
          long.length,
        );
        assert.equal(
          agent.originStats(server.url)?.busy,
          0,
          'the connection released once the body was read',
        );

        for (const read of ['text', 'arrayBuffer', 'json'] as const) {
          const ours = await rejection((await fetch(`${server.url}/cut`, { agent }))[read]());
          const node = await rejection((await globalThis.fetch(`${server.url}/cut`))[read]());
          assert.ok(ours instanceof TypeError && node instanceof TypeError, `${read}: ${String(ours)}`);
          assert.equal(ours.message, node.message, read);
          assert.ok(ours.cause instanceof WarmpoolError, String(ours.cause));

          const mine = new AbortController();
          const theirs = new AbortController();
          const pendingOurs = (await fetch(`${server.url}/stall`, { agent, signal: mine.signal }))[read]();
          const pendingNode = (await globalThis.fetch(`${server.url}/stall`, { signal: theirs.signal }))[
            read
          ]();
          await sleep(20);
          const reason = new Error('gave up');
          mine.abort(reason);
          theirs.abort(reason);
          assert.equal(await rejection(pendingOurs), reason, read);
          assert.equal(await rejection(pendingNode), reason, read);
        }
        await waitFor(() => agent.originStats(server.url)?.busy === 0, 'the aborted connections released');
      });
    } finally {
      await server.close();
    }
  },
);

test(
  'fetch: arrayBuffer() of a response and of its clone are independent; an empty body gives a fresh ArrayBuffer each time',
  { timeout: T },
  async () => {
    const sizes: Record<string, number> = { '/8k': 8 * 1024, '/12': 12, '/empty': 0, '/256k': 256 * 1024 };
    const server = await startHttpServer((req, res) => void res.end(Buffer.alloc(sizes[req.url!] ?? 0, 'x')));
    try {
      await withAgent(async (agent) => {
        for (const path of Object.keys(sizes)) {
          const res = await fetch(`${server.url}${path}`, { agent });
          const copy = res.clone();
          const mine = await res.arrayBuffer();
          new Uint8Array(mine).fill(0); // the caller owns what it was given
          const theirs = new Uint8Array(await copy.arrayBuffer());
          assert.equal(theirs.length, sizes[path], path);
          assert.ok(
            theirs.every((b) => b === 0x78),
            `${path}: the clone's bytes were changed through the original's`,
          );
        }
        // Transferring (detaching) one empty body's ArrayBuffer leaves the next response's intact.
        const first = await (await fetch(`${server.url}/empty`, { agent })).arrayBuffer();
        structuredClone(first, { transfer: [first] });
        const second = await (await fetch(`${server.url}/empty`, { agent })).arrayBuffer();
        assert.equal(second.byteLength, 0);
        assert.notEqual(first, second);
        assert.deepEqual(new Uint8Array(second), new Uint8Array(0));
      });
    } finally {
      await server.close();
    }
  },
);
