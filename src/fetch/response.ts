import * as nodeStream from 'node:stream';
import type { UnderlyingByteSource } from 'node:stream/web';
import * as workerThreads from 'node:worker_threads';
import { ParseError } from '../errors.js';
import type { IncomingHeaders } from '../headers.js';
import type { ResponseBody } from '../response/body.js';
import type { ConnectionInfo, Timings, Response as WarmpoolResponse } from '../response/response.js';

/**
 * fetch()'s Response: an instance of the global Response (`res instanceof Response`; its headers a
 * real Headers, its body a real ReadableStream), made from warmpool's response without running the
 * Response constructor: see FetchResponse.
 */

/** What warmpool knows about a fetch() response beyond the standard's fields: see fetchDetails(). */
export interface FetchDetails {
  /** The connection that served the response, as it was when the request was sent. */
  readonly connection: ConnectionInfo;
  readonly timings: Timings;
  /** The request failed on a stale reused connection and was sent again on a new one. */
  readonly retried: boolean;
  readonly httpVersion: '1.0' | '1.1' | '2';
  /** Redirects followed to reach this response. */
  readonly redirects: number;
  /** Trailer fields (chunked HTTP/1.1 or HTTP/2), once the body has been read to its end. */
  readonly trailers: IncomingHeaders | undefined;
}

/** Read through from warmpool's response, so the trailers are there once the body has ended. */
class Details implements FetchDetails {
  readonly #res: WarmpoolResponse;
  constructor(
    res: WarmpoolResponse,
    readonly redirects: number,
  ) {
    this.#res = res;
  }
  get connection(): ConnectionInfo {
    return this.#res.connection;
  }
  get timings(): Timings {
    return this.#res.timings;
  }
  get retried(): boolean {
    return this.#res.retried;
  }
  get httpVersion(): '1.0' | '1.1' | '2' {
    return this.#res.httpVersion;
  }
  get trailers(): IncomingHeaders | undefined {
    return this.#res.body.trailers;
  }
  /** console.log(fetchDetails(res)) shows the facts, not the response inside. */
  [Symbol.for('nodejs.util.inspect.custom')](): object {
    const { connection, timings, retried, httpVersion, redirects, trailers } = this;
    return { connection, timings, retried, httpVersion, redirects, trailers };
  }
}

const GlobalResponse = globalThis.Response;

/**
 * fetch()'s Response. The standard's objects cost more than a small body's bytes: a web
 * ReadableStream with its controller and a promise per read, a Headers filled and validated field by
 * field. So they are made only when asked for: `body` makes its stream on first access, `headers` its
 * Headers; text(), json(), arrayBuffer() and bytes() read warmpool's body directly (a body that came
 * whole with its head is already there). What a caller can observe is the standard's: bodyUsed, a
 * second read failing, clone() (a tee once the body streams), a reader on `body` locking the others.
 *
 * Why not a subclass: the Response constructor is the largest single cost between warmpool's
 * response and fetch's caller at C=1 (stamped along a request to a 12-byte body on Node 24, 6.8 µs
 * of the 11 µs from Client.request()'s response to the caller's; 0.4 µs when run in a tight loop,
 * but a request at C=1 finds it cold), and it builds state (an inner response, a header list, a
 * Headers) that nothing here reads: every member of Response.prototype is overridden below. So the
 * class is a base class whose prototype is linked in front of Response.prototype, which is all that
 * `instanceof Response` asks. The one thing this changes is what a member of Response.prototype
 * called on it directly (`Response.prototype.text.call(res)`) does: it throws Illegal invocation,
 * where on a subclass it read the constructor's empty body and answered wrongly without a word.
 */
