/**
 * The response body's two paths: chunks held back until the body is read as a stream (or taken whole
 * by text()/bytes()), and bodies of known length gathered into one buffer. Every size and framing is
 * read every way, against a real node:http server, and must come out byte for byte.
 */
import assert from 'node:assert/strict';
import * as nodeStream from 'node:stream';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Agent, Client, type Response } from '../src/index.js';
import { type TestHttpServer, startHttpServer } from './helpers/http-server.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Deterministic bytes, so a misplaced or missing chunk changes the content, not only the length. */
function pattern(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

const SIZES = [0, 1, 12, 64 * 1024 - 1, 64 * 1024, 200 * 1024, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024];

let server: TestHttpServer;
let agent: Agent;
let client: Client;

before(async () => {
  server = await startHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const body = pattern(Number(url.searchParams.get('size')));
    if (url.searchParams.get('framing') === 'pieces') {
      // Content-Length, and the body in pieces of 1, 7, 127, 128 and 129 bytes and what is left, each
      // its own write a few ms apart: each its own read, so pieces land at offsets inside the body.
      res.writeHead(200, { 'content-length': body.length });
      let at = 0;
      const sizes = [1, 7, 127, 128, 129];
      const next = (): void => {
        const n = sizes.shift() ?? body.length - at;
        res.write(body.subarray(at, at + n));
        at += n;
        if (at < body.length) setTimeout(next, 3);
        else res.end();
      };
      next();
    } else if (url.searchParams.get('framing') === 'chunked') {
      // Several writes of uneven sizes, so chunk boundaries fall inside the reads.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let at = 0;
      for (let n = 1; at < body.length; n = n * 3 + 7) {
        res.write(body.subarray(at, Math.min(body.length, at + n)));
        at += n;
      }
      res.end();
    } else {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    }
  });
  agent = new Agent();
  client = new Client({ agent, baseUrl: server.url });
});

after(async () => {
  await agent.close();
  await server.close();
});

const get = (size: number, framing: string): Promise<Response> =>
  client.request(`/?size=${size}&framing=${framing}`);
const waitForBody = (res: Response) =>
  new Promise<void>((resolve) => {
    const check = () => (res.body.complete ? resolve() : setTimeout(check, 2));
    check();
  });

async function collectStream(res: Response): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

for (const framing of ['length', 'chunked']) {
  describe(`body framed by ${framing === 'length' ? 'Content-Length' : 'chunked encoding'}`, () => {
    for (const size of SIZES) {
      it(`${size} bytes: bytes() right away returns them all, in order`, async () => {
        const res = await get(size, framing);
        assert.deepEqual(await res.body.bytes(), pattern(size));
      });

      it(`${size} bytes: text() after the body has arrived returns them all`, async () => {
        const res = await get(size, framing);
        if (size <= 64 * 1024) await waitForBody(res); // larger ones pause until read
        assert.equal(await res.body.text(), pattern(size).toString('utf8'));
      });

      it(`${size} bytes: for-await reads them all and the stream ends`, async () => {
        const res = await get(size, framing);
        assert.deepEqual(await collectStream(res), pattern(size));
        assert.equal(res.body.readableEnded, true);
      });

      it(`${size} bytes: a 'data' listener attached after the body arrived gets every byte, then 'end'`, async () => {
        const res = await get(size, framing);
        if (size <= 64 * 1024) await waitForBody(res);
        const chunks: Buffer[] = [];
        await new Promise<void>((resolve, reject) => {
          res.body.on('data', (c: Buffer) => chunks.push(c));
          res.body.on('end', resolve);
          res.body.on('error', reject);
        });
        assert.deepEqual(Buffer.concat(chunks), pattern(size));
      });
    }
  });
}

