import { Readable, type ReadableOptions } from 'node:stream';
import { AbortedError, WarmpoolError } from '../errors.js';
import type { IncomingHeaders } from '../headers.js';
import { allocKept, concatKept, copyInto, copyKept } from '../kept-buffer.js';

/**
 * The side of a connection that feeds a body: the body asks it to resume reading (backpressure) and
 * tells it when the consumer gave up before the end (so the connection is not reused).
 */
export interface BodySource {
  resumeBody(): void;
  abandonBody(body: ResponseBody, err: Error): void;
}

/**
 * A reader that takes the body's chunks straight from the connection (sinkTo()), as undici's
 * dispatcher handlers do: no Readable in between.
 */
export interface BodySink {
  /** A chunk the sink may keep. False: send no more until resumeSink(). */
  onChunk(chunk: Buffer): boolean;
  /** The body ended as its framing said (only while not paused: a paused sink gets it on resume). */
  onEnd(trailers: IncomingHeaders | undefined): void;
  /** The connection failed mid-body. Not called after the body was destroyed. */
  onError(err: Error): void;
}

/** A sink and where its flow stands: made by sinkTo(), so every other body carries one null field. */
interface SinkFlow {
  readonly to: BodySink;
  /** It asked for no more (onChunk returned false, or pauseSink()): chunks wait in `held`. */
  paused: boolean;
  /** flushSink() is running: a resumeSink() from inside one of its calls only clears the pause. */
  flushing: boolean;
}

const DUMP_LIMIT_DEFAULT = 1024 * 1024;
/** Bodies of a known length up to this size are gathered straight into one buffer of that size. */
const GATHER_LIMIT = 1024 * 1024;

/**
 * Chunks held before the body was read as a stream, together under this many bytes, go in as one.
 * Pushed one by one, they would all sit in the Readable's buffer, and its first read() (for-await,
 * read()) would join them with Buffer.concat(), whose result under half of `Buffer.poolSize` is a
 * slice of node's pool: 64 KiB since Node 24.22, pinned by a chunk of a few bytes. Joining them here
 * (kept-buffer.ts) costs the copy node would have made; past the limit node's own join gets a buffer
 * of its own.
 */
const JOIN_HELD_LIMIT = 32 * 1024;

/** Second half of failFromSource() for a body that had no 'error' listener when it failed. */
function failLater(body: ResponseBody, err: Error): void {
  if (!body.destroyed) body.destroy(body.listenerCount('error') > 0 ? err : undefined);
}

/**
 * A response body: a Node Readable, plus text()/json()/bytes()/arrayBuffer()/dump().
 *
 * Why chunks are held back: most callers read a body whole with text()/json()/bytes(), often after
 * the whole (small) body has already arrived with its head. Pushing each chunk through the Readable
 * machinery and pulling it out again costs several microseconds per response, more than parsing it.
 * So chunks wait in `held` until somebody reads the body *as a stream* (the first `_read()`: a 'data'
 * listener, pipe(), read(), for-await), and only then go through push(). A whole-body reader takes
 * `held` directly and never touches the stream.
 *
 * Backpressure is the same either way: past `highWaterMark` bytes held or buffered, the socket is
 * paused until the reader asks for more. A pending text()/bytes() wants everything and never pauses.
 *
 * The lease: the connection is released when its last byte has been received, whether or not the
 * consumer has read it yet. Until then, a consumer that stops reading holds the connection
 * (backpressure pauses the socket): read it, dump() it, or destroy() it.
 *
 * Why the Readable itself is made on first use: a body read whole never touches it, and making it
 * (its ReadableState, the EventEmitter's fields, the options read) was the largest single cost of a
 * response at C=1 after the parse: 1.6-2.4 µs cold, on top of what our own fields cost. So
 * the class is not a subclass: its prototype is linked in front of Readable.prototype (instanceof,
 * every method and accessor), and `_readableState`, which every one of them reads first, is an
 * accessor on that prototype that runs the Readable constructor on this object the first time and is
 * then an own property, as on any Readable. EventEmitter's methods make their own fields on demand.
 * This leans on Readable being a constructor function that can be called on an existing object, as
 * it is in every Node this supports (20 to 24); were it a class, the call would throw on first use
 * and every stream test would fail.
 */
export interface ResponseBody extends Readable {}
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the interface.
export class ResponseBody {
  /** Trailer fields of a chunked body, once it has ended. */
  trailers: IncomingHeaders | undefined = undefined;

