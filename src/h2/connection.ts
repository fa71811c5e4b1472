/**
 * One HTTP/2 connection: a node:http2 ClientHttp2Session over a socket the pool dialed. A lease is
 * one stream slot; `capacity` is the server's SETTINGS_MAX_CONCURRENT_STREAMS (0 once the session
 * stops taking streams).
 *
 * Every way a stream can end goes through one of two places:
 * - `onEnd`: the response arrived whole; the body ends, and the slot is released once our side has
 *   sent its END_STREAM too (`release`);
 * - `failStream`: anything else. Before the response head the exchange goes back to the pool, which
 *   replays it (`resend`: the server never processed it) or retries it (`onExchangeFailed`: the
 *   session died under it) or rejects it; after the head its body errors.
 * The slot itself is released exactly once, in `release`, when both directions are done or the
 * stream has closed ('close' always comes, whoever ended the stream).
 *
 * The races, and where they are handled:
 * - GOAWAY (`onGoaway`): no new streams (capacity 0, so the pool drops the session from its free
 *   list); streams at or below last-stream-id finish; those above it were never processed and are
 *   replayed on another session. With an error code node:http2 destroys the session at once: streams
 *   at or below last-stream-id that had no response yet fail as on a dead connection (the pool
 *   retries the idempotent ones).
 * - REFUSED_STREAM on a session that is not going away: the server is over its limit (say, a lowered
 *   SETTINGS in flight). The session takes no new streams until one of its own ends, and the refused
 *   one is replayed once, elsewhere.
 * - A session idle for a while (or whose idle age the two clocks disagree on: a VM freeze or a clock
 *   step) may be dead without having said so. Before reuse it is checked with a PING; exchanges wait
 *   for the answer, and if none comes they are sent elsewhere (they were never sent here).
 * - A session that closes while streams are in flight fails them; those without a response byte on a
 *   reused session, or after GOAWAY, are retryable (the pool retries only idempotent ones).
 */
import { STATUS_CODES } from 'node:http';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Clock } from '../clock.js';
import {
  BodyTimeoutError,
  ConnectTimeoutError,
  HeadersOverflowError,
  HeadersTimeoutError,
  Http2Error,
  RequestBodyError,
  SocketClosedError,
  WarmpoolError,
} from '../errors.js';
import type { CloseReason, ConnectionOwner, PoolConnection } from '../exchange/connection.js';
import { EX_LIVENESS, EX_SENT, type Exchange, type ExchangeAbortTarget } from '../exchange/exchange.js';
import type { IncomingHeaders } from '../headers.js';
import { BODY_KIND_BYTES, BODY_KIND_NONE } from '../request/body.js';
import {
  type AbandonedBodyWatcher,
  forgetBody,
  warnBodyAbandoned,
  watchBody,
} from '../response/abandoned-body.js';
import type { BodySource, ResponseBody } from '../response/body.js';
import { ReusableTimer } from '../reusable-timer.js';
import { type H2HeaderLimits, headerListOverflow, overLimitsResetMessage } from './header-limits.js';
import { incomingHeaders, requestHeaders } from './headers.js';
import { type LivenessOwner, LivenessPing, needsLivenessCheck } from './liveness.js';
import { SessionSettings, openSession } from './session.js';
import { DeadlineTimer, ProcessRef } from './timers.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } =
  http2.constants;

/** Times an exchange may be replayed after GOAWAY; a lone REFUSED_STREAM is replayed once. */
const MAX_GOAWAY_REPLAYS = 3;
const ERROR_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];
function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `error code ${code}`;
}

/** How many times each exchange was replayed on another session. */
const replays = new WeakMap<Exchange, number>();

/** session.request() options; node:http2 copies them, so one object each serves every request. */
const END_STREAM = Object.freeze({ endStream: true });
const OPEN_STREAM = Object.freeze({ endStream: false });

/** The stream state hangs off the node stream under this key, so event handlers need no closures. */
const STATE = Symbol('warmpool.h2.stream');
interface TaggedStream extends ClientHttp2Stream {
  [STATE]: H2Stream;
}

