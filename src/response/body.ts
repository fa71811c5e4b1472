import { Readable } from 'node:stream';
import { AbortedError, WarmpoolError } from '../errors.js';
import type { IncomingHeaders } from '../headers.js';

/**
 * The side of a connection that feeds a body: the body asks it to resume reading (backpressure) and
 * tells it when the consumer gave up before the end (so the connection is not reused).
 */
export interface BodySource {
  resumeBody(): void;
  abandonBody(body: ResponseBody, err: Error): void;
}

const DUMP_LIMIT_DEFAULT = 1024 * 1024;

/** Second half of failFromSource() for a body that had no 'error' listener when it failed. */
function failLater(body: ResponseBody, err: Error): void {
  if (!body.destroyed) body.destroy(body.listenerCount('error') > 0 ? err : undefined);
}

/**
 * A response body: a Node Readable, plus text()/json()/bytes()/arrayBuffer()/dump().
 *
 * Why the collector: most callers read a body whole with text()/json()/bytes(). When they do so
 * before reading it as a stream, chunks go straight from the connection into an array, skipping the
 * Readable buffer machinery, and are joined once at the end.
 *
 * The lease: the connection is released when its last byte has been received, whether or not the
 * consumer has read it yet. Until then, a consumer that stops reading holds the connection
 * (backpressure pauses the socket): read it, dump() it, or destroy() it.
 */
export class ResponseBody extends Readable {
  /** Trailer fields of a chunked body, once it has ended. */
  trailers: IncomingHeaders | undefined = undefined;

  private source: BodySource | null;
  private received = false; // the connection delivered the last byte
  private failure: Error | null = null;
  private collecting: Buffer[] | null = null;
  private collectedBytes = 0;
  private discarding = false;
  private discardLimit = 0;
  private consumed = false;
  private settle: ((value: Buffer | null) => void) | null = null;
  private fail: ((err: Error) => void) | null = null;

  constructor(source: BodySource, highWaterMark: number) {
    super({ highWaterMark });
    this.source = source;
  }

  // ---- connection side -------------------------------------------------------------------------

  /** A chunk arrived. Returns false when the reader wants no more for now (pause the socket). */
  pushChunk(chunk: Buffer): boolean {
    if (this.collecting !== null) {
      if (this.discarding) {
        this.collectedBytes += chunk.length;
        if (this.collectedBytes > this.discardLimit) {
          // Closing instead of draining is dump()'s documented outcome past its limit, not a failure:
          // dump() resolves, as it does when the bytes already buffered are over the limit.
          const settle = this.settle;
          this.settle = null;
          this.fail = null;
          this.abandon(new AbortedError('dump() limit exceeded; connection closed instead of drained'));
          if (settle !== null) settle(null);
        }
        return true;
      }
      this.collecting.push(chunk);
      this.collectedBytes += chunk.length;
      return true;
    }
    return this.push(chunk);
  }

  /** The body ended as its framing said. The lease has been released by the connection. */
  endFromSource(trailers: IncomingHeaders | undefined): void {
    this.received = true;
    this.trailers = trailers;
    this.source = null;
    if (this.collecting !== null) {
      this.finishCollect();
    } else {
      this.push(null);
    }
  }

  /** The connection failed mid-body (reset, timeout, parse error, early close). */
  failFromSource(err: Error): void {
    this.source = null;
    this.failure = err;
    if (this.fail !== null) {
      const fail = this.fail;
      this.settle = null;
      this.fail = null;
      fail(err);
    }
    // 'error' goes only to someone listening (a pipe, an async iterator, an on('error')). A body read
    // with text()/bytes()/dump(), or not read at all, has no listener: emitting would be an uncaught
    // exception that kills the process. Such a caller gets `failure` from the promise instead.
    if (this.listenerCount('error') > 0) {
      this.destroy(err);
    } else {
      // The head and the failure can come in one socket read (a bad chunk size right after the head):
      // then the caller's `await request()` resumes only after this tick, and its listeners are not
      // attached yet. Destroying now would close the stream before they are, and a reader that then
      // attaches 'data'/'end'/'error' would wait forever. Decide a turn later, once it has had its go.
      setImmediate(failLater, this, err);
    }
  }

  /** True once the connection has delivered the whole body. */
  get complete(): boolean {
    return this.received;
  }

  // ---- Readable ----------------------------------------------------------------------------------

  override _read(): void {
    this.source?.resumeBody();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.received && this.source !== null) {
      this.abandon(err ?? new AbortedError('response body destroyed before its end'));
    }
    callback(err);
  }

  private abandon(err: Error): void {
    const source = this.source;
    this.source = null;
    if (source !== null) source.abandonBody(this, err);
    if (this.fail !== null) {
      const fail = this.fail;
      this.settle = null;
      this.fail = null;
      fail(err);
    }
  }

  // ---- whole-body readers -----------------------------------------------------------------------

  /** The whole body as bytes. */
  bytes(): Promise<Buffer> {
    return this.collect(false, 0) as Promise<Buffer>;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const buf = await this.bytes();
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  }

  /** The whole body decoded as UTF-8. */
  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8');
  }

  /** The whole body parsed as JSON. */
  async json<T = unknown>(): Promise<T> {
    return JSON.parse((await this.bytes()).toString('utf8')) as T;
  }

  /**
   * Reads and discards the rest of the body so the connection can be reused. Past `limit` bytes
   * (default 1 MiB) it stops and closes the connection instead: draining a huge body costs more than
   * a new connection.
   */
  async dump(options: { limit?: number } = {}): Promise<void> {
    await this.collect(true, options.limit ?? DUMP_LIMIT_DEFAULT);
  }

  private collect(discard: boolean, limit: number): Promise<Buffer | null> {
    if (this.consumed || this.readableDidRead || this.readableFlowing !== null) {
      if (discard && this.readableEnded) return Promise.resolve(null);
      if (!discard && (this.consumed || this.readableEnded)) {
        return Promise.reject(new WarmpoolError('WARMPOOL_BODY_USED', 'the response body was already read'));
      }
      return this.collectByIteration(discard);
    }
    this.consumed = true;
    if (this.failure !== null) return Promise.reject(this.failure);
    // Chunks that arrived before the caller asked sit in the Readable buffer: take them first.
    const chunks: Buffer[] = [];
    let bytes = 0;
    for (let c = this.read() as Buffer | null; c !== null; c = this.read() as Buffer | null) {
      chunks.push(c);
      bytes += c.length;
    }
    this.collecting = chunks;
    this.collectedBytes = bytes;
    this.discarding = discard;
    this.discardLimit = limit;
    if (this.received) return Promise.resolve(this.takeCollected());
    if (discard && bytes > limit) {
      this.abandon(new AbortedError('dump() limit exceeded; connection closed instead of drained'));
      return Promise.resolve(null);
    }
    return new Promise<Buffer | null>((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
      this.source?.resumeBody();
    });
  }

  private finishCollect(): void {
    const settle = this.settle;
    this.settle = null;
    this.fail = null;
    const value = this.takeCollected();
    if (settle !== null) settle(value);
  }

  private takeCollected(): Buffer | null {
    const chunks = this.collecting!;
    const discard = this.discarding;
    this.collecting = [];
    // The stream was bypassed; end it so 'end'/'close' listeners still fire.
    this.push(null);
    this.resume();
    if (discard) return null;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.collectedBytes);
  }

  private async collectByIteration(discard: boolean): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    for await (const c of this) if (!discard) chunks.push(c as Buffer);
    return discard ? null : Buffer.concat(chunks);
  }
}
