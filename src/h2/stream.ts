/**
 * One exchange on one HTTP/2 stream: what it has received and sent, the response body it feeds
 * (backpressure and cancellation come back here), how it fails (the facts, given to streamOutcome),
 * and node's stream events, routed by shared functions (no closure per request). The connection
 * owns the slot (`release`) and hands failed exchanges back to the pool (`handBack`). Its states
 * are in stream-state.ts.
 */
import { STATUS_CODES } from 'node:http';
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import {
  BodyTimeoutError,
  HeadersOverflowError,
  HeadersTimeoutError,
  Http2Error,
  RequestBodyError,
  SocketClosedError,
} from '../errors.js';
import type { Exchange } from '../exchange/exchange.js';
import { markUnanswered } from '../exchange/unanswered.js';
import type { IncomingHeaders } from '../headers.js';
import { BODY_KIND_BYTES } from '../request/body.js';
import {
  type AbandonedBodyWatcher,
  forgetBody,
  warnBodyAbandoned,
  watchBody,
} from '../response/abandoned-body.js';
import type { BodySource, ResponseBody } from '../response/body.js';
import type { H2Connection } from './connection.js';
import { headerListOverflow } from './header-limits.js';
import { incomingHeaders } from './headers.js';
import {
  type StreamEnd,
  type StreamOutcome,
  closedReason,
  closedStreamError,
  isAbort,
  streamOutcome,
} from './outcome.js';
import { routeEvents, routeSendEvents } from './stream-events.js';
import {
  RECV_ANSWERED,
  RECV_AWAITING,
  RECV_ENDED,
  RECV_HEAD,
  RECV_SETTLED,
  type Received,
  type RecvState,
  SOURCE_NONE,
  SOURCE_READ,
  SOURCE_READING,
  type SourceState,
} from './stream-state.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

/** How many times each exchange was replayed on another session. */
const replays = new WeakMap<Exchange, number>();

/** One exchange on one stream; the body's source (backpressure and cancellation go to the stream). */
export class H2Stream implements BodySource, AbandonedBodyWatcher {
  /** The response body; null while paused (then held by `weakBody`), or once ended or failed. */
  body: ResponseBody | null = null;
  weakBody: WeakRef<ResponseBody> | null = null;
  /** The exchange's side (see stream-state.ts). */
  recv: RecvState = RECV_AWAITING;
  /** A stream request body's source (see stream-state.ts). */
  source: SourceState = SOURCE_NONE;
  /** Our END_STREAM was sent. */
  sendEnded = false;
  /** The body's reader stopped reading: the node stream is paused and the body held weakly. */
  paused = false;
  /** The slot was given back (once per stream). */
  released = false;
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
  /**
   * Expect: 100-continue: when the held-back body goes anyway (monotonic ms; +Infinity: only on an
   * answer); -1 when the body is not waiting.
   */
  continueAt = -1;
  /** A final response came before the body: it is never sent, and our side ends with a reset. */
  bodyWithheld = false;

  constructor(
    readonly conn: H2Connection,
    readonly ex: Exchange,
    readonly stream: ClientHttp2Stream,
    readonly sentAt: number,
  ) {
    this.lastActivity = sentAt;
  }

  /**
   * Listens to the node stream and sends the request body (the headers are sent; `endStream`: they
   * carried END_STREAM).
   */
  start(endStream: boolean): void {
    const stream = this.stream;
    routeEvents(stream, this);
    if (endStream) {
      // END_STREAM rides on the HEADERS frame: once any response arrives, it has been sent. ('finish'
      // would only say so later, at the cost of one more listener per request.)
      this.sendEnded = true;
      return;
    }
    const ex = this.ex;
    routeSendEvents(stream, ex.body.kind !== BODY_KIND_BYTES);
    if (ex.expectContinue) {
      // RFC 9110 §10.1.1, as over HTTP/1.1: the body waits for 100 Continue, a final response, or
      // continueTimeout (checked with the stream's other deadlines, see continueDue).
      const wait = ex.continueTimeout;
      this.continueAt = wait > 0 ? this.sentAt + wait : Number.POSITIVE_INFINITY;
      if (wait > 0) this.conn.armStreamTimer(this.continueAt);
      return;
    }
    this.sendRequestBody();
  }

  private sendRequestBody(): void {
    const body = this.ex.body;
    if (body.kind === BODY_KIND_BYTES) this.stream.end(body.bytes);
    else void this.sendBody();
  }

