import type { UnderlyingByteSource } from 'node:stream/web';
import { ParseError } from '../errors.js';
import type { IncomingHeaders } from '../headers.js';
import type { ResponseBody } from '../response/body.js';
import type { ConnectionInfo, Timings, Response as WarmpoolResponse } from '../response/response.js';

/**
 * fetch()'s Response: a real instance of the global Response (its headers a real Headers, its body a
 * real ReadableStream), made from warmpool's response. Only what the Response constructor cannot set
 * is added, by a subclass: `url`, `redirected` and `type`, which Node's fetch sets from inside.
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

class FetchResponse extends GlobalResponse {
  #url: string;
  #redirected: boolean;
  #details: FetchDetails;

  constructor(
    body: ReadableStream<Uint8Array> | null,
    init: ResponseInit,
    url: string,
    redirected: boolean,
    details: FetchDetails,
  ) {
    super(body, init);
    this.#url = url;
    this.#redirected = redirected;
    this.#details = details;
  }

  static urlOf(r: FetchResponse): string {
    return r.#url;
  }
  static redirectedOf(r: FetchResponse): boolean {
    return r.#redirected;
  }
  static detailsOf(r: object): FetchDetails | undefined {
    return #details in r ? (r as FetchResponse).#details : undefined;
  }

  /** A copy that keeps url, redirected and the details (the standard's clone() would make a bare Response). */
  static cloneOf(r: FetchResponse): FetchResponse {
    const copy = standardClone.call(r);
    return new FetchResponse(
      copy.body,
      { status: copy.status, statusText: copy.statusText, headers: copy.headers },
      r.#url,
      r.#redirected,
      r.#details,
    );
  }
}

const standardClone = GlobalResponse.prototype.clone as (this: Response) => Response;

// The Response type declares url, redirected, type and clone as (readonly) properties, which a
// subclass cannot re-declare as accessors or methods in TypeScript; they go on the prototype, where
// Response.prototype has its own.
Object.defineProperties(FetchResponse.prototype, {
  url: {
    get(this: FetchResponse) {
      return FetchResponse.urlOf(this);
    },
    enumerable: true,
    configurable: true,
  },
  redirected: {
    get(this: FetchResponse) {
      return FetchResponse.redirectedOf(this);
    },
    enumerable: true,
    configurable: true,
  },
  clone: {
    value(this: FetchResponse) {
      return FetchResponse.cloneOf(this);
    },
    writable: true,
    configurable: true,
  },
  // Node's fetch has no CORS and gives every response it fetched the type 'basic'.
  type: { get: () => 'basic', enumerable: true, configurable: true },
});

/**
 * warmpool's connection facts for a Response that fetch() returned (undefined for any other): which
 * connection served it, whether it was reused, retried after a stale connection, the timings, the
 * trailers once the body has ended.
 */
export function fetchDetails(response: Response): FetchDetails | undefined {
  if (typeof response !== 'object' || response === null) return undefined;
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
  let stream: ReadableStream<Uint8Array> | null = null;
  if (method === 'HEAD' || isNullBodyStatus(status)) {
    res.body.dump().catch(() => {}); // no content by definition: release the lease now
  } else {
    stream = webStream(res.body, signal);
  }
  const url = stripFragment(res.url);
  return new FetchResponse(
    stream,
    { status, statusText: res.statusText, headers: headerPairs(res.headers) },
    url,
    redirects > 0,
    new Details(res, redirects),
  );
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
        body.resume();
        return;
      }
      const whole = body.takeWhole();
      if (whole !== null) {
        if (whole.length > 0) controller.enqueue(owned(whole));
        controller.close();
        return;
      }
      listening = true;
      body.on('data', (chunk: Buffer) => {
        controller.enqueue(owned(chunk));
        if ((controller.desiredSize ?? 0) <= 0) body.pause();
      });
      body.on('end', () => {
        controller.close();
        // A BYOB reader waiting on an empty read must be told the stream ended.
        controller.byobRequest?.respond(0);
      });
      body.on('error', (err) =>
        controller.error(signal?.aborted ? signal.reason : new TypeError('terminated', { cause: err })),
      );
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