describe('body reader rules', () => {
  it('a slow pipe() destination gets every byte (backpressure both ways) and the connection is reused', async () => {
    const size = 3 * 1024 * 1024;
    const res = await get(size, 'length');
    const chunks: Buffer[] = [];
    await pipeline(
      res.body,
      new Writable({
        highWaterMark: 1024,
        write(chunk: Buffer, _enc, cb) {
          chunks.push(chunk);
          setImmediate(cb);
        },
      }),
    );
    assert.deepEqual(Buffer.concat(chunks), pattern(size));
    const again = await get(12, 'length');
    await again.body.dump();
    assert.equal(again.connection.reused, true);
  });

  it('a body of known length that arrives in pieces of either side of 128 bytes is gathered byte for byte', async () => {
    for (const size of [12, 392, 393, 1000]) {
      const res = await get(size, 'pieces');
      assert.deepEqual(await res.body.bytes(), pattern(size), `${size} bytes`);
    }
  });

  it('bytes() twice: the second fails with WARMPOOL_BODY_USED', async () => {
    const res = await get(12, 'length');
    await res.body.bytes();
    await assert.rejects(res.body.bytes(), { code: 'WARMPOOL_BODY_USED' });
  });

  it('bytes() after the stream was partly read returns the rest', async () => {
    const res = await get(200 * 1024, 'length');
    const first = await new Promise<Buffer>((resolve) => res.body.once('data', resolve));
    res.body.pause();
    const rest = await res.body.bytes();
    assert.deepEqual(Buffer.concat([first, rest]), pattern(200 * 1024));
  });

  it('a small body gathered whole does not share memory with the socket read buffer', async () => {
    const res = await get(12, 'length');
    const bytes = await res.body.bytes();
    // A view into the socket's read buffer would sit in a 64 KiB ArrayBuffer and pin it.
    assert.ok(bytes.buffer.byteLength < 64 * 1024, `backed by ${bytes.buffer.byteLength} bytes`);
  });
});

/**
 * A server that writes each body in `piece`-byte writes a turn of the event loop apart (chunked), so
 * the client's reads are short and, across connections, interleaved. `bodyFor` picks the body from
 * the request URL.
 */
function startTrickleServer(piece: number, bodyFor: (url: URL) => Buffer): Promise<TestHttpServer> {
  return startHttpServer((req, res) => {
    const body = bodyFor(new URL(req.url ?? '/', 'http://x'));
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let at = 0;
    const next = () => {
      if (at >= body.length) {
        res.end();
        return;
      }
      res.write(body.subarray(at, at + piece));
      at += piece;
      setImmediate(next);
    };
    next();
  });
}

describe('the shared read buffer (cleartext HTTP/1.1 sockets read into one scratch buffer)', () => {
  it('chunks kept by bodies read at once on several connections come out intact', async () => {
    // Each response is written in many small pieces a turn apart, so the reads of the four sockets
    // interleave: a chunk kept as a view of the shared buffer would be overwritten by the next read.
    const slow = await startTrickleServer(1500, (url) => {
      const seed = Number(url.searchParams.get('seed'));
      return pattern(40 * 1024 + seed).subarray(seed);
    });
    const a = new Agent();
    try {
      const c = new Client({ agent: a, baseUrl: slow.url });
      const seeds = [1, 2, 3, 4];
      const bodies = await Promise.all(
        seeds.map(async (seed) => {
          const res = await c.request(`/?seed=${seed}`);
          const chunks: Buffer[] = [];
          await new Promise<void>((resolve, reject) => {
            res.body.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.body.on('end', resolve);
            res.body.on('error', reject);
          });
          return { seed, chunks, connection: res.connection.id };
        }),
      );
      assert.equal(new Set(bodies.map((b) => b.connection)).size, seeds.length, 'one connection each');
      for (const { seed, chunks } of bodies) {
        assert.ok(chunks.length > 1, 'the body came in several chunks');
        assert.deepEqual(Buffer.concat(chunks), pattern(40 * 1024 + seed).subarray(seed), `seed ${seed}`);
      }
    } finally {
      await a.close();
      await slow.close();
    }
  });
});

describe('read buffers of bodies that keep their chunks', () => {
  it('a body streamed in small pieces keeps small chunks: no chunk pins a 64 KiB read buffer', async () => {
    // The body is read as a stream, so the connection reads into buffers of its own; a short read
    // must be copied out at its size rather than handed over with the 64 KiB buffer around it.
    await streamedInSmallPiecesPinsNothing(); // chunked: no length to gather by, chunks kept as they come
  });

  it('connections idle in the pool after streamed bodies hold no read buffer of their own', async () => {
    // Each body ends with a short read into the connection's own buffer, which is kept for the next
    // read while the body lasts; once it has ended, the connection goes back to the shared buffer
    // and lets its own go: 32 idle connections would otherwise hold 64 KiB each.
    const n = 32;
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(pattern(40 * 1024));
      setTimeout(() => res.end(pattern(10)), 30);
    });
    const a = new Agent({ maxConnectionsPerOrigin: n });
    try {
      const c = new Client({ agent: a, baseUrl: srv.url });
      await c.request('/').then((r) => r.body.dump()); // the shared buffer and the first connection
      const external = () => {
        for (let i = 0; i < 3; i++) gc();
        return process.memoryUsage().arrayBuffers;
      };
      const before = external();
      await Promise.all(
        Array.from({ length: n }, async () => {
          const res = await c.request('/');
          for await (const _ of res.body);
        }),
      );
      assert.equal(a.originStats(srv.url)?.idle, n, 'every connection idle in the pool');
      await new Promise((r) => setTimeout(r, 20));
      const held = external() - before;
      assert.ok(
        held < (n * 64 * 1024) / 4,
        `${n} idle connections hold ${(held / 1024).toFixed(0)} KiB of buffers`,
      );
    } finally {
      await a.close();
      await srv.close();
    }
  });
});