  /** The server said 100 Continue, or the wait ran out: the held-back body goes. */
  private sendWithheldBody(): void {
    this.continueAt = -1;
    const stream = this.stream;
    if (!stream.closed && !stream.destroyed) this.sendRequestBody();
  }

  /** For the connection's deadline sweep: the body's wait for 100 Continue is over at `now`; sent. */
  continueDue(now: number): boolean {
    if (this.continueAt === -1 || this.continueAt > now + 1 || this.recv >= RECV_HEAD) return false;
    this.sendWithheldBody();
    return true;
  }

  /** Streams a request body with backpressure, while the response may already be streaming back. */
  private async sendBody(): Promise<void> {
    const stream = this.stream;
    try {
      this.source = SOURCE_READING;
      for await (const chunk of this.ex.body.openStream()) {
        if (stream.closed || stream.destroyed) return; // leaving the loop ends (destroys) the source
        if (chunk.length === 0) continue;
        if (!stream.write(chunk)) await this.waitDrain();
      }
      if (!stream.closed && !stream.destroyed) stream.end();
    } catch (err) {
      if (!stream.closed && !stream.destroyed) {
        this.fail(
          new RequestBodyError(`request body stream failed: ${(err as Error).message}`, {
            origin: this.ex.origin,
            cause: err,
          }),
        );
      }
    } finally {
      this.source = SOURCE_READ;
    }
  }