/** One exchange on one stream; the body's source (backpressure and cancellation go to the stream). */
class H2Stream implements BodySource, AbandonedBodyWatcher {
  /** The response body; null while paused (then held by `weakBody`), or once ended or failed. */
  body: ResponseBody | null = null;
  weakBody: WeakRef<ResponseBody> | null = null;
  /** A 1xx or the final head arrived: the server saw the request. */
  receivedAny = false;
  /** The final head was delivered (the exchange's promise resolved). */
  headDelivered = false;
  /** The exchange is settled: its body ended or failed, or it went back to the pool. */
  settled = false;
  /** The response's END_STREAM arrived. */
  recvDone = false;
  /** Our END_STREAM was sent. */
  sendDone = false;
  /** The slot was given back. */
  released = false;
  /** 'close' was emitted. */
  closed = false;
  paused = false;
  /** sendBody() opened the request body's stream (it cannot be replayed unless replayable). */
  bodyOpened = false;
  /** sendBody() is reading the request body's source. */
  sendingBody = false;
  /** Body bytes still to come by the response's content-length; -1 when it gave none. */
  bodyLeft = -1;
  /** Its place in H2Connection.streams while its slot is held; -1 after. */
  index = -1;
  /** DATA that came before the 'response' event (see onData); handed to the body with the head. */
  early: Buffer[] | null = null;
  lastActivity: number;
  trailers: IncomingHeaders | undefined = undefined;
  error: Error | undefined = undefined;
  drainWaiter: (() => void) | null = null;

  constructor(
    readonly conn: H2Connection,
    readonly ex: Exchange,
    readonly stream: ClientHttp2Stream,
    readonly sentAt: number,
  ) {
    this.lastActivity = sentAt;
  }

  resumeBody(): void {
    if (this.paused) this.conn.resumeStream(this);
  }

  /** The body, strongly held again (null if it was collected, ended or failed). */
  reclaimBody(): ResponseBody | null {
    if (this.weakBody !== null) {
      const body = this.weakBody.deref() ?? null;
      this.weakBody = null;
      forgetBody(this);
      this.body = body;
    }
    return this.body;
  }

  /** While paused: hold the body weakly (see abandoned-body.ts). */
  holdWeakly(): void {
    const body = this.body;
    if (body === null) return;
    this.weakBody = new WeakRef(body);
    watchBody(body, this);
    this.body = null;
  }

  /** The body was collected while paused: the stream is reset. */
  onBodyCollected(): void {
    this.conn.onBodyCollected(this);
  }

  abandonBody(body: ResponseBody, err: Error): void {
    this.conn.abandonStream(this, body, err);
  }

  waitDrain(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.drainWaiter = resolve;
    });
  }

  wakeWriter(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    if (w !== null) w();
  }
}

// Stream event handlers: `this` is the node stream; no closure is made per request. The header
// events carry node:http2's header object and, third, the raw block (name, value, ...): the object
// gives the fields node has already checked, the raw block becomes IncomingHeaders (incomingHeaders).
type HeadersListener = (headers: IncomingHttpHeaders, flags: number) => void;
function onStreamResponse(
  this: TaggedStream,
  headers: IncomingHttpHeaders,
  _flags: number,
  raw: string[],
): void {
  const s = this[STATE];
  s.conn.onResponse(s, headers, raw);
}
function onStreamHeaders(
  this: TaggedStream,
  headers: IncomingHttpHeaders,
  _flags: number,
  raw: string[],
): void {
  const s = this[STATE];
  s.conn.onInformation(s, headers, raw);
}
function onStreamData(this: TaggedStream, chunk: Buffer): void {
  const s = this[STATE];
  s.conn.onData(s, chunk);
}
function onStreamTrailers(
  this: TaggedStream,
  _headers: IncomingHttpHeaders,
  _flags: number,
  raw: string[],
): void {
  const s = this[STATE];
  s.conn.onTrailers(s, raw);
}
function onStreamEnd(this: TaggedStream): void {
  const s = this[STATE];
  s.conn.onEnd(s);
}
function onStreamFinish(this: TaggedStream): void {
  const s = this[STATE];
  s.conn.onSendDone(s);
}
function onStreamDrain(this: TaggedStream): void {
  this[STATE].wakeWriter();
}
function onStreamError(this: TaggedStream, err: Error): void {
  const s = this[STATE];
  if (s.error === undefined) s.error = err;
}
function onStreamClose(this: TaggedStream): void {
  const s = this[STATE];
  s.conn.onStreamClose(s);
}

export class H2Connection implements PoolConnection, ExchangeAbortTarget, LivenessOwner {
  readonly protocol = 'h2' as const;
  readonly multiplexed = true;
  active = 0;
  closed = false;
  requestCount = 0;
  readonly createdMono: number;
  readonly createdWall: number;
  idleSinceMono: number;
  idleSinceWall: number;
  readonly serverIdleTimeoutMs = undefined;
  readonly serverMaxRequests = undefined;
  readonly ready: Promise<void>;