/** A 200 KiB chunked body that trickles in and is read as a stream: no small chunk pins 64 KiB. */
async function streamedInSmallPiecesPinsNothing(): Promise<void> {
  const size = 200 * 1024;
  const trickle = await startTrickleServer(700, () => pattern(size));
  const a = new Agent();
  try {
    const res = await new Client({ agent: a, baseUrl: trickle.url }).request('/');
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), pattern(size));
    const pinned = chunks.filter((c) => c.length < 16 * 1024 && c.buffer.byteLength >= 64 * 1024);
    assert.equal(pinned.length, 0, `${pinned.length} of ${chunks.length} small chunks pin a 64 KiB buffer`);
  } finally {
    await a.close();
    await trickle.close();
  }
}

/**
 * Makes node's buffer pool `size` bytes from the next allocation on, and returns the size it had. An
 * allocation just under half the new size does not fit the current pool, so a pool of the new size
 * is made at once.
 */
function setNodePoolSize(size: number): number {
  const was = Buffer.poolSize;
  Buffer.poolSize = size;
  Buffer.allocUnsafe((size >>> 1) - 1);
  return was;
}

describe("with node's buffer pool at 64 KiB (its default since Node 24.22), kept bytes stay off it", () => {
  // On Node 24.22+ node's pool is already this size; on earlier versions this makes it so, and the
  // same bodies must come out the same: a few bytes kept by their caller never pin 64 KiB.
  let poolSizeWas = 0;
  before(() => {
    poolSizeWas = setNodePoolSize(64 * 1024);
  });
  after(() => {
    setNodePoolSize(poolSizeWas);
  });

  it('a small body of known length gathered whole is not a slice of a 64 KiB buffer', async () => {
    const bytes = await (await get(12, 'length')).body.bytes();
    assert.deepEqual(bytes, pattern(12));
    assert.ok(bytes.buffer.byteLength < 64 * 1024, `backed by ${bytes.buffer.byteLength} bytes`);
  });

  it('a small chunked body read whole is not a slice of a 64 KiB buffer', async () => {
    const bytes = await (await get(100, 'chunked')).body.bytes();
    assert.deepEqual(bytes, pattern(100));
    assert.ok(bytes.buffer.byteLength < 64 * 1024, `backed by ${bytes.buffer.byteLength} bytes`);
  });

  it('chunks held over several reads, then read as a stream, come out without pinning 64 KiB', async () => {
    // Five pieces a turn apart: five reads, held (the body is not read yet) until the whole has come.
    const size = 5 * 700;
    const trickle = await startTrickleServer(700, () => pattern(size));
    const a = new Agent();
    try {
      const res = await new Client({ agent: a, baseUrl: trickle.url }).request('/');
      await waitForBody(res);
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) chunks.push(chunk as Buffer);
      assert.deepEqual(Buffer.concat(chunks), pattern(size));
      const pinned = chunks.filter((c) => c.buffer.byteLength >= 64 * 1024);
      assert.equal(pinned.length, 0, `${pinned.length} of ${chunks.length} chunks pin a 64 KiB buffer`);
    } finally {
      await a.close();
      await trickle.close();
    }
  });

  it('a body streamed in small pieces keeps small chunks that pin no 64 KiB buffer', async () => {
    await streamedInSmallPiecesPinsNothing();
  });
});

/**
 * A sink that pauses after every `pauseEvery`-th chunk (by returning false) and resumes a loop turn
 * later; it records whether anything arrived while it was paused or after its end.
 */
