/**
 * Where a cleartext HTTP/1.1 socket reads into, and who gets what it read.
 *
 * Why: a socket read the ordinary way allocates a fresh 64 KiB buffer for every read and hands it
 * out as a 'data' chunk. Those buffers are external memory that only a GC frees; at hundreds of MB/s
 * they are the bulk of the client's garbage, and most of them are thrown away at once: a small
 * response is parsed and its body copied out, a known-length body is gathered into its own buffer.
 * With net.connect's `onread`, libuv reads into a buffer we choose, and the callback runs
 * synchronously before the next read of any socket. So:
 * - by default every cleartext HTTP/1.1 socket in the process reads into one shared scratch buffer,
 *   and whoever consumes a read copies what it keeps (the parser an unfinished line; a gathered body
 *   its bytes, which it did anyway);
 * - while a body keeps the chunks themselves (read as a stream, or held unread), the socket reads
 *   into a buffer of its own that is handed over whole, as node would have done: copying every chunk
 *   of a large download would cost more than the allocation it saves. A short read into such a buffer
 *   is copied out at its size instead, and the buffer reused: a trickle of small reads must not pin
 *   64 KiB apiece.
 * After each read, the route asks its sink which of the two the next read should go into.
 *
 * TLS sockets and h2c sessions read the ordinary way (node's TLS and HTTP/2 layers own their reads).
 */
import type { NetConnectOpts, Socket } from 'node:net';

/** The size of every read buffer: node's own. */
const READ_SIZE = 64 * 1024;
/**
 * A read into an owned buffer shorter than this is copied out, and the buffer kept for the next;
 * one this long is handed over whole.
 */
export const HAND_OVER_MIN = READ_SIZE / 2;

let scratch: Buffer | undefined;

/** The buffer every routed socket reads into by default (made on first use). */
function scratchBuffer(): Buffer {
  scratch ??= Buffer.allocUnsafe(READ_SIZE);
  return scratch;
}

/** The connection on the receiving end of a route. */
export interface ReadSink {
  /**
   * `volatile`: the bytes live in a buffer the next read overwrites, so whatever is kept beyond
   * this call must be copied. Otherwise the bytes are the caller's to keep.
   */
  onSocketRead(bytes: Buffer, volatile: boolean): void;
  /** Whether the bytes of the next read will be kept as they are (a body keeping its chunks). */
  keepsNextRead(): boolean;
}

/**
 * One per routed socket: created before the socket (its `onread` option must exist at
 * net.connect()) and attached to its connection once that exists.
 */
export class ReadRoute {
  private sink: ReadSink | null = null;
  /** The routed socket, set right after net.connect(). */
  socket: Socket | null = null;
  /** This socket's own buffer for reads whose bytes are kept; null until needed. */
  private owned: Buffer | null = null;

  /** The `onread` option for net.connect(). */
  readonly onread: NonNullable<NetConnectOpts['onread']>;

  constructor() {
    this.onread = {
      buffer: () => this.nextBuffer(),
      callback: (nread: number, buf: Uint8Array) => this.deliver(nread, buf as Buffer),
    };
  }

  attach(sink: ReadSink): void {
    this.sink = sink;
  }

  private nextBuffer(): Buffer {
    if (this.sink === null || !this.sink.keepsNextRead()) {
      // Back to the shared buffer: a buffer of its own kept for reuse after a short read would
      // otherwise stay with the connection, 64 KiB for each one idle in the pool.
      this.owned = null;
      return scratchBuffer();
    }
    this.owned ??= Buffer.allocUnsafe(READ_SIZE);
    return this.owned;
  }

  /** Returns true: keep reading (a connection that wants to pause calls socket.pause() itself). */
  private deliver(nread: number, buf: Buffer): boolean {
    const sink = this.sink;
    if (sink === null) {
      // Bytes before any connection owns the socket: nobody asked for them, the stream is unusable.
      this.socket?.destroy();
      return true;
    }
    const bytes = nread === buf.length ? buf : buf.subarray(0, nread);
    if (buf === this.owned && nread >= HAND_OVER_MIN) {
      this.owned = null; // handed over: the next read gets a new one
      sink.onSocketRead(bytes, false);
    } else {
      sink.onSocketRead(bytes, true);
    }
    return true;
  }
}
