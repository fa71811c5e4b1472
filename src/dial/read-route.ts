/**
 * Where a cleartext HTTP/1.1 socket reads into, and who gets what it read.
 *
 * Why: a socket read the ordinary way allocates a fresh 64 KiB buffer for every read and hands it
 * out as a 'data' chunk. Those buffers are external memory that only a GC frees; at hundreds of MB/s
 * they are the bulk of the client's garbage. With net.connect's `onread`, libuv reads into a buffer we
 * choose instead, and the callback runs synchronously before the next read of any socket. So every
 * cleartext HTTP/1.1 socket in the process reads into one shared scratch buffer, and whoever consumes
 * a read must copy what it keeps (the parser copies unfinished lines; a body copies the chunks it
 * holds, straight into its one gathered buffer when the length is known).
 *
 * TLS sockets and h2c sessions read the ordinary way (node's TLS and HTTP/2 layers own their reads).
 */
import type { NetConnectOpts, Socket } from 'node:net';

/** Large enough for a whole small response, the same size as node's own read buffers. */
const SCRATCH_SIZE = 64 * 1024;

let scratch: Buffer | undefined;

/** The buffer every routed socket reads into (made on first use: TLS-only processes never need it). */
export function scratchBuffer(): Buffer {
  scratch ??= Buffer.allocUnsafe(SCRATCH_SIZE);
  return scratch;
}

/** The connection on the receiving end of a route. */
export interface ReadSink {
  /** `bytes` live in the shared scratch buffer: valid only during this call. */
  onSocketRead(bytes: Buffer): void;
}

/**
 * One per routed socket: created before the socket (its `onread` option must exist at
 * net.connect()) and attached to its connection once that exists.
 */
export class ReadRoute {
  private sink: ReadSink | null = null;
  /** The routed socket, set right after net.connect(). */
  socket: Socket | null = null;

  /** The `onread` option for net.connect(). */
  readonly onread: NonNullable<NetConnectOpts['onread']>;

  constructor() {
    this.onread = {
      buffer: scratchBuffer(),
      callback: (nread: number) => this.deliver(nread),
    };
  }

  attach(sink: ReadSink): void {
    this.sink = sink;
  }

  /** Returns true: keep reading (a connection that wants to pause calls socket.pause() itself). */
  private deliver(nread: number): boolean {
    const sink = this.sink;
    // Bytes before any connection owns the socket: nobody asked for them, the stream is unusable.
    if (sink === null) this.socket?.destroy();
    else sink.onSocketRead(scratchBuffer().subarray(0, nread));
    return true;
  }
}
