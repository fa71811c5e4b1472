/**
 * raw-server: a `net` server that writes exact bytes. Each accepted connection runs a script of
 * steps: wait for the client's next request, write bytes (optionally split into pieces with delays
 * between them), pause, then end (FIN) / reset (RST) / destroy / keep the socket open.
 *
 * It records, per connection, every byte the client sent, so a conformance test can both feed the
 * client a case's exact response bytes and assert on the exact request the client wrote.
 *
 * `await-request` waits for a request head (CRLF CRLF) plus its body (Content-Length bytes, or up to
 * the last chunk when chunked); bytes past that count toward the next request.
 */
import net from 'node:net';

export type RawStep =
  | { kind: 'await-request' }
  /**
   * Write `data`; `splitAt` cuts it at these byte offsets, with `delayMs` between the pieces.
   * `pace: 'immediate'` waits one setImmediate between pieces instead: a reader in this process gets
   * a poll phase between two writes, so it sees each piece as its own chunk, at no timer cost.
   */
  | { kind: 'write'; data: string | Buffer; splitAt?: number[]; delayMs?: number; pace?: 'immediate' }
  | { kind: 'delay'; ms: number }
  /** FIN after the writes are flushed. */
  | { kind: 'end' }
  /** RST. */
  | { kind: 'reset' }
  /** Close without waiting for anything. */
  | { kind: 'destroy' }
  /** Keep the socket open until the client closes or close() is called. */
  | { kind: 'keep-open' };

/** connIndex is 0 for the first accepted connection. */
export type RawScript = RawStep[] | ((connIndex: number) => RawStep[]);

export interface RawConnection {
  index: number;
  /** Every byte the client sent so far. */
  received(): Buffer;
  /** The same, as latin1 text. */
  text(): string;
  /** What the client sent, one Buffer per 'data' event (how the bytes were cut on arrival). */
  chunks(): Buffer[];
  /** How the socket ended: undefined while open. */
  closed: 'by-client' | 'by-server' | undefined;
  /** Resolves when the script has run to its end (or the socket died). */
  done: Promise<void>;
}

export interface RawServer {
  url: string;
  port: number;
  connections: RawConnection[];
  close(): Promise<void>;
}

/** The usual script: wait for one request, write `bytes` in pieces, then end (or the given finish). */
export function respondWith(
  bytes: string | Buffer,
  opts: {
    splitAt?: number[];
    delayMs?: number;
    pace?: 'immediate';
    then?: 'end' | 'reset' | 'keep-open' | 'destroy';
  } = {},
): RawStep[] {
  return [
    { kind: 'await-request' },
    { kind: 'write', data: bytes, splitAt: opts.splitAt, delayMs: opts.delayMs, pace: opts.pace },
    { kind: opts.then ?? 'end' },
  ];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** End offset of the first complete request in buf, or -1 if it is not complete yet. */
function requestEnd(buf: Buffer): number {
  const h = buf.indexOf('\r\n\r\n');
  if (h < 0) return -1;
  const head = buf.toString('latin1', 0, h);
  const bodyStart = h + 4;
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
    const last = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2);
    return last < 0 ? -1 : last + 7;
  }
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const end = bodyStart + (m ? Number(m[1]) : 0);
  return buf.length >= end ? end : -1;
}

export async function startRawServer(script: RawScript): Promise<RawServer> {
  const connections: RawConnection[] = [];
  const sockets = new Set<net.Socket>();

  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    const chunks: Buffer[] = [];
    let consumed = 0; // bytes already matched by await-request
    let wake: (() => void) | undefined;
    let dead = false;
    const received = () => Buffer.concat(chunks);
    const conn: RawConnection = {
      index: connections.length,
      received,
      text: () => received().toString('latin1'),
      chunks: () => chunks.slice(),
      closed: undefined,
      done: Promise.resolve(),
    };
    connections.push(conn);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      wake?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      dead = true;
      sockets.delete(socket);
      conn.closed ??= 'by-client';
      wake?.();
    });

    const steps = typeof script === 'function' ? script(conn.index) : script;
    const run = async () => {
      for (const step of steps) {
        if (dead) return;
        switch (step.kind) {
          case 'await-request':
            for (;;) {
              const end = requestEnd(received().subarray(consumed));
              if (end >= 0) {
                consumed += end;
                break;
              }
              if (dead) return;
              await new Promise<void>((r) => {
                wake = r;
              });
              wake = undefined;
            }
            break;
          case 'write': {
            const data = Buffer.from(step.data);
            const cuts = [0, ...(step.splitAt ?? []), data.length];
            for (let i = 0; i + 1 < cuts.length; i++) {
              if (i > 0 && step.delayMs) await sleep(step.delayMs);
              // (Before the first piece too: a step run from a 'data' callback is in the poll phase,
              // so without it the first two pieces would reach the reader in one read.)
              else if (step.pace === 'immediate') await new Promise<void>((r) => setImmediate(r));
              if (dead) return;
              socket.write(data.subarray(cuts[i], cuts[i + 1]));
            }
            break;
          }
          case 'delay':
            await sleep(step.ms);
            break;
          case 'end':
            conn.closed = 'by-server';
            socket.end();
            return;
          case 'reset':
            conn.closed = 'by-server';
            socket.resetAndDestroy();
            return;
          case 'destroy':
            conn.closed = 'by-server';
            socket.destroy();
            return;
          case 'keep-open':
            return;
        }
      }
    };
    conn.done = run();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