  private waitDrain(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.drainWaiter = resolve;
    });
  }

  wakeWriter(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    if (w !== null) w();
  }

  // ---- receiving ------------------------------------------------------------------------------

  onInformation(headers: IncomingHttpHeaders, raw: string[]): void {
    if (this.recv === RECV_AWAITING) this.recv = RECV_ANSWERED;
    if (this.failIfOverLimits(raw, 'interim head')) return;
    const status = Number(headers[':status']);
    const ex = this.ex;
    if (status === 100 && this.continueAt !== -1 && this.recv < RECV_HEAD) this.sendWithheldBody();
    if (status >= 100 && status < 200 && ex.onInformation !== undefined && this.recv < RECV_SETTLED) {
      ex.onInformation({ status, statusText: STATUS_CODES[status] ?? '', headers: incomingHeaders(raw) });
    }
  }

  onResponse(headers: IncomingHttpHeaders, raw: string[]): void {
    if (this.recv === RECV_AWAITING) this.recv = RECV_ANSWERED;
    if (this.recv >= RECV_SETTLED || this.failIfOverLimits(raw, 'head')) return;
    const status = Number(headers[':status']);
    const conn = this.conn;
    const now = conn.clock.monotonicMs();
    const ex = this.ex;
    this.recv = RECV_HEAD;
    this.lastActivity = now;
    if (this.continueAt !== -1) {
      this.continueAt = -1;
      this.bodyWithheld = true;
    }
    // A content-length lets the body be gathered into one buffer of that size (no chunk pins the
    // session's read buffer), and spares a clock reading for the chunk that completes it (onData).
    // node:http2 has checked it is a single value; the DATA frames are checked against it too.
    const cl = headers['content-length'];
    const length = cl === undefined || ex.isHead || status === 204 || status === 304 ? -1 : Number(cl);
    if (length >= 0) this.bodyLeft = length;
    this.body = ex.deliverHead(
      this,
      status,
      STATUS_CODES[status] ?? '',
      '2',
      raw, // converted on the first read of res.headers
      incomingHeaders,
      'h2',
      conn.id,
      now,
      length,
    );
    if (ex.bodyTimeout > 0) conn.armStreamTimer(now + ex.bodyTimeout);
    const early = this.early;
    if (early !== null) {
      this.early = null;
      for (let i = 0; i < early.length; i++) this.onData(early[i]!);
    }
  }

  onTrailers(raw: string[]): void {
    if (this.recv >= RECV_SETTLED || this.failIfOverLimits(raw, 'trailer section')) return;
    this.trailers = incomingHeaders(raw);
  }

  /**
   * A header list over the Agent's limits fails its exchange with HeadersOverflowError, as over
   * HTTP/1.1, but only its stream is reset (CANCEL): the session's other streams go on.
   */
  private failIfOverLimits(raw: string[], what: string): boolean {
    const conn = this.conn;
    const why = headerListOverflow(raw, conn.limits);
    if (why === null) return false;
    const origin = conn.origin;
    this.fail(new HeadersOverflowError(`response ${what} from ${origin} ${why}`, { origin }));
    return true;
  }

  onData(chunk: Buffer): void {
    const body = this.body ?? this.reclaimBody();
    if (body === null) {
      // node:http2 emits 'response' on the next tick after the HEADERS frame, but a DATA frame read in
      // the same turn goes to 'data' at once: the first chunks can come before the head. Kept for it.
      if (this.recv < RECV_HEAD) {
        this.recv = RECV_ANSWERED; // the server answered: its head is on the way
        if (this.early === null) this.early = [chunk];
        else this.early.push(chunk);
      }
      return; // otherwise abandoned or failed: the stream is being reset
    }
    if (this.ex.bodyTimeout > 0) {
      // The chunk that completes a body of known length needs no clock reading: END_STREAM comes with
      // it or right behind it (a server that then stalls is timed from the chunk before).
      let left = this.bodyLeft;
      if (left >= 0) {
        left -= chunk.length;
        this.bodyLeft = left;
      }
      if (left !== 0) this.lastActivity = this.conn.clock.monotonicMs();
    }
    if (!body.pushChunk(chunk) && !this.paused) {
      this.paused = true;
      this.stream.pause(); // node:http2 stops granting flow-control window for it: the server waits
      this.holdWeakly();
    }
  }

  onEnd(): void {
    if (this.recv >= RECV_SETTLED) {
      this.recv = RECV_ENDED;
      this.maybeRelease();
      return;
    }
    const code = this.stream.rstCode;
    if ((code !== undefined && code !== NGHTTP2_NO_ERROR) || this.conn.closeError !== undefined) {
      // node:http2 also ends the readable side of a stream it resets or destroys (the socket
      // closed, we destroyed the session): that is not the server's END_STREAM. 'close' follows,
      // and fails the exchange.
      return;
    }
    if (this.recv !== RECV_HEAD) {
      this.fail(new Http2Error(`HTTP/2 stream from ${this.conn.origin} ended without a response`));
      this.recv = RECV_ENDED;
      return;
    }
    this.recv = RECV_ENDED;
    const body = this.reclaimBody();
    this.body = null;
    this.ex.complete(this.trailers);
    if (this.bodyWithheld && !this.sendEnded) {
      // The response is whole and our body was never sent: end our side with RST_STREAM(NO_ERROR)
      // (END_STREAM now would break a content-length we announced). 'close' releases the slot.
      this.stream.close(NGHTTP2_NO_ERROR);
    }
    this.maybeRelease();
    if (body !== null) body.endFromSource(this.trailers);
  }

  onSendDone(): void {
    this.sendEnded = true;
    this.maybeRelease();
  }

  private maybeRelease(): void {
    if (this.recv === RECV_ENDED && this.sendEnded) this.conn.release(this);
  }

  /** 'close': always the last event, whoever ended the stream. The exchange is settled by its end. */
  onClose(): void {
    this.wakeWriter();
    // Closed while our body is still being read from its source (node emits 'finish' as it closes a
    // stream, so sendEnded does not tell): stop the source, which may be waiting on a quiet input.
    if (this.source === SOURCE_READING) this.ex.body.cancelStream();
    if (this.recv < RECV_SETTLED) {
      const stream = this.stream;
      if (
        this.recv === RECV_HEAD &&
        stream.rstCode === NGHTTP2_NO_ERROR &&
        stream.readableLength === 0 &&
        !this.conn.closed
      ) {
        // Closed cleanly, but node:http2 destroyed it before emitting 'end' (its session went away
        // right after the last frame): the response was whole.
        this.onEnd();
      } else {
        this.failClosed();
      }
    }
    this.conn.release(this);
  }

  // ---- failing --------------------------------------------------------------------------------

  /**
   * We end the stream with `err` (a timeout, a header limit, the caller, the request body) and reset
   * it if it is still open. The slot is released when it closes.
   */
  fail(err: Error): void {
    const stream = this.stream;
    if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
    if (this.recv >= RECV_SETTLED) return;
    const end = this.endFacts('us');
    end.aborted = isAbort(err);
    this.settle(err, streamOutcome(end));
  }

  /** It closed under us before the response was whole: refused, lost, or failed. */
  private failClosed(): void {
    const end = this.endFacts('closed');
    const reason = closedReason(end);
    const conn = this.conn;
    const err =
      conn.closeError ??
      closedStreamError(reason, {
        origin: this.ex.origin,
        rstCode: end.rstCode,
        goawayCode: conn.settings.goawayCode,
        headDelivered: this.recv === RECV_HEAD,
        limits: conn.limits,
        streamError: this.error,
        sessionError: conn.sessionError,
      });
    end.aborted = isAbort(err);
    if (reason === 'refused') conn.onRefused();
    // Closed or reset under us before any response byte: a retry policy may send it again.
    if (end.received === RECV_AWAITING && reason !== 'headers-overflow' && !end.aborted) markUnanswered(err);
    this.settle(err, streamOutcome(end));
  }

  /** What happened, for streamOutcome (the stream is not settled yet). */
  private endFacts(by: 'us' | 'closed'): StreamEnd {
    const stream = this.stream;
    const conn = this.conn;
    const ex = this.ex;
    return {
      by,
      received: this.recv as Received,
      aborted: false,
      rstCode: stream.rstCode ?? NGHTTP2_NO_ERROR,
      goaway: conn.settings.goaway,
      aboveGoaway: conn.settings.aboveGoaway(stream.id),
      sessionLost: conn.sessionLost,
      fromIdle: ex.connFromIdle,
      bodyOpened: this.source !== SOURCE_NONE,
      bodyReplayable: ex.body.replayable,
      replays: replays.get(ex) ?? 0,
    };
  }

  /** Settles the exchange, which failed, as `outcome` says. */
  private settle(err: Error, outcome: StreamOutcome): void {
    this.recv = RECV_SETTLED;
    const ex = this.ex;
    const body = this.reclaimBody();
    this.body = null;
    if (outcome === 'fail-body') {
      ex.failBody(err);
      if (body !== null) body.failFromSource(err);
    } else if (outcome === 'aborted') {
      ex.reject(err);
    } else {
      if (outcome === 'replay-elsewhere') replays.set(ex, (replays.get(ex) ?? 0) + 1);
      this.conn.handBack(ex, err, outcome);
    }
  }

  /**
   * When it times out (monotonic ms): its head by headersTimeout from when it was sent, its body by
   * bodyTimeout from the last chunk; -1 when it cannot (settled, no timeout, a paused body, which
   * waits on its reader).
   */
  deadline(): number {
    const ex = this.ex;
    const recv = this.recv;
    if (recv >= RECV_SETTLED) return -1;
    if (recv !== RECV_HEAD) {
      const head = ex.headersTimeout > 0 ? this.sentAt + ex.headersTimeout : -1;
      const wait = this.continueAt;
      if (wait === -1 || wait === Number.POSITIVE_INFINITY) return head;
      return head === -1 || wait < head ? wait : head;
    }
    return ex.bodyTimeout > 0 && !this.paused ? this.lastActivity + ex.bodyTimeout : -1;
  }

  /** What its deadline passing means. */
  timeoutError(): Error {
    const ex = this.ex;
    return this.recv === RECV_HEAD
      ? new BodyTimeoutError(`response body from ${ex.origin} stalled for ${ex.bodyTimeout} ms`, {
          origin: ex.origin,
        })
      : new HeadersTimeoutError(`no response head from ${ex.origin} within ${ex.headersTimeout} ms`, {
          origin: ex.origin,
        });
  }

  // ---- body source ----------------------------------------------------------------------------

  resumeBody(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.recv >= RECV_SETTLED) return;
    if (this.reclaimBody() === null) return; // collected: onBodyCollected resets the stream
    const ex = this.ex;
    if (ex.bodyTimeout > 0) {
      this.lastActivity = this.conn.clock.monotonicMs();
      this.conn.armStreamTimer(this.lastActivity + ex.bodyTimeout);
    }
    this.stream.resume();
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
  private holdWeakly(): void {
    const body = this.body;
    if (body === null) return;
    this.weakBody = new WeakRef(body);
    watchBody(body, this);
    this.body = null;
  }

  /** The consumer dropped a paused body without reading or destroying it: the stream is reset. */
  onBodyCollected(): void {
    this.weakBody = null;
    if (this.recv >= RECV_SETTLED) return;
    warnBodyAbandoned('HTTP/2 stream');
    this.fail(new SocketClosedError('response body was garbage-collected unread'));
  }

  /** The consumer gave up on the body: reset the stream (the session stays usable). */
  abandonBody(body: ResponseBody, err: Error): void {
    if (this.reclaimBody() !== body) return;
    this.body = null;
    this.fail(err);
  }
}
