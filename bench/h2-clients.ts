// The HTTP/2 clients (TLS, against bench/h2-server.ts), next to warmpool's own (warmpoolH2Client in
// bench/warmpool.ts). `connections` in ClientSpec.create is the number of workers, C: here C requests
// in flight as C streams of one session, the server allowing 100 at a time.
//
// Every adapter reads each response body to the end, as the HTTP/1.1 ones do.
import http2 from 'node:http2';
import type { ClientSpec } from './clients.js';
import { benchCa, checkBodyLength } from './common.js';
import { undici } from './undici.js';

const noop = () => {};

/**
 * undici's Pool with allowH2: one connection, one session. undici dispatches at most `pipelining`
 * requests at a time on a client, and over h2 that is the number of streams in flight; its default is
 * 1, so it is set to C (undici also caps it at the server's SETTINGS_MAX_CONCURRENT_STREAMS).
 */
export const undiciH2Pool: ClientSpec = {
  name: 'undici Pool allowH2',
  async create(origin, connections) {
    const pool = new undici.Pool(origin, {
      connections: 1,
      allowH2: true,
      pipelining: connections,
      connect: { ca: benchCa() },
    });
    return {
      async request(path, _w, headers) {
        const { body } = await pool.request({ path, method: 'GET', headers });
        checkBodyLength(path, (await body.arrayBuffer()).byteLength);
      },
      close: () => pool.close(),
    };
  },
};

/**
 * The floor: one node:http2 session, one session.request() per request with a prebuilt header
 * object, the body read to its end and discarded. What node:http2 itself costs; the gap to it is what
 * a client adds. Its flow-control windows are warmpool's (256 KiB per stream, 8 MiB per session), so
 * that a 64 KiB body never waits for a WINDOW_UPDATE here either (undici grants 256 KiB / 512 KiB).
 */
export const rawHttp2 = rawHttp2Client('node:http2 (floor)', false);

/**
 * The same floor, but keeping the body as one Buffer, as every client that returns the body whole
 * (warmpool's bytes(), undici's arrayBuffer()) must: node:http2 delivers a 64 KiB body in about eight
 * chunks, and gathering them is an allocation and a copy the bare floor never pays.
 */
export const rawHttp2KeepingBody = rawHttp2Client('node:http2, body kept (floor)', true);

function rawHttp2Client(name: string, keepBody: boolean): ClientSpec {
  return {
    name,
    async create(origin) {
      const session = http2.connect(origin, {
        ca: benchCa(),
        settings: { enablePush: false, initialWindowSize: 256 * 1024 },
      });
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
      });
      session.setLocalWindowSize(8 * 1024 * 1024);
      session.on('error', noop); // failures reach the streams
      const heads = new Map<string, http2.OutgoingHttpHeaders>();
      return {
        request(path, _w, headers) {
          let head = heads.get(path);
          if (head === undefined || headers) {
            head = { ':method': 'GET', ':path': path, ...headers };
            if (!headers) heads.set(path, head);
          }
          const stream = session.request(head, { endStream: true });
          return new Promise<void>((resolve, reject) => {
            let received = 0;
            const chunks: Buffer[] = [];
            stream.on('data', (c: Buffer) => {
              received += c.length; // flowing: every chunk is read
              if (keepBody) chunks.push(c);
            });
            stream.on('end', () => {
              try {
                checkBodyLength(path, keepBody ? Buffer.concat(chunks, received).length : received);
                resolve();
              } catch (err) {
                reject(err);
              }
            });
            stream.on('error', reject);
          });
        },
        async close() {
          session.destroy();
        },
      };
    },
  };
}