class FetchResponse {
  readonly #status: number;
  readonly #statusText: string;
  readonly #url: string;
  readonly #redirected: boolean;
  readonly #details: FetchDetails;
  readonly #fields: IncomingHeaders;
  #headers: Headers | undefined;
  /** The body's bytes when they came whole; null when they stream (#source) or there is no body. */
  #bytes: Buffer | null;
  /** warmpool's body, until it is read or turned into #stream. */
  #source: ResponseBody | null;
  readonly #signal: AbortSignal | null | undefined;
  /** false for a response with no body by definition (HEAD, 204, 304, ...): `body` is null. */
  readonly #hasBody: boolean;
  /** The web stream, once `body` was asked for (or a clone teed it); undefined until then. */
  #stream: ReadableStream<Uint8Array> | null | undefined;
  /** Read without a stream (text(), json(), ...). */
  #used = false;
  /** #bytes is also another response's (a clone's): a read must copy them. */
  #bytesShared = false;

  constructor(
    res: { status: number; statusText: string; headers: IncomingHeaders },
    body: { bytes: Buffer | null; source: ResponseBody | null; signal: AbortSignal | null | undefined },
    url: string,
    redirected: boolean,
    details: FetchDetails,
  ) {
    this.#status = res.status;
    this.#statusText = res.statusText;
    this.#fields = res.headers;
    this.#bytes = body.bytes;
    this.#source = body.source;
    this.#hasBody = body.bytes !== null || body.source !== null;
    this.#signal = body.signal;
    this.#url = url;
    this.#redirected = redirected;
    this.#details = details;
    // As the Response constructor does: structuredClone() and postMessage() refuse it.
    markAsUncloneable?.(this);
  }

  static statusOf(r: FetchResponse): number {
    return r.#status;
  }
  static statusTextOf(r: FetchResponse): string {
    return r.#statusText;
  }
  static urlOf(r: FetchResponse): string {
    return r.#url;
  }
  static redirectedOf(r: FetchResponse): boolean {
    return r.#redirected;
  }
  static is(r: unknown): r is FetchResponse {
    return typeof r === 'object' && r !== null && #details in r;
  }
  static detailsOf(r: unknown): FetchDetails | undefined {
    return FetchResponse.is(r) ? r.#details : undefined;
  }