  private source: BodySource | null;
  private readonly limit: number;
  private received = false; // the connection delivered the last byte
  private failure: Error | null = null;
  /** Chunks not yet handed to the Readable (or to a whole-body reader). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /**
   * For a body of known length (Content-Length, up to GATHER_LIMIT): the one buffer it is gathered
   * into, instead of `held`. Chunks are views into a read buffer: node's 64 KiB ones (TLS, HTTP/2),
   * which holding a chunk would pin (a 12-byte body held by its caller would keep 64 KiB alive), or
   * the shared scratch buffer of cleartext HTTP/1.1 (ReadRoute), which the next read overwrites.
   * Copying each chunk once into its place costs what the final concat would have. The buffer comes
   * from allocKept(), which keeps a small one off node's 64 KiB pool (Node 24.22+).
   */
  private gathered: Buffer | null = null;
  private readonly expectedLength: number;
  /** Somebody reads the body as a stream: chunks go through push() from now on. */
  private streaming = false;
  /** A whole-body reader (text/bytes/dump) or a sink has taken, or is taking, the body. */
  private consumed = false;
  /** The Readable's state has been made (its first use; see the class comment). */
  private readableMade = false;
  /** The reader chunks go to directly (sinkTo()), instead of the Readable; null once it has ended. */
  private sink: SinkFlow | null = null;
  private discarding = false;
  private discardLimit = 0;
  private settle: ((value: Buffer | null) => void) | null = null;
  private fail: ((err: Error) => void) | null = null;

  /** `expectedLength`: the body's length when its framing gives one, else -1. */
  constructor(source: BodySource, highWaterMark: number, expectedLength = -1) {
    this.source = source;
    this.limit = highWaterMark;
    this.expectedLength = expectedLength > 0 && expectedLength <= GATHER_LIMIT ? expectedLength : -1;
  }

  // ---- connection side -------------------------------------------------------------------------

  /**
   * @internal
   * A chunk arrived. Returns false when the reader wants no more for now (pause the socket).
   * `volatile`: the chunk lives in a buffer the connection reuses for its next read, so whatever is
   * kept beyond this call is copied (a gathered body copies every chunk anyway).
   */
  pushChunk(chunk: Buffer, volatile = false): boolean {
    if (this.streaming) return this.push(volatile ? copyKept(chunk) : chunk);
    if (this.sink !== null) return this.sinkChunk(this.sink, volatile ? copyKept(chunk) : chunk);
    if (this.discarding) {
      this.heldBytes += chunk.length;
      if (this.heldBytes > this.discardLimit) {
        // Closing instead of draining is dump()'s documented outcome past its limit, not a failure:
        // dump() resolves, as it does when the bytes already received are over the limit.
        const settle = this.settle;
        this.settle = null;
        this.fail = null;
        this.abandon(new AbortedError('dump() limit exceeded; connection closed instead of drained'));
        if (settle !== null) settle(null);
      }
      return true;
    }
    const expected = this.expectedLength;
    if (expected > 0 && this.heldBytes + chunk.length <= expected && this.held.length === 0) {
      if (this.gathered === null) this.gathered = allocKept(expected);
      chunk.copy(this.gathered, this.heldBytes);
    } else {
      if (this.gathered !== null) this.held.push(this.takeGathered());
      this.held.push(volatile ? copyKept(chunk) : chunk);
    }
    this.heldBytes += chunk.length;
    return this.settle !== null || this.heldBytes < this.limit;
  }

  /**
   * @internal
   * pushChunk() for the bytes data[start, end): a body gathered into its own buffer copies them
   * straight from `data`; any other takes them as a chunk of its own (a view, copied if volatile).
   */
  pushRange(data: Buffer, start: number, end: number, volatile: boolean): boolean {
    const expected = this.expectedLength;
    const n = end - start;
    if (
      expected > 0 &&
      !this.streaming &&
      !this.discarding &&
      this.sink === null &&
      this.held.length === 0 &&
      this.heldBytes + n <= expected
    ) {
      if (this.gathered === null) this.gathered = allocKept(expected);
      copyInto(data, start, end, this.gathered, this.heldBytes);
      this.heldBytes += n;
      return this.settle !== null || this.heldBytes < this.limit;
    }
    return this.pushChunk(start === 0 && end === data.length ? data : data.subarray(start, end), volatile);
  }

