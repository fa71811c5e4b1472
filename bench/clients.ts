// The clients under test, behind one small interface so the load loop treats them all alike.
//
// Every adapter reads each response body to the end (bytes, not just headers): a client that may skip
// the body does less work and would look faster than it is.
import http from 'node:http';
import net from 'node:net';
import { checkBodyLength } from './common.js';
import { undici } from './undici.js';

export interface Runner {
  /**
   * One GET of `path` for worker `w` (0 <= w < connections); resolves when the body is fully read.
   * `headers` (scenarios only) are extra request headers.
   */
  request(path: string, w: number, headers?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

export interface ClientSpec {
  name: string;
  /** A runner for `origin` allowed `connections` connections (= the number of workers). */
  create(origin: string, connections: number): Promise<Runner>;
}

const noop = () => {};

/** Prebuilt absolute URLs, so no client pays for string concatenation the others don't. */
export function urls(origin: string): (path: string) => string {
  const cache = new Map<string, string>();
  return (path) => {
    let u = cache.get(path);
    if (u === undefined) {
      u = origin + path;
      cache.set(path, u);
    }
    return u;
  };
}

export const undiciPool: ClientSpec = {
  name: 'undici Pool.request',
  async create(origin, connections) {
    const pool = new undici.Pool(origin, { connections });
    return {
      async request(path, _w, headers) {
        const { body } = await pool.request({ path, method: 'GET', headers });
        checkBodyLength(path, (await body.arrayBuffer()).byteLength);
      },
      close: () => pool.close(),
    };
  },
};

export const undiciFetchSpec: ClientSpec = {
  name: 'undici fetch',
  async create(origin, connections) {
    const dispatcher = new undici.Agent({ connections });
    const url = urls(origin);
    return {
      async request(path, _w, headers) {
        const res = await undici.fetch(url(path), { dispatcher, headers });
        checkBodyLength(path, (await res.arrayBuffer()).byteLength);
      },
      close: () => dispatcher.close(),
    };
  },
};

export const nodeHttp: ClientSpec = {
  name: 'node:http keepAlive',
  async create(origin, connections) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    const { hostname, port } = new URL(origin);
    return {
      request: (path, _w, headers) =>
        new Promise<void>((resolve, reject) => {
          const req = http.get({ agent, hostname, port, path, headers }, (res) => {
            let received = 0;
            res.on('data', (c: Buffer) => {
              received += c.length; // consume: flowing mode reads every chunk
            });
            res.on('end', () => {
              try {
                checkBodyLength(path, received);
                resolve();
              } catch (err) {
                reject(err);
              }
            });
            res.on('error', reject);
          });
          req.on('error', reject);
        }),
      async close() {
        agent.destroy();
      },
    };
  },
};

/**
 * The floor: one plain socket per worker, a prebuilt request Buffer, and only enough parsing to know
 * where the response ends (the head is parsed once per path for its Content-Length; after that a
 * response is just a byte count, since the server's responses are canned). Every socket reads into
 * one shared buffer (net.connect's `onread`, as warmpool's cleartext sockets do), so no read
 * allocates. No HTTP client can beat this on the same server; the gap to it is what a client costs.
 */
export const rawSocket: ClientSpec = {
  name: 'raw socket (floor)',
  async create(origin, connections) {
    const { hostname, port } = new URL(origin);
    const lengths = new Map<string, number>(); // path -> whole response length
    const requests = new Map<string, Buffer>();
    const conns = await Promise.all(
      Array.from({ length: connections }, () => RawConnection.open(hostname, Number(port), lengths)),
    );
    return {
      request(path, w, headers) {
        let buf = requests.get(path);
        if (buf === undefined || headers) {
          let head = `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`;
          for (const [k, v] of Object.entries(headers ?? {})) head += `${k}: ${v}\r\n`;
          buf = Buffer.from(`${head}\r\n`, 'latin1');
          if (!headers) requests.set(path, buf);
        }
        return conns[w]!.send(path, buf);
      },
      async close() {
        for (const c of conns) c.socket.destroy();
      },
    };
  },
};

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** What every floor socket reads into; a read is consumed before the next one can happen. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

class RawConnection {
  private path = '';
  private expected = -1; // whole response length, or -1 while the head is still unparsed
  private got = 0;
  private head: Buffer | null = null;
  private resolve: () => void = noop;
  private reject: (e: Error) => void = noop;

  private constructor(
    readonly socket: net.Socket,
    private lengths: Map<string, number>,
  ) {
    socket.on('error', (e) => this.reject(e));
    socket.on('close', () => this.reject(new Error('raw socket closed')));
  }

  static open(host: string, port: number, lengths: Map<string, number>): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      let conn: RawConnection | undefined;
      const onread = {
        buffer: readBuffer,
        callback: (nread: number) => {
          conn?.onData(readBuffer.subarray(0, nread));
          return true;
        },
      };
      const socket = net.connect({ host, port, noDelay: true, onread }, () => {
        conn = new RawConnection(socket, lengths);
        resolve(conn);
      });
      socket.once('error', reject);
    });
  }

  send(path: string, req: Buffer): Promise<void> {
    this.path = path;
    this.expected = this.lengths.get(path) ?? -1;
    this.got = 0;
    this.socket.write(req);
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  private onData(chunk: Buffer): void {
    this.got += chunk.length;
    if (this.expected === -1) {
      // The read buffer is reused: the head is kept as a copy.
      this.head = this.head ? Buffer.concat([this.head, chunk]) : Buffer.from(chunk);
      const end = this.head.indexOf(CRLFCRLF);
      if (end === -1) return;
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(this.head.toString('latin1', 0, end + 2));
      this.expected = end + 4 + Number(m?.[1] ?? 0);
      this.lengths.set(this.path, this.expected);
      this.head = null;
    }
    if (this.got >= this.expected) {
      const resolve = this.resolve;
      this.resolve = noop;
      this.reject = noop;
      resolve();
    }
  }
}
