import type { Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors.js';

/** What a caller may pass as a request body. A function is a *replayable* stream: it is called once per attempt. */
export type RequestBody =
  | string
  | Uint8Array
  | Readable
  | AsyncIterable<Uint8Array>
  | (() => Readable | AsyncIterable<Uint8Array>)
  | null
  | undefined;

export const BODY_KIND_NONE = 0;
export const BODY_KIND_BYTES = 1;
export const BODY_KIND_STREAM = 2;

/**
 * A request body sorted once, before the first attempt, into what the writers need: none; bytes with a
 * known length (string or Uint8Array, sent with Content-Length, replayable); or a stream (sent chunked,
 * replayable only when it came from a factory function).
 */
export class PreparedBody {
  private constructor(
    readonly kind: number,
    readonly bytes: string | Uint8Array | undefined,
    /** Byte length for BODY_KIND_BYTES; -1 otherwise. */
    readonly length: number,
    private readonly stream: AsyncIterable<Uint8Array> | undefined,
    private readonly factory: (() => Readable | AsyncIterable<Uint8Array>) | undefined,
  ) {}

  static readonly NONE = new PreparedBody(BODY_KIND_NONE, undefined, -1, undefined, undefined);

  static from(body: RequestBody): PreparedBody {
    if (body === undefined || body === null) return PreparedBody.NONE;
    if (typeof body === 'string') {
      return new PreparedBody(BODY_KIND_BYTES, body, Buffer.byteLength(body), undefined, undefined);
    }
    if (body instanceof Uint8Array) {
      return new PreparedBody(BODY_KIND_BYTES, body, body.byteLength, undefined, undefined);
    }
    if (typeof body === 'function') {
      return new PreparedBody(BODY_KIND_STREAM, undefined, -1, undefined, body);
    }
    if (typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
      return new PreparedBody(BODY_KIND_STREAM, undefined, -1, body as AsyncIterable<Uint8Array>, undefined);
    }
    throw new InvalidArgumentError(
      'body must be a string, Uint8Array, Readable, AsyncIterable<Uint8Array> or a function returning one',
    );
  }

  /** True when the body can be sent again on a retry: none, bytes, or a stream factory. */
  get replayable(): boolean {
    return this.kind !== BODY_KIND_STREAM || this.factory !== undefined;
  }

  /** The stream to send for one attempt. A one-shot stream can be opened only once. */
  private opened = false;
  /** What the current attempt reads, for cancelStream(). */
  private source: AsyncIterable<Uint8Array> | null = null;
  private iterator: AsyncIterator<Uint8Array> | null = null;

  openStream(): AsyncIterable<Uint8Array> {
    let source: AsyncIterable<Uint8Array>;
    if (this.factory !== undefined) source = this.factory();
    else {
      if (this.opened || this.stream === undefined) {
        throw new InvalidArgumentError('the request body stream was already consumed and cannot be replayed');
      }
      this.opened = true;
      source = this.stream;
    }
    const iterator = source[Symbol.asyncIterator]();
    this.source = source;
    this.iterator = iterator;
    return { [Symbol.asyncIterator]: () => iterator };
  }

  /**
   * The attempt sending the stream failed or ended early (the connection died, the server answered
   * or reset the stream first): stop the source now, not when it next yields, which a quiet source
   * (a pipe, a generator awaiting something) may never do. A Readable is destroyed, without an error
   * (the caller learns the outcome from the request; an 'error' it does not listen for would be an
   * uncaught exception); any other async iterable is asked to return().
   */
  cancelStream(): void {
    const source = this.source;
    const iterator = this.iterator;
    this.source = null;
    this.iterator = null;
    if (source === null || iterator === null) return;
    const readable = source as Partial<Readable>;
    if (typeof readable.destroy === 'function') {
      if (readable.destroyed !== true) readable.destroy();
      return;
    }
    // An async generator busy in an await runs this return() once that await settles.
    iterator.return?.().catch(() => {});
  }
}