  /** @internal The body ended as its framing said. The lease has been released by the connection. */
  endFromSource(trailers: IncomingHeaders | undefined): void {
    this.received = true;
    this.trailers = trailers;
    this.source = null;
    if (this.streaming) {
      this.push(null);
    } else if (this.sink !== null) {
      if (!this.sink.paused && this.held.length === 0) this.endSink();
    } else if (this.settle !== null) {
      const settle = this.settle;
      this.settle = null;
      this.fail = null;
      settle(this.takeHeld());
    }
  }

  /** @internal The connection failed mid-body (reset, timeout, parse error, early close). */
  failFromSource(err: Error): void {
    this.source = null;
    this.failure = err;
    const sink = this.sink;
    if (sink !== null) {
      this.sink = null;
      this.held = [];
      this.heldBytes = 0;
      if (!this.gone) sink.to.onError(err);
      return;
    }
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

  /**
   * @internal
   * Whether pushChunk() would keep the next chunk as it is (streaming, or held), rather than copy
   * it into the gathered buffer or discard it. The connection reads into a buffer of the chunk's
   * own when it will be kept (ReadRoute).
   */
  get keepsChunks(): boolean {
    if (this.streaming || this.sink !== null) return true;
    if (this.discarding) return false;
    return !(this.expectedLength > 0 && this.held.length === 0);
  }

  /**
   * @internal
   * The whole body, when it has all arrived and nobody has started reading it; it is then read (as by
   * bytes()). Null otherwise. fetch() hands a body that came with its head to the web stream in one go.
   */
  takeWhole(): Buffer | null {
    if (!this.received || this.streaming || this.consumed || this.failure !== null) return null;
    this.consumed = true;
    return this.takeHeld() ?? Buffer.alloc(0);
  }

  /**
   * @internal
   * Hands the body to `sink` from now on: what has arrived goes to it now (unless `paused`), each
   * later chunk as the connection reads it, then its end. Backpressure is by onChunk's return value
   * and pauseSink()/resumeSink(); destroy() stops it (and closes the connection if mid-body). For a
   * reader that turns chunks into its own stream (undici's handlers): the Readable's buffering, its
   * 'data' events and the ticks they wait for would be paid twice.
   */
  sinkTo(sink: BodySink, paused = false): void {
    if (this.streaming || this.consumed) {
      throw new WarmpoolError('WARMPOOL_BODY_USED', 'the response body was already read');
    }
    this.consumed = true;
    this.sink = { to: sink, paused, flushing: false };
    if (this.failure !== null) {
      this.failFromSource(this.failure);
      return;
    }
    const held = this.takeHeldChunks();
    this.held = held;
    for (let i = 0; i < held.length; i++) this.heldBytes += held[i]!.length;
    this.flushSink();
  }

  /** @internal The sink wants no more for now: chunks wait (and the socket pauses) until resumeSink(). */
  pauseSink(): void {
    if (this.sink !== null) this.sink.paused = true;
  }

  /** @internal The sink wants more: what waited goes to it, then the connection reads again. */
  resumeSink(): void {
    const flow = this.sink;
    if (flow === null || !flow.paused) return;
    flow.paused = false;
    if (!flow.flushing) this.flushSink();
  }

  private sinkChunk(flow: SinkFlow, chunk: Buffer): boolean {
    if (flow.paused || this.held.length > 0 || this.gone) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      return false;
    }
    if (!flow.to.onChunk(chunk)) flow.paused = true;
    return !flow.paused;
  }

  /** Hands the sink what waited, in order, until it pauses; then the end, or more from the socket. */
  private flushSink(): void {
    const flow = this.sink!;
    flow.flushing = true;
    try {
      const held = this.held;
      let i = 0;
      // Until it pauses, or ends the body from inside (destroy(): the sink is gone). A chunk read
      // meanwhile is appended to this same array (sinkChunk), so the loop hands it over too; a pause
      // and resume inside a call only clear `paused` (resumeSink), and the loop goes on.
      while (i < held.length && !flow.paused && this.sink === flow && !this.gone) {
        const chunk = held[i++]!;
        this.heldBytes -= chunk.length;
        if (!flow.to.onChunk(chunk)) flow.paused = true;
      }
      held.splice(0, i);
    } finally {
      flow.flushing = false;
    }
    if (flow.paused || this.sink !== flow || this.gone) return;
    if (this.received) this.endSink();
    else this.source?.resumeBody();
  }

