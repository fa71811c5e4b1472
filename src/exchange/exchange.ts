import {
  publishRequestEnd,
  publishRequestError,
  publishResponse,
  requestEnd,
  requestError,
  requestResponse,
} from '../diagnostics/channels.js';
import { AbortedError } from '../errors.js';
import type { IncomingHeaders, OutgoingHeaders } from '../headers.js';
import type { PreparedBody } from '../request/body.js';
import { type BodySource, ResponseBody } from '../response/body.js';
import { type ConnectionInfo, type HeaderConversion, Response, type Timings } from '../response/response.js';
import type { PoolConnection } from './connection.js';
import { type SignalWatcher, unwatchSignal, watchSignal } from './signal-watch.js';

/** Interim (1xx) responses, for `onInformation`. */
export interface InformationalResponse {
  status: number;
  statusText: string;
  headers: IncomingHeaders;
}

/**
 * Where an exchange is. One field says it, and one method (`moveTo`) changes it, together with who
 * holds the exchange (told when the caller aborts) and the connection it is on:
 *
 * ```
 *   QUEUED ──► LIVENESS ──► SENT ──► STREAMING ──► DONE
 *     ▲  └──────────────────►▲  │
 *     └──────────┴────────────┘  │   (back to QUEUED: a dead connection in its liveness turn, a
 *                                    retry, a resend; DONE from anywhere: settled, or aborted)
 * ```
 */
export const EX_QUEUED = 0; // waiting for a connection (in the queue, or while one is dialed)
export const EX_LIVENESS = 1; // holds a connection, nothing written yet: waiting for it to prove alive
export const EX_SENT = 2; // written on a connection, waiting for the response head
export const EX_STREAMING = 3; // head delivered; the body is being received
export const EX_DONE = 4; // settled: body received, or failed
export type ExchangeState = 0 | 1 | 2 | 3 | 4;

/** LEGAL[from][to]: the moves the lifecycle above allows. */
const LEGAL: readonly (readonly boolean[])[] = [
  /* from QUEUED    */ [true, true, true, false, true],
  /* from LIVENESS  */ [true, false, true, false, true],
  /* from SENT      */ [true, false, false, true, true],
  /* from STREAMING */ [false, false, false, false, true],
  /* from DONE      */ [false, false, false, false, false],
];
const STATE_NAMES = ['queued', 'liveness', 'sent', 'streaming', 'done'];

/**
 * An illegal move is a bug in warmpool: refused (the exchange stays where it is) and, under a test
 * runner (node --test sets NODE_TEST_CONTEXT in its test processes) or with WARMPOOL_STRICT=1, thrown.
 */
const throwOnIllegalMove = process.env.NODE_TEST_CONTEXT !== undefined || process.env.WARMPOOL_STRICT === '1';

/** Methods RFC 9110 §9.2.2 calls idempotent: safe to send twice. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface ExchangeInit {
  url: string;
  origin: string;
  method: string;
  path: string;
  /** The encoded request head (validated, with host and framing headers); '' if not serialized. */
  head: string;
  /** -1 none, -2 chunked, >= 0 the Content-Length the head announced. */
  bodyFraming: number;
  body: PreparedBody;
  /** Also true when the caller asked for Connection: close. */
  connectionClose: boolean;
  /** Host (and port) for HTTP/2's :authority. */
  authority: string;
  /** The caller's headers as given; HTTP/2 builds its header object from them (HTTP/1.1 uses `head`). */
  headers: OutgoingHeaders | undefined;
  idempotent: boolean | undefined;
  retryOnStale: boolean;
  headersTimeout: number;
  bodyTimeout: number;
  highWaterMark: number;
  /** The body goes to a reader that keeps its chunks: not gathered (see RequestInit.bodyAsChunks). */
  bodyAsChunks: boolean;
  signal: AbortSignal | undefined;
  onInformation: ((info: InformationalResponse) => void) | undefined;
  /** Which attempt of the Client's retry policy this is (1 = the first; absent: 1). */
  attempt?: number;
  /** `Expect: 100-continue` with a body: the body waits for 100 Continue (or continueTimeout). */
  expectContinue?: boolean;
  /** How long the body waits for 100 Continue before it is sent anyway, ms; 0 = until the answer. */
  continueTimeout?: number;
}

/**
 * One request from the caller's call until its body has been received or it failed, across
 * attempts (a safe retry moves it to a new connection). It is its own AbortSignal watcher and its
 * own wait-queue node, so no closure or node is made per request for either.
 */