  private readonly session: ClientHttp2Session;
  private readonly scheme: 'https' | 'http';
  private readonly settings = new SessionSettings();
  /** No new streams: GOAWAY arrived, or close() was asked while streams were open. */
  private draining = false;
  private drainReason: CloseReason = 'server-close';
  private sessionError: Error | undefined = undefined;
  /** The error open streams fail with when we ended the session ourselves. */
  private closeError: Error | undefined = undefined;
  /**
   * The open streams, in no order (a stream leaving swaps the last one into its place). An array
   * rather than a Map keyed by exchange: hashing a new key object on every request costs more than
   * the rare lookup by exchange (abort) saves.
   */
  private readonly streams: H2Stream[] = [];
  /** Exchanges hold a slot here while a liveness PING is out. */
  private readonly liveness: LivenessPing;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private readonly processRef: ProcessRef;
  private readonly deadlines: DeadlineTimer;
  private readonly idleTimer: ReusableTimer;
  private settingsTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly id: number,
    socket: Socket,
    private readonly owner: ConnectionOwner,
    private readonly clock: Clock,
    private readonly origin: string,
    settingsTimeout: number,
    private readonly limits: H2HeaderLimits,
  ) {
    this.createdMono = this.idleSinceMono = clock.monotonicMs();
    this.createdWall = this.idleSinceWall = clock.wallMs();
    this.scheme = socket instanceof TLSSocket ? 'https' : 'http';
    this.onRemoteSettings = this.onRemoteSettings.bind(this);
    this.onLocalSettings = this.onLocalSettings.bind(this);
    this.onGoaway = this.onGoaway.bind(this);
    this.onSessionError = this.onSessionError.bind(this);
    this.onSessionClose = this.onSessionClose.bind(this);
    this.liveness = new LivenessPing(this);
    this.deadlines = new DeadlineTimer(clock, this.onDeadline.bind(this));
    this.idleTimer = new ReusableTimer(this.onIdleTimer.bind(this));
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    const session = openSession(origin, socket, limits);
    this.session = session;
    this.processRef = new ProcessRef(session);
    session.on('remoteSettings', this.onRemoteSettings);
    session.once('localSettings', this.onLocalSettings);
    session.on('goaway', this.onGoaway);
    session.on('error', this.onSessionError);
    session.on('close', this.onSessionClose);
    if (settingsTimeout > 0) {
      this.settingsTimer = setTimeout(() => {
        this.terminate(
          'error',
          new ConnectTimeoutError(
            `no HTTP/2 SETTINGS (or ACK of ours) from ${origin} within ${settingsTimeout} ms`,
            {
              origin,
            },
          ),
        );
      }, settingsTimeout);
    }
  }

  get capacity(): number {
    if (this.draining || this.closed || this.session.destroyed) return 0;
    return this.settings.limit;
  }

  get streamsWithheld(): boolean {
    return this.settings.streamLimit === 0 && !this.draining && !this.closed && !this.session.destroyed;
  }

  // ---- session events -------------------------------------------------------------------------

  private onRemoteSettings(settings: http2.Settings): void {
    const wasWithheld = this.settings.onRemote(settings.maxConcurrentStreams);
    if (!this.settings.ready) {
      this.maybeReady();
      return;
    }
    if (wasWithheld && this.settings.streamLimit > 0 && this.active === 0) {
      // A session the server allowed no streams could not be used: its idle time starts now, when it
      // can be (the frame just read shows it alive). Else waiters that waited out idleTimeout for the
      // limit to rise would see it retired as idle the moment it rose.
      this.markIdle();
    }
    // The limit may have grown: waiters can have the new slots.
    if (!this.closed && !this.draining && this.active < this.capacity) this.owner.onConnectionReleased(this);
  }

  private onLocalSettings(): void {
    this.settings.onLocalAcked();
    this.maybeReady();
  }

  /** Ready for streams once the server's SETTINGS and its ACK of ours are in (SessionSettings). */
  private maybeReady(): void {
    if (this.closed || !this.settings.becomeReady()) return;
    if (this.settingsTimer !== undefined) clearTimeout(this.settingsTimer);
    this.settingsTimer = undefined;
    this.markIdle();
    this.resolveReady();
  }

  private onGoaway(code: number, lastStreamId: number): void {
    if (this.closed) return;
    this.settings.onGoaway(code, lastStreamId);
    const wasDraining = this.draining;
    this.draining = true;
    this.drainReason = 'server-close';
    // Exchanges waiting on a PING were never sent: they go elsewhere now.
    if (this.liveness.holding > 0) this.resendHeld(this.goawayError());
    if (this.active === 0) {
      this.terminate('server-close', undefined);
      return;
    }
    // node:http2 closes the session itself (gracefully for NO_ERROR, at once otherwise); streams
    // end through onStreamClose. The pool may need another session for its waiters.
    if (!wasDraining) this.owner.onConnectionReleased(this);
  }

  private onSessionError(err: Error): void {
    if (this.sessionError === undefined) this.sessionError = err;
  }

  private onSessionClose(): void {
    this.terminate(this.draining ? this.drainReason : 'server-close', undefined);
  }

  // ---- what the pool asks ---------------------------------------------------------------------

  /** A session checks its own liveness: a PING before reuse when at risk (see needsLivenessCheck). */
  wantsLivenessTurn(): boolean {
    return false;
  }

  /**
   * A session that never carried a stream is new; so is one opened after the failed attempt was sent:
   * it cannot be the stale one, and one new session carries every such retry.
   */
  countsAsNewFor(ex: Exchange): boolean {
    return this.requestCount === 0 || this.createdMono > ex.dispatchedAt;
  }

  // ---- sending --------------------------------------------------------------------------------

  dispatch(ex: Exchange): void {
    const wasIdle = this.active === 0;
    this.active++;
    this.requestCount++;
    if (wasIdle && !this.processRef.keepsProcessAlive) this.processRef.set(true);
    if (this.liveness.pinging) {
      this.holdForPing(ex);
      return;
    }
    // Timed by the clocks the pool read for this dispatch, in this same call.
    if (
      wasIdle &&
      needsLivenessCheck(ex.dispatchedAt - this.idleSinceMono, ex.dispatchedWall - this.idleSinceWall)
    ) {
      this.holdForPing(ex);
      this.liveness.send(this.session);
      return;
    }
    // The pool read the clock for this dispatch a moment ago (in this same call): that is when it was sent.
    this.startStream(ex, ex.dispatchedAt);
  }

  /** The exchange waits, on this session, for its PING's answer: its liveness turn. */
  private holdForPing(ex: Exchange): void {
    ex.moveTo(EX_LIVENESS, this, this);
    this.liveness.hold(ex);
  }

  /** Opens the exchange's stream; `now` is a monotonic reading taken in this same turn. */
  private startStream(ex: Exchange, now: number): void {
    if (!ex.moveTo(EX_SENT, this, this)) {
      // Settled before it was written (the caller gave up): its slot is free again.
      this.active--;
      this.slotFreed();
      return;
    }
    const body = ex.body;
    const endStream = body.kind === BODY_KIND_NONE || (body.kind === BODY_KIND_BYTES && body.length === 0);
    let stream: ClientHttp2Stream;
    try {
      stream = this.session.request(requestHeaders(ex, this.scheme), endStream ? END_STREAM : OPEN_STREAM);
    } catch (err) {
      // node:http2 refused the header block, or the session is already closing.
      this.active--;
      const e = new Http2Error(`could not open an HTTP/2 stream to ${ex.origin}: ${(err as Error).message}`, {
        origin: ex.origin,
        cause: err,
      });
      if (this.session.closed || this.session.destroyed) this.owner.resend(ex, e, false);
      else this.owner.onExchangeFailed(ex, e, false);
      this.slotFreed();
      return;
    }
    const s = new H2Stream(this, ex, stream, now);
    (stream as TaggedStream)[STATE] = s;
    s.index = this.streams.length;
    this.streams.push(s);
    stream.on('response', onStreamResponse as HeadersListener);
    stream.on('headers', onStreamHeaders as HeadersListener);
    stream.on('data', onStreamData);
    stream.on('trailers', onStreamTrailers as HeadersListener);
    stream.on('end', onStreamEnd);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    if (endStream) {
      // END_STREAM rides on the HEADERS frame: once any response arrives, it has been sent. ('finish'
      // would only say so later, at the cost of one more listener per request.)
      s.sendDone = true;
    } else {
      stream.on('finish', onStreamFinish);
      if (body.kind === BODY_KIND_BYTES) {
        stream.end(body.bytes);
      } else {
        stream.on('drain', onStreamDrain);
        void this.sendBody(s);
      }
    }
    if (ex.headersTimeout > 0) this.deadlines.arm(now + ex.headersTimeout);
  }

  /** Streams a request body with backpressure, while the response may already be streaming back. */
  private async sendBody(s: H2Stream): Promise<void> {
    const stream = s.stream;
    try {
      s.bodyOpened = true;
      s.sendingBody = true;
      for await (const chunk of s.ex.body.openStream()) {
        if (stream.closed || stream.destroyed) return; // leaving the loop ends (destroys) the source
        if (chunk.length === 0) continue;
        if (!stream.write(chunk)) await s.waitDrain();
      }
      if (!stream.closed && !stream.destroyed) stream.end();
    } catch (err) {
      if (!stream.closed && !stream.destroyed) {
        this.failStream(
          s,
          new RequestBodyError(`request body stream failed: ${(err as Error).message}`, {
            origin: s.ex.origin,
            cause: err,
          }),
          false,
          false,
        );
      }
    } finally {
      s.sendingBody = false;
    }
  }

  // ---- receiving ------------------------------------------------------------------------------

  onInformation(s: H2Stream, headers: IncomingHttpHeaders, raw: string[]): void {
    s.receivedAny = true;
    if (this.failIfOverLimits(s, raw, 'interim head')) return;
    const status = Number(headers[':status']);
    const ex = s.ex;
    if (status >= 100 && status < 200 && ex.onInformation !== undefined && !s.settled) {
      ex.onInformation({ status, statusText: STATUS_CODES[status] ?? '', headers: incomingHeaders(raw) });
    }
  }

  onResponse(s: H2Stream, headers: IncomingHttpHeaders, raw: string[]): void {
    s.receivedAny = true;
    if (s.settled || this.failIfOverLimits(s, raw, 'head')) return;
    const status = Number(headers[':status']);
    const now = this.clock.monotonicMs();
    const ex = s.ex;
    s.headDelivered = true;
    s.lastActivity = now;
    // A content-length lets the body be gathered into one buffer of that size (no chunk pins the
    // session's read buffer), and spares a clock reading for the chunk that completes it (onData).
    // node:http2 has checked it is a single value; the DATA frames are checked against it too.
    const cl = headers['content-length'];
    const length = cl === undefined || ex.isHead || status === 204 || status === 304 ? -1 : Number(cl);
    if (length >= 0) s.bodyLeft = length;
    s.body = ex.deliverHead(
      s,
      status,
      STATUS_CODES[status] ?? '',
      '2',
      raw, // converted on the first read of res.headers
      incomingHeaders,
      'h2',
      this.id,
      now,
      length,
    );
    if (ex.bodyTimeout > 0) this.deadlines.arm(now + ex.bodyTimeout);
    const early = s.early;
    if (early !== null) {
      s.early = null;
      for (let i = 0; i < early.length; i++) this.onData(s, early[i]!);
    }
  }

  onTrailers(s: H2Stream, raw: string[]): void {
    if (s.settled || this.failIfOverLimits(s, raw, 'trailer section')) return;
    s.trailers = incomingHeaders(raw);
  }

  /**
   * A header list over the Agent's limits fails its exchange with HeadersOverflowError, as over
   * HTTP/1.1, but only its stream is reset (CANCEL): the session's other streams go on.
   */
  private failIfOverLimits(s: H2Stream, raw: string[], what: string): boolean {
    const why = headerListOverflow(raw, this.limits);
    if (why === null) return false;
    this.failStream(
      s,
      new HeadersOverflowError(`response ${what} from ${this.origin} ${why}`, { origin: this.origin }),
      false,
      false,
    );
    return true;
  }

  onData(s: H2Stream, chunk: Buffer): void {
    const body = s.body ?? s.reclaimBody();
    if (body === null) {
      // node:http2 emits 'response' on the next tick after the HEADERS frame, but a DATA frame read in
      // the same turn goes to 'data' at once: the first chunks can come before the head. Kept for it.
      if (!s.headDelivered && !s.settled) {
        s.receivedAny = true; // the server answered: its head is on the way
        if (s.early === null) s.early = [chunk];
        else s.early.push(chunk);
      }
      return; // otherwise abandoned or failed: the stream is being reset
    }
    if (s.ex.bodyTimeout > 0) {
      // The chunk that completes a body of known length needs no clock reading: END_STREAM comes with
      // it or right behind it (a server that then stalls is timed from the chunk before).
      let left = s.bodyLeft;
      if (left >= 0) {
        left -= chunk.length;
        s.bodyLeft = left;
      }
      if (left !== 0) s.lastActivity = this.clock.monotonicMs();
    }
    if (!body.pushChunk(chunk) && !s.paused) {
      s.paused = true;
      s.stream.pause(); // node:http2 stops granting flow-control window for it: the server waits
      s.holdWeakly();
    }
  }

  onEnd(s: H2Stream): void {
    if (s.settled) {
      s.recvDone = true;
      this.maybeRelease(s);
      return;
    }
    const code = s.stream.rstCode;
    if ((code !== undefined && code !== NGHTTP2_NO_ERROR) || this.closeError !== undefined) {
      // node:http2 also ends the readable side of a stream it resets or destroys (the socket
      // closed, we destroyed the session): that is not the server's END_STREAM. 'close' follows,
      // and fails the exchange.
      return;
    }
    s.recvDone = true;
    if (!s.headDelivered) {
      this.failStream(
        s,
        new Http2Error(`HTTP/2 stream from ${this.origin} ended without a response`),
        false,
        false,
      );
      return;
    }
    s.settled = true;
    const body = s.reclaimBody();
    s.body = null;
    s.ex.finish();
    this.maybeRelease(s);
    if (body !== null) body.endFromSource(s.trailers);
  }

  onSendDone(s: H2Stream): void {
    s.sendDone = true;
    this.maybeRelease(s);
  }

  onStreamClose(s: H2Stream): void {
    s.closed = true;
    s.wakeWriter();
    // Closed while our body is still being read from its source (node emits 'finish' as it closes a
    // stream, so sendDone does not tell): stop the source, which may be waiting on a quiet input.
    if (s.sendingBody) s.ex.body.cancelStream();
    if (!s.settled) {
      const stream = s.stream;
      if (
        s.headDelivered &&
        stream.rstCode === NGHTTP2_NO_ERROR &&
        stream.readableLength === 0 &&
        !this.closed
      ) {
        // Closed cleanly, but node:http2 destroyed it before emitting 'end' (its session went away
        // right after the last frame): the response was whole.
        this.onEnd(s);
      } else {
        this.failClosedStream(s);
      }
    }
    this.release(s);
  }

  /** A stream closed before its response was whole: decide whether it was refused, lost, or failed. */
  private failClosedStream(s: H2Stream): void {
    const stream = s.stream;
    const code = stream.rstCode ?? NGHTTP2_NO_ERROR;
    const id = stream.id;
    const aboveGoaway = this.settings.aboveGoaway(id);
    const refused = !s.receivedAny && (code === NGHTTP2_REFUSED_STREAM || aboveGoaway);
    // The session died under the stream (not a reset of this one stream by the server).
    const sessionLost = this.closed || this.session.destroyed || this.settings.goaway;
    const origin = s.ex.origin;
    let err: Error;
    if (this.closeError !== undefined) err = this.closeError;
    else if (refused) {
      err = new Http2Error(
        aboveGoaway
          ? `${origin} sent GOAWAY (${errorName(this.settings.goawayCode)}) before processing the request`
          : `${origin} refused the HTTP/2 stream (REFUSED_STREAM)`,
        { origin, cause: s.error },
      );
    } else if (this.settings.goaway) {
      err = this.goawayError();
    } else if (code === NGHTTP2_ENHANCE_YOUR_CALM && !sessionLost && !s.recvDone) {
      // node:http2 resets a stream with ENHANCE_YOUR_CALM when its header block goes over the
      // limits we gave it (maxHeaderListPairs, the list size): see overLimitsResetMessage.
      const what = s.headDelivered ? 'trailer section' : 'head';
      err = new HeadersOverflowError(overLimitsResetMessage(origin, what, this.limits), {
        origin,
        cause: s.error,
      });
    } else if (sessionLost || code === NGHTTP2_NO_ERROR) {
      err = new SocketClosedError(`connection to ${origin} closed`, {
        origin,
        cause: s.error ?? this.sessionError,
      });
    } else {
      err = new Http2Error(`${origin} reset the HTTP/2 stream (${errorName(code)})`, {
        origin,
        cause: s.error,
      });
    }
    if (refused && !aboveGoaway && !this.draining && !this.closed) {
      // Over the server's limit: no new stream here until one of ours ends or new SETTINGS arrive.
      this.settings.onRefused(this.active - 1);
    }
    const retryable = sessionLost && !s.receivedAny && (s.ex.connFromIdle || this.settings.goaway);
    this.failStream(s, err, retryable, refused ? (aboveGoaway ? MAX_GOAWAY_REPLAYS : 1) : 0);
  }

  private goawayError(): Error {
    return new Http2Error(
      `${this.origin} sent GOAWAY (${errorName(this.settings.goawayCode)}); the stream did not complete`,
      {
        origin: this.origin,
        cause: this.sessionError,
      },
    );
  }

  // ---- ending a stream --------------------------------------------------------------------------

  /**
   * Ends the exchange of `s` with `err` and resets the stream if it is still open. Before the head:
   * replayed elsewhere when the server never processed it (`maxReplays` > 0 and the body can be sent
   * again), else handed to the pool (which retries it when `retryable` and safe) or rejected.
   * The slot is released when the stream closes.
   */
  private failStream(s: H2Stream, err: Error, retryable: boolean, maxReplays: number | false): void {
    if (!s.closed && !s.stream.closed && !s.stream.destroyed) s.stream.close(NGHTTP2_CANCEL);
    if (s.settled) return;
    s.settled = true;
    const ex = s.ex;
    const body = s.reclaimBody();
    s.body = null;
    if (s.headDelivered) {
      ex.finish();
      if (body !== null) body.failFromSource(err);
      return;
    }
    if (err instanceof WarmpoolError && err.code === 'WARMPOOL_ABORTED') {
      ex.reject(err);
      return;
    }
    const replayed = replays.get(ex) ?? 0;
    if (maxReplays !== false && replayed < maxReplays && (ex.body.replayable || !s.bodyOpened)) {
      replays.set(ex, replayed + 1);
      // A lone REFUSED_STREAM goes to another session: this one is over its limit. (After GOAWAY this
      // one takes no streams anyway, and any other session will do.)
      if (!this.settings.goaway && !this.closed) ex.needsNewConnection = true;
      this.owner.resend(ex, err, true);
      return;
    }
    this.owner.onExchangeFailed(ex, err, retryable);
  }

  private maybeRelease(s: H2Stream): void {
    if (s.recvDone && s.sendDone) this.release(s);
  }

  /** Gives the stream's slot back: once per stream. */
  private release(s: H2Stream): void {
    if (s.released) return;
    s.released = true;
    const streams = this.streams;
    const i = s.index;
    if (i >= 0) {
      const last = streams.pop()!;
      if (last !== s) {
        streams[i] = last;
        last.index = i;
      }
      s.index = -1;
    }
    this.active--;
    this.slotFreed();
  }

  /** A slot became free (stream done, or an exchange left before its stream opened). */
  private slotFreed(): void {
    if (this.closed) return;
    if (this.session.destroyed) {
      // Its streams are closing before the session's own 'close': take no more.
      this.terminate(this.draining ? this.drainReason : 'server-close', undefined);
      return;
    }
    if (this.active === 0) {
      if (this.draining) {
        this.terminate(this.drainReason, undefined);
        return;
      }
      this.markIdle();
    }
    if (!this.draining) this.owner.onConnectionReleased(this);
  }

  private markIdle(): void {
    this.idleSinceMono = this.clock.monotonicMs();
    this.idleSinceWall = this.clock.wallMs();
  }

  // ---- body source ----------------------------------------------------------------------------

  resumeStream(s: H2Stream): void {
    if (!s.paused) return;
    s.paused = false;
    if (s.settled || s.closed) return;
    if (s.reclaimBody() === null) return; // collected: onBodyCollected resets the stream
    const ex = s.ex;
    if (ex.bodyTimeout > 0) {
      s.lastActivity = this.clock.monotonicMs();
      this.deadlines.arm(s.lastActivity + ex.bodyTimeout);
    }
    s.stream.resume();
  }

  /** The consumer gave up on the body: reset the stream (the session stays usable). */
  abandonStream(s: H2Stream, body: ResponseBody, err: Error): void {
    if (s.reclaimBody() !== body) return;
    s.body = null;
    this.failStream(s, err, false, false);
  }

  /** The consumer dropped a paused body without reading or destroying it. */
  onBodyCollected(s: H2Stream): void {
    s.weakBody = null;
    if (s.settled) return;
    warnBodyAbandoned('HTTP/2 stream');
    this.failStream(s, new SocketClosedError('response body was garbage-collected unread'), false, false);
  }

  abortExchange(ex: Exchange, err: Error): void {
    for (const s of this.streams) {
      if (s.ex === ex) {
        this.failStream(s, err, false, false);
        return;
      }
    }
    if (this.liveness.drop(ex)) {
      this.active--;
      ex.reject(err);
      this.slotFreed();
      return;
    }
    ex.reject(err);
  }

  // ---- liveness -------------------------------------------------------------------------------

  onPingAnswered(held: Exchange[]): void {
    const now = this.clock.monotonicMs();
    for (const ex of held) this.startStream(ex, now);
  }

  onPingFailed(err: Error): void {
    if (this.closed) return;
    this.terminate(
      'stale',
      new SocketClosedError(`HTTP/2 session to ${this.origin} failed its liveness check: ${err.message}`, {
        origin: this.origin,
        cause: err,
      }),
    );
  }

  /** Exchanges that waited on a PING were never sent: the pool sends them elsewhere. */
  private resendHeld(err: Error): void {
    for (const ex of this.liveness.stop()) {
      this.active--;
      this.owner.resend(ex, err, false);
    }
  }

  // ---- timers ---------------------------------------------------------------------------------

  /** The earliest stream deadline passed: fail the streams past theirs, and re-arm for the next. */
  private onDeadline(): void {
    if (this.closed) return;
    const now = this.clock.monotonicMs();
    let next = Number.POSITIVE_INFINITY;
    let expired: H2Stream[] | null = null;
    for (const s of this.streams) {
      if (s.settled) continue;
      const ex = s.ex;
      let deadline: number;
      if (!s.headDelivered) {
        if (ex.headersTimeout <= 0) continue;
        deadline = s.sentAt + ex.headersTimeout;
      } else {
        if (ex.bodyTimeout <= 0 || s.paused) continue; // a paused body waits on its reader
        deadline = s.lastActivity + ex.bodyTimeout;
      }
      if (deadline <= now + 1) {
        if (expired === null) expired = [];
        expired.push(s);
      } else if (deadline < next) {
        next = deadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.deadlines.arm(next);
    if (expired === null) return;
    for (const s of expired) {
      const ex = s.ex;
      const err = s.headDelivered
        ? new BodyTimeoutError(`response body from ${ex.origin} stalled for ${ex.bodyTimeout} ms`, {
            origin: ex.origin,
          })
        : new HeadersTimeoutError(`no response head from ${ex.origin} within ${ex.headersTimeout} ms`, {
            origin: ex.origin,
          });
      this.failStream(s, err, false, false);
    }
    // A stream timed out: the whole session may be dead. Check, so the others do not wait as long.
    if (!this.closed && !this.liveness.pinging && !this.draining) this.liveness.send(this.session);
  }

  /**
   * The pool calls this each time the session goes idle, which at one stream at a time is after
   * every request. As on HTTP/1.1, a timer already pending is left alone: when it fires, the pool
   * re-reads the idle age and re-arms for the remainder, so back-to-back reuse costs no timer work.
   */
  armIdleTimer(ms: number): void {
    if (ms > 0) this.idleTimer.armUnlessPending(ms);
  }

  private onIdleTimer(): void {
    if (!this.closed && this.active === 0) this.owner.onIdleTimer(this);
  }

  // ---- closing --------------------------------------------------------------------------------

  /** See ProcessRef: ref() at once, unref() at the end of the loop turn. */
  setKeepsProcessAlive(on: boolean): void {
    this.processRef.set(on);
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    if (this.active === 0) {
      this.terminate(reason, undefined);
      return;
    }
    // Streams in flight finish; no new ones start here.
    if (this.liveness.holding > 0) {
      this.resendHeld(new SocketClosedError(`connection to ${this.origin} closed`, { origin: this.origin }));
      if (this.active === 0) {
        this.terminate(reason, undefined);
        return;
      }
    }
    this.draining = true;
    this.drainReason = reason;
  }

  destroy(reason: CloseReason, err: Error): void {
    this.terminate(reason, err);
  }

  /**
   * The session is gone or must go now. Open streams fail with `err` (or what the session died of)
   * as their 'close' events arrive; exchanges waiting on a PING were never sent and go elsewhere.
   */
  private terminate(reason: CloseReason, err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.deadlines.clear();
    if (this.settingsTimer !== undefined) clearTimeout(this.settingsTimer);
    this.settingsTimer = undefined;
    this.idleTimer.clear();
    const held = this.liveness.stop();
    if (!this.session.destroyed) {
      // With streams open and an error to give them, destroy with it: node:http2 then errors the
      // streams instead of ending them as if complete.
      if (err !== undefined && this.streams.length > 0) this.session.destroy(err, NGHTTP2_NO_ERROR);
      else this.session.destroy();
    }
    if (!this.settings.ready) {
      // Never offered to the pool: a failed dial.
      const cause = err ?? this.sessionError;
      this.rejectReady(
        cause instanceof WarmpoolError
          ? cause
          : new Http2Error(`HTTP/2 session to ${this.origin} ended before the server's SETTINGS`, {
              origin: this.origin,
              cause,
            }),
      );
      return;
    }
    this.owner.onConnectionClosed(this, reason);
    const resendErr =
      err ?? new SocketClosedError(`connection to ${this.origin} closed`, { origin: this.origin });
    for (const ex of held) {
      this.active--;
      this.owner.resend(ex, resendErr, false);
    }
  }
}