  private endSink(): void {
    const flow = this.sink!;
    this.sink = null;
    flow.to.onEnd(this.trailers);
  }

  /** True once the connection has delivered the whole body. */
  get complete(): boolean {
    return this.received;
  }

  /**
   * `destroyed`, without making the Readable to ask it: only destroy() (which makes it) destroys a
   * body. The sink path asks for every chunk, and a sink never needs the Readable.
   */
  private get gone(): boolean {
    return this.readableMade && this.destroyed;
  }

  static {
    // The Readable half (see the class comment): instanceof and every member of Readable.prototype,
    // and its statics (ResponseBody.from is Readable.from, as for a subclass).
    Object.setPrototypeOf(ResponseBody.prototype, Readable.prototype);
    Object.setPrototypeOf(ResponseBody, Readable);
    Object.defineProperty(ResponseBody.prototype, '_readableState', {
      configurable: true,
      get(this: ResponseBody): unknown {
        // Readable's constructor assigns _readableState (the setter below makes it an own property,
        // which shadows this accessor from then on) and keeps any listener already added.
        this.readableMade = true;
        (Readable as unknown as (this: Readable, options: ReadableOptions) => void).call(this, {
          highWaterMark: this.limit,
        });
        return (this as unknown as { _readableState: unknown })._readableState;
      },
      set(this: ResponseBody, state: unknown): void {
        Object.defineProperty(this, '_readableState', {
          value: state,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      },
    });
  }

  // ---- Readable ----------------------------------------------------------------------------------

  _read(): void {
    if (!this.streaming) {
      // The first read as a stream: what was held goes through the Readable now, in order.
      this.streaming = true;
      const heldBytes = this.heldBytes;
      const held = this.takeHeldChunks();
      if (held.length > 1 && heldBytes < JOIN_HELD_LIMIT) this.push(concatKept(held, heldBytes));
      else for (let i = 0; i < held.length; i++) this.push(held[i]);
      if (this.received || this.consumed) {
        this.push(null);
        return;
      }
    }
    this.source?.resumeBody();
  }

  _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.received && this.source !== null) {
      this.abandon(err ?? new AbortedError('response body destroyed before its end'));
    }
    this.held = [];
    this.gathered = null;
    this.sink = null;
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
    if (this.consumed || this.streaming) {
      if (discard && (this.consumed || this.readableEnded)) return Promise.resolve(null);
      if (!discard && (this.consumed || this.readableEnded)) {
        return Promise.reject(new WarmpoolError('WARMPOOL_BODY_USED', 'the response body was already read'));
      }
      return this.collectByIteration(discard);
    }
    this.consumed = true;
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.received) return Promise.resolve(discard ? this.dropHeld() : this.takeHeld());
    if (discard) {
      const bytes = this.heldBytes;
      this.dropHeld();
      this.heldBytes = bytes; // counted against the limit from here on
      this.discarding = true;
      this.discardLimit = limit;
      if (bytes > limit) {
        this.abandon(new AbortedError('dump() limit exceeded; connection closed instead of drained'));
        return Promise.resolve(null);
      }
    }
    return new Promise<Buffer | null>((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
      this.source?.resumeBody();
    });
  }

  /** The held chunks as one Buffer (for a discarding reader, null), leaving none held. */
  private takeHeld(): Buffer | null {
    if (this.discarding) return this.dropHeld();
    if (this.gathered !== null) {
      const whole = this.takeGathered();
      this.heldBytes = 0;
      return whole;
    }
    const held = this.held;
    const bytes = this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
    return held.length === 1 ? held[0]! : concatKept(held, bytes);
  }

  /** The gathered bytes so far (the whole buffer when complete), gathering stopped. */
  private takeGathered(): Buffer {
    const g = this.gathered!;
    this.gathered = null;
    return this.heldBytes === g.length ? g : g.subarray(0, this.heldBytes);
  }

  private takeHeldChunks(): Buffer[] {
    const held = this.gathered !== null ? [this.takeGathered(), ...this.held] : this.held;
    this.held = [];
    this.heldBytes = 0;
    return held;
  }

  private dropHeld(): null {
    this.held = [];
    this.gathered = null;
    this.heldBytes = 0;
    return null;
  }

  private async collectByIteration(discard: boolean): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of this) {
      if (discard) continue;
      chunks.push(c as Buffer);
      total += (c as Buffer).length;
    }
    return discard ? null : concatKept(chunks, total);
  }
}