export class Exchange implements SignalWatcher {
  readonly url: string;
  readonly origin: string;
  readonly method: string;
  readonly path: string;
  /** The HTTP/1.1 request head; '' until needed when the request was made for an HTTP/2 origin. */
  head: string;
  readonly bodyFraming: number;
  readonly body: PreparedBody;
  readonly connectionClose: boolean;
  readonly authority: string;
  readonly headers: OutgoingHeaders | undefined;
  readonly isHead: boolean;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly highWaterMark: number;
  readonly bodyAsChunks: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onInformation: ((info: InformationalResponse) => void) | undefined;
  /** The body waits for 100 Continue, a final response, or continueTimeout (RFC 9110 §10.1.1). */
  readonly expectContinue: boolean;
  readonly continueTimeout: number;
  /** May this request be sent again after a stale-connection failure? */
  readonly retrySafe: boolean;
  /** The retry policy's attempt (1 = the first), for res.attempts and the pool's retry count. */
  readonly attempt: number;

  private _state: ExchangeState = EX_QUEUED;
  /** The connection it is on (LIVENESS, SENT, STREAMING), else null. */
  private _connection: PoolConnection | null = null;
  retried = false;
  /** Answered by a MockAgent's interceptor (warmpool/testing): res.connection.mocked. */
  mocked = false;
  /** Set for the retry: the next connection must be a new one, never another reused one. */
  needsNewConnection = false;
  // Its place in the origin's WaitQueue (see wait-queue.ts).
  prevWaiter: Exchange | null = null;
  nextWaiter: Exchange | null = null;
  inQueue = false;
  queueDeadline = 0;

  // timings
  /** When the pool first took it (monotonic ms); set by OriginPool.dispatch from its clock reading. */
  queuedAt = 0;
  dispatchedAt = 0;
  /** The wall clock as the pool read it with `dispatchedAt`. */
  dispatchedWall = 0;
  dnsMs: number | undefined = undefined;
  connectMs: number | undefined = undefined;
  tlsMs: number | undefined = undefined;
  // connection facts when it was sent, for res.connection
  connReused = false;
  /**
   * The connection came from the idle list: it served an earlier request, or it was opened earlier
   * and waited there unused. Either way the server may have closed it meanwhile, so a failure before
   * any response byte is the stale-connection kind, retried when safe (DESIGN.md invariant 5).
   */
  connFromIdle = false;
  connIdleMs = 0;
  connAgeMs = 0;
  connRequestCount = 0;

  /** The caller's promise; null once it resolved (see deliverHead). */
  promise: Promise<Response> | null;
  private resolveFn!: (r: Response) => void;
  private rejectFn!: (e: Error) => void;
  /** Called when the exchange is abandoned by its caller (abort). Set by whoever holds it now. */
  private abortTarget: ExchangeAbortTarget | null = null;

  constructor(init: ExchangeInit) {
    this.url = init.url;
    this.origin = init.origin;
    this.method = init.method;
    this.path = init.path;
    this.head = init.head;
    this.bodyFraming = init.bodyFraming;
    this.body = init.body;
    this.connectionClose = init.connectionClose;
    this.authority = init.authority;
    this.headers = init.headers;
    this.isHead = init.method === 'HEAD';
    this.headersTimeout = init.headersTimeout;
    this.bodyTimeout = init.bodyTimeout;
    this.highWaterMark = init.highWaterMark;
    this.bodyAsChunks = init.bodyAsChunks;
    this.signal = init.signal;
    this.onInformation = init.onInformation;
    this.attempt = init.attempt ?? 1;
    this.expectContinue = init.expectContinue === true;
    this.continueTimeout = init.continueTimeout ?? 1000;
    this.retrySafe =
      init.retryOnStale && (init.idempotent ?? IDEMPOTENT.has(init.method)) && init.body.replayable;
    this.promise = new Promise<Response>(takeResolvers);
    this.resolveFn = takenResolve;
    this.rejectFn = takenReject;
    takenResolve = settledAlready;
    takenReject = settledAlready;
    if (init.signal !== undefined) watchSignal(init.signal, this);
  }

  get state(): ExchangeState {
    return this._state;
  }

  get connection(): PoolConnection | null {
    return this._connection;
  }

  /**
   * The one place an exchange changes state: it moves to `to`, held by `holder` (told when the caller
   * aborts: the pool while queued or in a liveness turn, the connection once written), on
   * `connection`. Races are settled here, in the spirit of Go's wantConn.tryDeliver: a move on an
   * exchange that is already done (an abort or a timeout won) returns false, and the mover lets go of
   * whatever it took for it. A move the lifecycle does not allow is refused the same way (and thrown
   * under test: it is a bug).
   */
  moveTo(to: ExchangeState, holder: ExchangeAbortTarget | null, connection: PoolConnection | null): boolean {
    const from = this._state;
    if (!LEGAL[from]![to]) {
      if (from !== EX_DONE && throwOnIllegalMove) {
        throw new Error(`warmpool: an exchange cannot move from ${STATE_NAMES[from]} to ${STATE_NAMES[to]}`);
      }
      return false;
    }
    this._state = to;
    this.abortTarget = holder;
    this._connection = connection;
    return true;
  }

