import type { InspectOptionsStylized } from 'node:util';
import type { IncomingHeaders } from '../headers.js';
import type { ResponseBody } from './body.js';

/** Which connection served a response, as it was when the request was sent. */
export interface ConnectionInfo {
  id: number;
  protocol: 'http/1.1' | 'h2';
  /** The connection had served an earlier request. */
  reused: boolean;
  /** Milliseconds since the connection was established. */
  ageMs: number;
  /** Milliseconds the connection had been idle before this request (0 for a new one). */
  idleMs: number;
  /** Requests sent on the connection, this one included. */
  requestCount: number;
  /** Answered by a MockAgent's interceptor (warmpool/testing), not by a server. */
  mocked?: true;
}

/** Where the time went. Steps that did not happen (no new connection, no TLS) are absent. */
export interface Timings {
  queuedMs: number;
  dnsMs?: number;
  connectMs?: number;
  tlsMs?: number;
  /** Request written to first response byte. */
  ttfbMs: number;
}

/**
 * Turns a raw header block (name, value, name, value, ...) into IncomingHeaders. HTTP/2 hands its
 * raw block over with the head and it is converted on the first read of `res.headers`: building the
 * object costs a few microseconds, and many callers never look at the headers.
 */
export type HeaderConversion = (raw: readonly string[]) => IncomingHeaders;

export class Response {
  /** The header fields, or the raw block `#convert` turns into them on first read. */
  #fields: IncomingHeaders | readonly string[];
  #convert: HeaderConversion | null;

  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly httpVersion: '1.0' | '1.1' | '2',
    headers: IncomingHeaders | readonly string[],
    convert: HeaderConversion | null,
    readonly body: ResponseBody,
    readonly connection: ConnectionInfo,
    readonly timings: Timings,
    /** The request failed on a stale reused connection and was sent again on a new one. */
    readonly retried: boolean,
    /** The URL that was requested. */
    readonly url: string,
    /** Attempts the Client's retry policy made, this one included (1: no retry). */
    readonly attempts = 1,
  ) {
    this.#fields = headers;
    this.#convert = convert;
  }

  /** Response header fields: lowercase names; repeated fields (and set-cookie) are arrays. */
  get headers(): IncomingHeaders {
    const convert = this.#convert;
    if (convert !== null) {
      this.#convert = null;
      this.#fields = convert(this.#fields as readonly string[]);
    }
    return this.#fields as IncomingHeaders;
  }

  /** Trailer fields of a chunked (or HTTP/2) response, available once the body has ended. */
  get trailers(): IncomingHeaders | undefined {
    return this.body.trailers;
  }

  /** status is 200-299. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** console.log(res) and util.inspect show the headers too (a getter, not an own property). */
  [Symbol.for('nodejs.util.inspect.custom')](
    depth: number | null,
    options: InspectOptionsStylized,
    inspect: (value: unknown, options: InspectOptionsStylized) => string,
  ): string {
    const view = {
      status: this.status,
      statusText: this.statusText,
      httpVersion: this.httpVersion,
      headers: this.headers,
      body: this.body,
      connection: this.connection,
      timings: this.timings,
      retried: this.retried,
      attempts: this.attempts,
      url: this.url,
    };
    if (depth !== null && depth < 0) return options.stylize('[Response]', 'special');
    // `depth` is what is left at this level: the view's fields show as the Response's own would.
    return `Response ${inspect(view, { ...options, depth })}`;
  }
}