function pausingSink(res: Response, pauseEvery: number) {
  const chunks: Buffer[] = [];
  let paused = false;
  let arrivedWhilePaused = 0;
  let ended = false;
  let arrivedAfterEnd = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    res.body.sinkTo({
      onChunk(chunk) {
        if (paused) arrivedWhilePaused++;
        if (ended) arrivedAfterEnd++;
        chunks.push(chunk);
        if (chunks.length % pauseEvery !== 0) return true;
        paused = true;
        setImmediate(() => {
          paused = false;
          res.body.resumeSink();
        });
        return false;
      },
      onEnd() {
        if (paused) arrivedWhilePaused++;
        ended = true;
        resolve(Buffer.concat(chunks));
      },
      onError: reject,
    });
  });
  return { done, chunks, counts: () => ({ arrivedWhilePaused, arrivedAfterEnd }) };
}

describe('sinkTo(): the body straight from the connection to one reader (WarmpoolDispatcher)', () => {
  for (const framing of ['length', 'chunked']) {
    for (const size of [0, 12, 64 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024]) {
      it(`${size} bytes, ${framing}: a sink that pauses every other chunk gets them all in order, none while paused, then the end`, async () => {
        const res = await get(size, framing);
        const sink = pausingSink(res, 2);
        assert.deepEqual(await sink.done, pattern(size));
        assert.deepEqual(sink.counts(), { arrivedWhilePaused: 0, arrivedAfterEnd: 0 });
        const again = await get(12, 'length');
        await again.body.dump();
        assert.equal(again.connection.reused, true, 'the connection went back to the pool');
      });
    }
  }

  it('chunks a sink keeps, from bodies on several connections read at once, come out intact', async () => {
    // The shared scratch read buffer again: a sink keeps what it is given, so what it is given must
    // not be a view the next read overwrites.
    const slow = await startTrickleServer(1500, (url) =>
      pattern(40 * 1024).subarray(Number(url.searchParams.get('seed'))),
    );
    const a = new Agent();
    try {
      const c = new Client({ agent: a, baseUrl: slow.url });
      const bodies = await Promise.all(
        [1, 2, 3, 4].map(async (seed) => {
          const res = await c.request(`/?seed=${seed}`);
          return { seed, bytes: await pausingSink(res, 3).done };
        }),
      );
      for (const { seed, bytes } of bodies)
        assert.deepEqual(bytes, pattern(40 * 1024).subarray(seed), `seed ${seed}`);
    } finally {
      await a.close();
      await slow.close();
    }
  });

  it('a paused sink holds the socket: the server cannot finish writing until the sink resumes', async () => {
    const size = 8 * 1024 * 1024;
    let finished = false;
    const big = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': size });
      res.end(pattern(size), () => {
        finished = true;
      });
    });
    const a = new Agent();
    try {
      const res = await new Client({ agent: a, baseUrl: big.url }).request('/');
      let received = 0;
      let resume: (() => void) | null = null;
      const done = new Promise<void>((resolve, reject) =>
        res.body.sinkTo({
          onChunk(chunk) {
            received += chunk.length;
            if (resume !== null) return true;
            resume = () => res.body.resumeSink();
            return false;
          },
          onEnd: () => resolve(),
          onError: reject,
        }),
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(resume !== null, 'the sink got its first chunk');
      assert.equal(finished, false, 'the server finished writing although the sink was paused');
      assert.ok(received < size, `${received} bytes arrived while paused`);
      (resume as () => void)();
      await done;
      assert.equal(received, size);
    } finally {
      await a.close();
      await big.close();
    }
  });

  it('a connection cut mid-body: onError once, no onEnd', async () => {
    const cut = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': 100_000 });
      res.write(pattern(30_000));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const a = new Agent();
    try {
      const res = await new Client({ agent: a, baseUrl: cut.url }).request('/');
      const events: string[] = [];
      let bytes = 0;
      await new Promise<void>((resolve) => {
        res.body.sinkTo({
          onChunk(chunk) {
            bytes += chunk.length;
            return true;
          },
          onEnd: () => events.push('end'),
          onError: (err) => {
            events.push(`error ${(err as { code?: string }).code}`);
            setTimeout(resolve, 50); // anything after the error would be seen by now
          },
        });
      });
      assert.equal(events.length, 1, events.join(', '));
      assert.match(events[0]!, /^error WARMPOOL_/);
      assert.equal(bytes, 30_000);
    } finally {
      await a.close();
      await cut.close();
    }
  });

  it('a sink that destroys the body from inside onChunk gets nothing more: no chunk, no end, no error', async () => {
    // Paused first, so several chunks are held when it resumes: the flush loop must stop at once.
    const res = await get(3 * 1024 * 1024, 'chunked');
    const events: string[] = [];
    res.body.sinkTo(
      {
        onChunk() {
          events.push('chunk');
          res.body.destroy();
          return true;
        },
        onEnd: () => events.push('end'),
        onError: (err) => events.push(`error ${(err as { code?: string }).code}`),
      },
      true,
    );
    await new Promise((r) => setTimeout(r, 30));
    res.body.resumeSink();
    await new Promise((r) => setTimeout(r, 50)); // anything after the destroy would be seen by now
    assert.deepEqual(events, ['chunk']);
    assert.equal(res.body.destroyed, true);
  });

  it('sinkTo() on a body already read fails with WARMPOOL_BODY_USED', async () => {
    const res = await get(12, 'length');
    await res.body.bytes();
    assert.throws(() => res.body.sinkTo({ onChunk: () => true, onEnd() {}, onError() {} }), {
      code: 'WARMPOOL_BODY_USED',
    });
  });
});