  /**
   * The connection delivered the final response head. With `convert`, `headers` is a raw header block
   * that it turns into IncomingHeaders on the first read of res.headers.
   */
  deliverHead(
    source: BodySource,
    status: number,
    statusText: string,
    httpVersion: '1.0' | '1.1' | '2',
    headers: IncomingHeaders | readonly string[],
    convert: HeaderConversion | null,
    protocol: 'http/1.1' | 'h2',
    connectionId: number,
    now: number,
    bodyLength = -1,
  ): ResponseBody {
    this.moveTo(EX_STREAMING, this.abortTarget, this._connection);
    // A body whose reader keeps its chunks is not gathered: they go to it as they were read.
    const body = new ResponseBody(source, this.highWaterMark, this.bodyAsChunks ? -1 : bodyLength);
    const timings: Timings = { queuedMs: this.dispatchedAt - this.queuedAt, ttfbMs: now - this.dispatchedAt };
    if (this.dnsMs !== undefined) timings.dnsMs = this.dnsMs;
    if (this.connectMs !== undefined) timings.connectMs = this.connectMs;
    if (this.tlsMs !== undefined) timings.tlsMs = this.tlsMs;
    const info: ConnectionInfo = {
      id: connectionId,
      protocol,
      reused: this.connReused,
      ageMs: this.connAgeMs,
      idleMs: this.connIdleMs,
      requestCount: this.connRequestCount,
    };
    const response = new Response(
      status,
      statusText,
      httpVersion,
      headers,
      convert,
      body,
      this.mocked ? { ...info, mocked: true } : info,
      timings,
      this.retried,
      this.url,
      this.attempt,
    );
    if (requestResponse.hasSubscribers) publishResponse(this, response);
    this.resolveFn(response);
    // A resolved promise holds its Response, and so the body, for as long as the promise or either
    // of its resolving functions is reachable, and the connection reaches this exchange until the
    // body ends. Let go of all three, or a body dropped unread could never be collected and its
    // connection never freed (H1Connection holds a paused body only weakly for that reason).
    this.promise = null;
    this.resolveFn = settledAlready;
    this.rejectFn = settledAlready;
    return body;
  }

  /** Nothing more to settle; false if it was settled already. */
  finish(): boolean {
    if (!this.moveTo(EX_DONE, null, null)) return false;
    if (this.signal !== undefined) unwatchSignal(this.signal, this);
    return true;
  }

  /** The body has been received whole (with `trailers`, if any). */
  complete(trailers: IncomingHeaders | undefined): void {
    if (this.finish() && requestEnd.hasSubscribers) publishRequestEnd(this, trailers);
  }

  /** The body failed after the head (the connection hands `err` to the body stream). */
  failBody(err: Error): void {
    if (this.finish() && requestError.hasSubscribers) publishRequestError(this, err, true);
  }

  /** Fails the request before its head (after the head, errors go to the body stream). */
  reject(err: Error): void {
    const afterResponse = this._state === EX_STREAMING;
    if (!this.finish()) return;
    if (requestError.hasSubscribers) publishRequestError(this, err, afterResponse);
    this.rejectFn(err);
  }

  get settled(): boolean {
    return this._state === EX_DONE;
  }

  /** The caller's AbortSignal aborted. */
  onSignalAborted(): void {
    if (this._state === EX_DONE) return;
    const err = new AbortedError(`request to ${this.origin} aborted`, {
      origin: this.origin,
      cause: this.signal?.reason,
    });
    const target = this.abortTarget;
    if (target !== null) target.abortExchange(this, err);
    else this.reject(err);
  }
}

function settledAlready(): void {}

// The Promise executor runs synchronously inside `new Promise`: one function for every exchange
// hands the resolving functions over through these two, instead of a closure made per request.
let takenResolve: (r: Response) => void = settledAlready;
let takenReject: (e: Error) => void = settledAlready;
function takeResolvers(resolve: (r: Response) => void, reject: (e: Error) => void): void {
  takenResolve = resolve;
  takenReject = reject;
}

/** Whoever holds an exchange now: it must release what the exchange holds and settle it with `err`. */
export interface ExchangeAbortTarget {
  abortExchange(ex: Exchange, err: Error): void;
}
