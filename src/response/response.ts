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

export class Response {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly httpVersion: '1.0' | '1.1' | '2',
    readonly headers: IncomingHeaders,
    readonly body: ResponseBody,
    readonly connection: ConnectionInfo,
    readonly timings: Timings,
    /** The request failed on a stale reused connection and was sent again on a new one. */
    readonly retried: boolean,
    /** The URL that was requested. */
    readonly url: string,
  ) {}

  /** Trailer fields of a chunked (or HTTP/2) response, available once the body has ended. */
  get trailers(): IncomingHeaders | undefined {
    return this.body.trailers;
  }

  /** status is 200-299. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }
}