  static headersOf(r: FetchResponse): Headers {
    if (r.#headers === undefined) r.#headers = new Headers(headerPairs(r.#fields));
    return r.#headers;
  }

  static bodyOf(r: FetchResponse): ReadableStream<Uint8Array> | null {
    if (r.#stream === undefined) {
      if (!r.#hasBody) r.#stream = null;
      else if (r.#used) r.#stream = usedStream();
      else if (r.#bytes !== null) r.#stream = onceStream(r.#bytes);
      else r.#stream = webStream(r.#source!, r.#signal);
      r.#bytes = null;
      r.#source = null;
    }
    return r.#stream;
  }

  static bodyUsedOf(r: FetchResponse): boolean {
    return r.#stream != null ? isDisturbed(r.#stream) : r.#used;
  }

  /**
   * The whole body at once, marked used, when it is here and nothing stands in the way (no stream
   * made of it, not read before, not still arriving); else null, and take() is the way. A read of a
   * small body then resolves in one step, not one per async function in between.
   */
  static takeNow(r: FetchResponse): Buffer | null {
    if (r.#stream != null || r.#used || r.#source !== null) return null;
    r.#used = true;
    const bytes = r.#bytes ?? EMPTY;
    r.#bytes = null;
    return bytes;
  }

  /**
   * The whole body for a read, and the body marked used. One already used, or taken as a stream
   * and read or locked, is the standard's "unusable"; one taken as a stream and untouched is read
   * through it. A body that fails mid-way rejects as Node's fetch's: with the abort reason once the
   * signal fired, else TypeError('terminated').
   */
  static async take(r: FetchResponse): Promise<Buffer> {
    const now = FetchResponse.takeNow(r);
    if (now !== null) return now;
    if (r.#stream != null) return readStream(r.#stream);
    if (r.#used) throw new TypeError('Body is unusable: Body has already been read');
    // Left by takeNow(): an unread body still arriving.
    r.#used = true;
    const source = r.#source!;
    r.#source = null;
    try {
      return (await source.bytes()) ?? EMPTY;
    } catch (err) {
      throw r.#signal?.aborted ? r.#signal.reason : new TypeError('terminated', { cause: err });
    }
  }

  /** The standard's clone, keeping url, redirected and the details; a streaming body is teed. */
  static cloneOf(r: FetchResponse): FetchResponse {
    if (FetchResponse.bodyUsedOf(r) || r.#stream?.locked) {
      throw new TypeError('Response.clone: Body has already been consumed.');
    }
    let bytes = r.#bytes;
    let stream: ReadableStream<Uint8Array> | null | undefined;
    if (r.#source !== null || r.#stream != null) {
      const [mine, theirs] = FetchResponse.bodyOf(r)!.tee();
      r.#stream = mine;
      stream = theirs;
      bytes = null;
    }
    const res = { status: r.#status, statusText: r.#statusText, headers: r.#fields };
    const copy = new FetchResponse(
      res,
      { bytes, source: null, signal: r.#signal },
      r.#url,
      r.#redirected,
      r.#details,
    );
    copy.#stream = stream;
    if (bytes !== null) {
      r.#bytesShared = true;
      copy.#bytesShared = true;
    }
    // A clone's Headers are a copy of the list, not the same object (changes made to one stay its own).
    if (r.#headers !== undefined) copy.#headers = new Headers(r.#headers);
    return copy;
  }

  /**
   * The whole body made into what a read returns (`as` is told whether a clone shares the bytes): at
   * once when they are here (takeNow()), else once take() has them.
   */
  static readAs<T>(r: FetchResponse, as: (bytes: Buffer, shared: boolean) => T): Promise<T> {
    const shared = r.#bytesShared;
    const now = FetchResponse.takeNow(r);
    if (now !== null) return Promise.resolve(as(now, shared));
    return FetchResponse.take(r).then((bytes) => as(bytes, shared));
  }

  static arrayBufferOf(r: FetchResponse): Promise<ArrayBuffer> {
    return FetchResponse.readAs(r, ownArrayBuffer);
  }

  static textOf(r: FetchResponse): Promise<string> {
    return FetchResponse.readAs(r, decodeUtf8);
  }

  /** blob() and formData() depend on the Content-Type as the standard parses it: a plain Response does them. */
  static async standardOf(r: FetchResponse): Promise<Response> {
    const bytes = await FetchResponse.take(r);
    return new GlobalResponse(bytes.length === 0 ? null : bytes, { headers: FetchResponse.headersOf(r) });
  }
}

/** node:stream's isDisturbed (since Node 16.8, for web streams too), absent from @types/node. */
const isDisturbed = (nodeStream as unknown as { isDisturbed(stream: ReadableStream): boolean }).isDisturbed;
const EMPTY = Buffer.alloc(0);
/** worker_threads.markAsUncloneable: Node 22.10 and later (on Node 20 neither ours nor Node's Response is marked). */
const markAsUncloneable = (workerThreads as { markAsUncloneable?: (value: object) => void })
  .markAsUncloneable;
/**
 * A body in a buffer that is the whole of its ArrayBuffer and nobody else's (a body of 4 KiB or
 * more gathered into its own buffer, a socket read handed over whole, a stream read out) is given
 * as that ArrayBuffer; anything else (a slice of a shared slab, bytes a clone shares) is copied.
 */
function ownArrayBuffer(bytes: Buffer, shared: boolean): ArrayBuffer {
  // Never the shared empty buffer: a caller may transfer (detach) what it is given.
  if (!shared && bytes.length > 0 && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) {
    return bytes.buffer as ArrayBuffer;
  }
  // A typed-array copy is about twice as fast as ArrayBuffer.prototype.slice (Node 20-24).
  return new Uint8Array(bytes).buffer;
}

/** The standard's UTF-8 decode: a leading BOM dropped, bad sequences replaced. */
const utf8 = new TextDecoder();
const decodeUtf8 = (bytes: Buffer): string => utf8.decode(bytes);

// Response.prototype behind FetchResponse.prototype, which is what `instanceof Response` looks for.
// And res.constructor is Response itself, as on Node's fetch: code that makes a response from one it
// has (`new res.constructor(body, res)`) or reaches a static through it gets the standard's.
Object.setPrototypeOf(FetchResponse.prototype, GlobalResponse.prototype);
Object.defineProperty(FetchResponse.prototype, 'constructor', {
  value: GlobalResponse,
  writable: true,
  configurable: true,
});

// Every member of Response.prototype, in front of its own (which would read the Response
// constructor's state, which a FetchResponse does not have). The Response type declares them as
// properties, so they are defined here rather than in the class.
Object.defineProperties(FetchResponse.prototype, {
  status: getter(FetchResponse.statusOf),
  statusText: getter(FetchResponse.statusTextOf),
  ok: getter((r) => {
    const status = FetchResponse.statusOf(r);
    return status >= 200 && status <= 299;
  }),
  url: getter(FetchResponse.urlOf),
  redirected: getter(FetchResponse.redirectedOf),
  // Node's fetch has no CORS and gives every response it fetched the type 'basic'.
  type: getter(() => 'basic'),
  headers: getter(FetchResponse.headersOf),
  body: getter(FetchResponse.bodyOf),
  bodyUsed: getter(FetchResponse.bodyUsedOf),
  clone: method(FetchResponse.cloneOf),
  arrayBuffer: promised(FetchResponse.arrayBufferOf),
  bytes: promised((r) => FetchResponse.arrayBufferOf(r).then((buffer) => new Uint8Array(buffer))),
  text: promised(FetchResponse.textOf),
  json: promised((r) => FetchResponse.textOf(r).then(JSON.parse)),
  blob: promised((r) => FetchResponse.standardOf(r).then((res) => res.blob())),
  formData: promised((r) => FetchResponse.standardOf(r).then((res) => res.formData())),
});

/**
 * `this` as a FetchResponse. Anything else (a member taken off a response and called on its own, or
 * on another object) is refused as the standard's brand check refuses it: TypeError('Illegal
 * invocation'), thrown by accessors and clone(), a rejection from the methods that return a promise.
 */
function ours(r: unknown): FetchResponse {
  if (FetchResponse.is(r)) return r;
  throw illegalInvocation();
}

function illegalInvocation(): TypeError {
  return new TypeError('Illegal invocation');
}

/** `read` as a function of `this`, which must be a FetchResponse (see ours()). */
function onThis(read: (r: FetchResponse) => unknown): (this: unknown) => unknown {
  return function (this: unknown) {
    return read(ours(this));
  };
}

/** An accessor on a prototype as a class would define it (enumerable, as Response.prototype's are). */
function getter(read: (r: FetchResponse) => unknown): PropertyDescriptor {
  return { get: onThis(read), enumerable: true, configurable: true };
}

/** A method on a prototype as a class would define it: writable, configurable, not enumerable. */
function method(call: (r: FetchResponse) => unknown): PropertyDescriptor {
  return { value: onThis(call), writable: true, configurable: true };
}

/** A method that returns a promise: a wrong `this` is a rejection, not a throw. */
function promised(call: (r: FetchResponse) => Promise<unknown>): PropertyDescriptor {
  return {
    value(this: unknown) {
      return FetchResponse.is(this) ? call(this) : Promise.reject(illegalInvocation());
    },
    writable: true,
    configurable: true,
  };
}

/** A byte stream of one chunk, enqueued when first pulled. */
function onceStream(bytes: Buffer): ReadableStream<Uint8Array> {
  const source: UnderlyingByteSource = {
    type: 'bytes',
    pull(controller) {
      if (bytes.length > 0) controller.enqueue(owned(bytes));
      controller.close();
    },
  };
  return new ReadableStream(source, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
}

/** `body` first asked for after a read: a stream already read to its end (the standard keeps the disturbed one). */
function usedStream(): ReadableStream<Uint8Array> {
  const stream = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  void stream.getReader().read(); // disturbed, so bodyUsed stays true
  return stream;
}

/** Reads a stream that `body` handed out (the Response constructor refuses one locked or disturbed). */
async function readStream(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new GlobalResponse(stream).arrayBuffer());
}

/**
 * warmpool's connection facts for a Response that fetch() returned (undefined for any other): which
 * connection served it, whether it was reused, retried after a stale connection, the timings, the
 * trailers once the body has ended.
 */
export function fetchDetails(response: Response): FetchDetails | undefined {
  return FetchResponse.detailsOf(response);
}

/** Statuses whose responses have no body (the fetch standard's "null body status"). */
function isNullBodyStatus(status: number): boolean {
  return status === 101 || status === 103 || status === 204 || status === 205 || status === 304;
}

/**
 * The global Response for a warmpool response. A body that fails mid-way errors the web stream as
 * Node's fetch does: with the abort reason once `signal` fired, else TypeError('terminated').
 */
export function toFetchResponse(
  res: WarmpoolResponse,
  method: string,
  redirects: number,
  signal: AbortSignal | null | undefined,
): Response {
  const status = res.status;
  if (status < 200 || status > 599) {
    // The Response constructor refuses these; Node's fetch would too, as a network error.
    res.body.destroy();
    throw new ParseError(`the server answered with status ${status}, which fetch cannot represent`, {
      origin: res.url,
    });
  }
  const url = stripFragment(res.url);
  const details = new Details(res, redirects);
  let body: { bytes: Buffer | null; source: ResponseBody | null; signal: AbortSignal | null | undefined };
  if (method === 'HEAD' || isNullBodyStatus(status)) {
    res.body.dump().catch(() => {}); // no content by definition: release the lease now
    body = { bytes: null, source: null, signal };
  } else {
    // A body that came whole with its head is taken now, as bytes: reading it needs no stream.
    const whole = res.body.takeWhole();
    body =
      whole !== null ? { bytes: whole, source: null, signal } : { bytes: null, source: res.body, signal };
  }
  return new FetchResponse(res, body, url, redirects > 0, details) as unknown as Response;
}

function stripFragment(url: string): string {
  const hash = url.indexOf('#');
  return hash === -1 ? url : url.slice(0, hash);
}

/** The header fields as [name, value] pairs, set-cookie and other repeated fields one pair per value. */
function headerPairs(headers: IncomingHeaders): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const name in headers) {
    const value = headers[name]!;
    if (typeof value === 'string') pairs.push([name, value]);
    else for (let i = 0; i < value.length; i++) pairs.push([name, value[i]!]);
  }
  return pairs;
}

/**
 * The body as a web byte stream (so BYOB readers work, as on Node's fetch). It pulls only when read
 * (highWaterMark 0): an unread body holds its connection under the body's own backpressure, not more.
 * A body that arrived whole with its head goes in as one chunk; a longer one is streamed with the
 * socket paused while the reader is behind.
 */
function webStream(body: ResponseBody, signal: AbortSignal | null | undefined): ReadableStream<Uint8Array> {
  let listening = false;
  const source: UnderlyingByteSource = {
    type: 'bytes',
    pull(controller) {
      if (listening) {
        body.resumeSink();
        return;
      }
      const whole = body.takeWhole();
      if (whole !== null) {
        if (whole.length > 0) controller.enqueue(owned(whole));
        controller.close();
        return;
      }
      listening = true;
      // Chunks come straight from the connection (no Readable in between); the socket pauses
      // whenever the stream has no read waiting.
      body.sinkTo({
        onChunk(chunk) {
          controller.enqueue(owned(chunk));
          return (controller.desiredSize ?? 0) > 0;
        },
        onEnd() {
          controller.close();
          // A BYOB reader waiting on an empty read must be told the stream ended.
          controller.byobRequest?.respond(0);
        },
        onError(err) {
          controller.error(signal?.aborted ? signal.reason : new TypeError('terminated', { cause: err }));
        },
      });
    },
    cancel() {
      body.destroy();
    },
  };
  return new ReadableStream(source, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
}

/**
 * A byte stream takes the ArrayBuffer of what it is given (it is transferred, and detached here). A
 * buffer that is the whole of its ArrayBuffer can go as it is; a slice of a shared one (a slab of
 * small buffers, a read buffer) is copied, or the others sharing it would lose their bytes.
 */
function owned(chunk: Buffer): Uint8Array {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength) {
    return new Uint8Array(chunk.buffer, 0, chunk.byteLength);
  }
  return new Uint8Array(chunk);
}