/** node:stream's isDisturbed (Node 16.8+), absent from @types/node. */
const isDisturbed = (nodeStream as unknown as { isDisturbed(stream: Readable): boolean }).isDisturbed;

describe('the Readable made on first use (a body read whole never makes one)', () => {
  const made = (res: Response): boolean => Object.hasOwn(res.body, '_readableState');

  it('bytes(), text() and dump() read the body without making its Readable', async () => {
    for (const read of ['bytes', 'text', 'dump'] as const) {
      const res = await get(12, 'length');
      await res.body[read]();
      assert.equal(made(res), false, read);
    }
  });

  it("the body is a Readable of the request's highWaterMark, made when first asked", async () => {
    const res = await client.request('/?size=12&framing=length', { highWaterMark: 1000 });
    assert.ok(res.body instanceof Readable);
    assert.equal(made(res), false);
    assert.equal(res.body.readableHighWaterMark, 1000);
    assert.equal(made(res), true);
    assert.deepEqual(await collectStream(res), pattern(12));
    // The statics are Readable's, as for a subclass.
    assert.equal((res.body.constructor as typeof Readable).from, Readable.from);
  });

  it('listeners and a listener limit set before the Readable exists survive its making', async () => {
    const res = await get(200 * 1024, 'chunked');
    const events: string[] = [];
    res.body.setMaxListeners(3);
    assert.equal(made(res), false);
    // The first listener is added before the Readable is made (Readable's on() makes it just after).
    res.body.once('end', () => events.push('end'));
    assert.equal(made(res), true);
    res.body.once('close', () => events.push('close'));
    const chunks: Buffer[] = [];
    res.body.on('data', (c: Buffer) => chunks.push(c)); // makes it, and starts the flow
    await finished(res.body);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(Buffer.concat(chunks), pattern(200 * 1024));
    assert.deepEqual(events, ['end', 'close']);
    assert.equal(res.body.getMaxListeners(), 3);
  });

  it('destroy() on a body never read makes the Readable to destroy it: close, and the connection is not reused', async () => {
    const before = server.stats.connectionsTotal;
    const res = await get(1024 * 1024 + 1, 'length');
    const closed = new Promise<void>((resolve) => res.body.once('close', resolve));
    res.body.destroy();
    await closed;
    assert.equal(res.body.destroyed, true);
    assert.deepEqual(await (await get(12, 'length')).body.bytes(), pattern(12));
    assert.equal(server.stats.connectionsTotal, before + 1);
  });

  it("node:stream's own helpers see a Readable: pipeline(), isDisturbed(), Readable.toWeb()", async () => {
    const piped: Buffer[] = [];
    await pipeline(
      (await get(64 * 1024, 'chunked')).body,
      new Writable({
        write(c: Buffer, _e, cb) {
          piped.push(c);
          cb();
        },
      }),
    );
    assert.deepEqual(Buffer.concat(piped), pattern(64 * 1024));
    const res = await get(12, 'length');
    assert.equal(isDisturbed(res.body), false);
    const web = Readable.toWeb(res.body);
    const bytes = Buffer.from(await new globalThis.Response(web as ReadableStream).arrayBuffer());
    assert.deepEqual(bytes, pattern(12));
    assert.equal(isDisturbed(res.body), true);
  });
});
