/**
 * The canned HTTP/2 bench server (bench/h2-server.ts and bench/h2-wire/): its HPACK decoder against
 * RFC 7541's examples and against what node:http2 itself encodes, and the server against real
 * node:http2 sessions, raw frames, and the bench's own clients (warmpool, undici allowH2, the floor).
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { type ServerHandle, benchCa, benchCert, startH2Server } from '../bench/common.js';
import { rawHttp2KeepingBody, undiciH2Pool } from '../bench/h2-clients.js';
import { serveCannedH2 } from '../bench/h2-wire/canned-connection.js';
import { cannedH2Responses } from '../bench/h2-wire/canned-responses.js';
import {
  ACK,
  DATA,
  END_HEADERS,
  END_STREAM,
  GOAWAY,
  HEADERS,
  PREFACE,
  PROTOCOL_ERROR,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  SETTINGS_INITIAL_WINDOW_SIZE,
  frame,
  settingsFrame,
  windowUpdateFrame,
} from '../bench/h2-wire/frames.js';
import { HpackDecoder, HpackError, encodeHead } from '../bench/h2-wire/hpack.js';
import { huffmanCode, huffmanDecode } from '../bench/h2-wire/huffman.js';
import { warmpoolH2Client } from '../bench/warmpool.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HPACK decoding', () => {
  it('decodes the request examples of RFC 7541 C.3 (raw) and C.4 (Huffman), dynamic table included', () => {
    const expected = [
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
      ],
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
        ['cache-control', 'no-cache'],
      ],
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ],
    ];
    const raw = [
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ];
    const huffman = [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ];
    for (const blocks of [raw, huffman]) {
      const decoder = new HpackDecoder();
      blocks.forEach((block, i) => assert.deepEqual(decoder.decode(hex(block)), expected[i]));
    }
  });

  it('evicts the oldest entries when the table is full, and honours a size update', () => {
    const decoder = new HpackDecoder();
    // Size update to 80, then two literals with incremental indexing (name "a", value 40 x's: 73
    // octets each with the 32 of overhead): the second pushes the first out.
    const literal = (v: string) => Buffer.concat([Buffer.from([0x40, 1, 0x61, v.length]), Buffer.from(v)]);
    const first = 'x'.repeat(40);
    const second = 'y'.repeat(40);
    assert.deepEqual(
      decoder.decode(Buffer.concat([Buffer.from([0x3f, 0x31]), literal(first), literal(second)])),
      [
        ['a', first],
        ['a', second],
      ],
    );
    assert.deepEqual(decoder.decode(Buffer.from([0x80 | 62])), [['a', second]]);
    assert.throws(() => decoder.decode(Buffer.from([0x80 | 63])), HpackError);
  });

  it('rejects malformed blocks: index 0, a size update after a field or over the limit, a cut string', () => {
    const decoder = new HpackDecoder();
    assert.throws(() => decoder.decode(Buffer.from([0x80])), HpackError);
    assert.throws(() => decoder.decode(Buffer.from([0x82, 0x20])), HpackError);
    assert.throws(() => decoder.decode(Buffer.from([0x3f, 0xe2, 0x1f])), HpackError); // 4097 > 4096
    assert.throws(() => decoder.decode(Buffer.from([0x04, 0x05, 0x2f])), HpackError);
  });

  it('derives the Huffman codes of RFC 7541 Appendix B from the code lengths', () => {
    // [symbol, code, bits] as the appendix lists them.
    const rows: Array<[number, number, number]> = [
      [0, 0x1ff8, 13],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [65, 0x21, 6],
      [97, 0x3, 5],
      [126, 0x1ffd, 13],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, bits] of rows) assert.deepEqual(huffmanCode(sym), { code, bits }, `symbol ${sym}`);
  });

  it('rejects Huffman padding that is too long or not all ones', () => {
    // "0" is 00000 (5 bits): 0x07 = 00000 111 is "0" and three bits of padding.
    assert.equal(huffmanDecode(Buffer.from([0x07]), 0, 1).toString('latin1'), '0');
    assert.throws(() => huffmanDecode(Buffer.from([0x06]), 0, 1), /padding/);
    assert.throws(() => huffmanDecode(Buffer.from([0x07, 0xff]), 0, 2), /padding/);
  });

  it('decodes every field value node:http2 can send, Huffman-coded symbol by symbol', async () => {
    // Every octet node accepts in a value (tab, 0x20-0x7e, 0x80-0xff), each behind 40 e's so that
    // nghttp2 Huffman-codes the value (it does when that is shorter). The blocks are captured from a
    // real session by a server that only reads frames.
    const symbols = [9];
    for (let c = 0x20; c <= 0x7e; c++) symbols.push(c);
    for (let c = 0x80; c <= 0xff; c++) symbols.push(c);
    const sent: Array<Record<string, string>> = [];
    for (let i = 0; i < symbols.length; i += 16) {
      const headers: Record<string, string> = {};
      for (const c of symbols.slice(i, i + 16))
        headers[`x-s${c}`] = `${'e'.repeat(40)}${String.fromCharCode(c)}e`;
      sent.push(headers);
    }
    const blocks = await captureHeaderBlocks(sent);
    assert.equal(blocks.length, sent.length);
    const decoder = new HpackDecoder();
    blocks.forEach((block, i) => {
      const fields = Object.fromEntries(decoder.decode(block).filter(([n]) => n.startsWith('x-s')));
      assert.deepEqual(fields, sent[i]);
    });
    // nghttp2 did Huffman-code them: a raw literal of 42 octets would make the block much larger.
    assert.ok(blocks[0]!.length < 16 * 42);
  });

  it('encodes response heads with static indexes and literals that leave the dynamic table alone', () => {
    const head = encodeHead(200, [
      ['content-type', 'application/octet-stream'],
      ['content-length', '12'],
      ['x-extra', 'yes'],
    ]);
    const decoder = new HpackDecoder();
    const fields = [
      [':status', '200'],
      ['content-type', 'application/octet-stream'],
      ['content-length', '12'],
      ['x-extra', 'yes'],
    ];
    assert.deepEqual(decoder.decode(head), fields);
    assert.throws(() => decoder.decode(Buffer.from([0x80 | 62])), HpackError); // nothing was indexed
    assert.deepEqual(new HpackDecoder().decode(encodeHead(299, [])), [[':status', '299']]);
  });
});

/** Header blocks of the requests a node:http2 session sends with `headers`, one block each. */
async function captureHeaderBlocks(requests: Array<Record<string, string>>): Promise<Buffer[]> {
  const blocks: Buffer[] = [];
  let done: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const server = net.createServer((socket) => {
    socket.write(settingsFrame([]));
    let buf = Buffer.alloc(0);
    let preface = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!preface) {
        if (buf.length < PREFACE.length) return;
        buf = buf.subarray(PREFACE.length);
        preface = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        if (buf[3] === HEADERS) {
          assert.ok(buf[4]! & END_HEADERS, 'one frame per block');
          blocks.push(Buffer.from(buf.subarray(9, 9 + len)));
          if (blocks.length === requests.length) done();
        } else if (buf[3] === SETTINGS && !(buf[4]! & ACK)) socket.write(frame(SETTINGS, ACK, 0));
        buf = buf.subarray(9 + len);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  session.on('error', () => {});
  for (const headers of requests) session.request({ ':path': '/', ...headers }).on('error', () => {});
  await all;
  session.destroy();
  server.close();
  return blocks;
}

describe('the canned HTTP/2 server', () => {
  let server: tls.Server;
  let origin: string;
  let requests = 0;
  before(async () => {
    const { cert, key } = benchCert();
    const respond = cannedH2Responses();
    server = tls.createServer({ cert, key, ALPNProtocols: ['h2'] }, (socket) =>
      serveCannedH2(socket, {
        respond,
        onRequest: () => {
          requests++;
        },
        maxStreams: 4,
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  function connect(settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
    const session = http2.connect(origin, { ca: benchCa(), settings });
    return new Promise((resolve, reject) => {
      session.once('remoteSettings', () => resolve(session));
      session.once('error', reject);
    });
  }

  function get(
    session: http2.ClientHttp2Session,
    path: string,
  ): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const stream = session.request({ ':path': path });
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      stream.on('response', (h) => {
        headers = h;
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () =>
        resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks) }),
      );
      stream.on('error', reject);
    });
  }

  it('answers each path with its canned head and body, and 404 for others', async () => {
    const session = await connect();
    try {
      const small = await get(session, '/12');
      assert.equal(small.status, 200);
      assert.equal(small.headers['content-type'], 'application/octet-stream');
      assert.equal(small.headers['content-length'], '12');
      assert.equal(small.body.toString(), 'hello world\n');
      // 1 MiB through node's default windows (64 KiB per stream and per session): the server sends
      // on each WINDOW_UPDATE.
      assert.equal((await get(session, '/1m')).body.length, 1024 * 1024);
      const missing = await get(session, '/nope');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.toString(), 'not found\n');
    } finally {
      session.destroy();
    }
  });

  it('keeps to each stream window with many streams in flight', async () => {
    // 16 KiB stream windows: every 64 KiB body waits for WINDOW_UPDATE three times, on 24 streams
    // that the server takes four at a time. (The connection window is the raw-frame test's below:
    // node:http2 would not notice it overrun.)
    const session = await connect({ initialWindowSize: 16 * 1024 });
    try {
      const bodies = await Promise.all(Array.from({ length: 24 }, () => get(session, '/64k')));
      for (const b of bodies) assert.equal(b.body.length, 64 * 1024);
    } finally {
      session.destroy();
    }
  });

  it('applies a new SETTINGS_INITIAL_WINDOW_SIZE to streams already waiting for window', async () => {
    // Start with no window at all: the body cannot start until the settings change.
    const session = await connect({ initialWindowSize: 0 });
    try {
      const pending = get(session, '/64k');
      await new Promise((resolve) => setTimeout(resolve, 50));
      session.settings({ initialWindowSize: 1024 * 1024 });
      assert.equal((await pending).body.length, 64 * 1024);
    } finally {
      session.destroy();
    }
  });

  it('drops a stream the client resets and goes on serving the connection', async () => {
    const session = await connect();
    try {
      const stream = session.request({ ':path': '/1m' });
      stream.on('error', () => {});
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      assert.equal((await get(session, '/12')).body.toString(), 'hello world\n');
    } finally {
      session.destroy();
    }
  });

  it('answers PING', async () => {
    const session = await connect();
    try {
      await new Promise<void>((resolve, reject) => {
        session.ping((err) => (err ? reject(err) : resolve()));
      });
    } finally {
      session.destroy();
    }
  });

  it('refuses a stream over its SETTINGS_MAX_CONCURRENT_STREAMS (raw frames)', async () => {
    // Four /1m streams with no window stay open; the fifth is refused.
    const c = await rawClient();
    try {
      c.send(settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 0]]));
      for (const id of [1, 3, 5, 7, 9]) c.send(frame(HEADERS, END_HEADERS | END_STREAM, id, getBlock('/1m')));
      const rst = await c.waitFor((f) => f.type === RST_STREAM);
      assert.equal(rst.id, 9);
      assert.equal(rst.payload.readUInt32BE(0), REFUSED_STREAM);
      assert.deepEqual(
        c.frames.filter((f) => f.type === HEADERS).map((f) => f.id),
        [1, 3, 5, 7],
      );
    } finally {
      c.close();
    }
  });

  it('sends no more than the connection window, and goes on with each WINDOW_UPDATE (raw frames)', async () => {
    // Stream windows of 1 MiB, the connection's at its initial 65 535: that is all the DATA there may
    // be until the connection's WINDOW_UPDATE.
    const c = await rawClient();
    const dataBytes = () => c.frames.reduce((n, f) => n + (f.type === DATA ? f.payload.length : 0), 0);
    try {
      c.send(settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20]]));
      c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, getBlock('/1m')));
      await c.waitFor(() => dataBytes() >= 65_535);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(dataBytes(), 65_535);
      c.send(windowUpdateFrame(0, 100_000));
      await c.waitFor(() => dataBytes() >= 165_535);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(dataBytes(), 165_535);
      assert.ok(
        c.frames.every((f) => f.type !== DATA || f.payload.length <= 16_384),
        'frames within 16 KiB',
      );
    } finally {
      c.close();
    }
  });

  it('answers a broken preface with GOAWAY (PROTOCOL_ERROR) and ends the connection', async () => {
    const c = await rawClient(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    try {
      const goaway = await c.waitFor((f) => f.type === GOAWAY);
      assert.equal(goaway.payload.readUInt32BE(4), PROTOCOL_ERROR);
      await c.closed;
    } finally {
      c.close();
    }
  });

  it('counts each request once', async () => {
    const before = requests;
    const session = await connect();
    try {
      await Promise.all([get(session, '/12'), get(session, '/12'), get(session, '/64k')]);
    } finally {
      session.destroy();
    }
    assert.equal(requests - before, 3);
  });

  interface Frame {
    type: number;
    flags: number;
    id: number;
    payload: Buffer;
  }

  /** A GET for `path` as a header block: static indexes and literals, nothing indexed. */
  function getBlock(path: string): Buffer {
    const literal = (index: number, value: string) =>
      Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value, 'latin1')]);
    return Buffer.concat([Buffer.from([0x82, 0x87]), literal(4, path), literal(1, 'localhost')]);
  }

  /**
   * A client speaking raw frames over TLS (ALPN h2): it sends the preface (or `preface`), then what
   * `send` is given, and keeps every frame the server sends in `frames`.
   */
  async function rawClient(preface = PREFACE) {
    const { port } = server.address() as AddressInfo;
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: benchCa(),
      ALPNProtocols: ['h2'],
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    socket.write(preface);
    const frames: Frame[] = [];
    const waiters = new Set<() => void>();
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        frames.push({
          type: buf[3]!,
          flags: buf[4]!,
          id: buf.readUInt32BE(5),
          payload: buf.subarray(9, 9 + len),
        });
        buf = buf.subarray(9 + len);
      }
      for (const w of waiters) w();
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    return {
      frames,
      closed,
      send: (bytes: Buffer) => socket.write(bytes),
      /** The first frame `pred` holds for (called with no frame: a condition on `frames`). */
      waitFor(pred: (f: Frame) => boolean): Promise<Frame> {
        return new Promise((resolve, reject) => {
          const check = () => {
            const f = frames.find(pred);
            if (f === undefined) return;
            waiters.delete(check);
            resolve(f);
          };
          waiters.add(check);
          check();
          void closed.then(() => {
            if (waiters.delete(check)) reject(new Error('connection closed first'));
          });
        });
      },
      close: () => socket.destroy(),
    };
  }
});

describe('the bench clients against the canned server process', () => {
  let server: ServerHandle;
  before(async () => {
    server = await startH2Server();
  });
  after(() => server.close());

  for (const spec of [warmpoolH2Client, undiciH2Pool, rawHttp2KeepingBody]) {
    it(`${spec.name}: whole bodies of 12 B and 64 KiB at 16 streams at a time`, async () => {
      await server.reset();
      const runner = await spec.create(server.origin, 16);
      try {
        // Each request checks its body's length (checkBodyLength): a short body rejects.
        for (const path of ['/12', '/64k']) {
          await Promise.all(
            Array.from({ length: 16 }, async (_, w) => {
              for (let i = 0; i < 4; i++) await runner.request(path, w);
            }),
          );
        }
      } finally {
        await runner.close();
      }
      const stats = await server.stats();
      assert.equal(stats.requests, 2 * 16 * 4);
      assert.equal(stats.accepted, 1);
    });
  }
});
