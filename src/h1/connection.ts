import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import { HAND_OVER_MIN, type ReadRoute, type ReadSink } from '../dial/read-route.js';
import { BodyTimeoutError, HeadersTimeoutError, SocketClosedError, WarmpoolError } from '../errors.js';
import type { CloseReason, ConnectionOwner, PoolConnection } from '../exchange/connection.js';
import { EX_SENT, type Exchange, type ExchangeAbortTarget } from '../exchange/exchange.js';
import { markUnanswered } from '../exchange/unanswered.js';
import type { IncomingHeaders } from '../headers.js';
import { forgetBody, warnBodyAbandoned, watchBody } from '../response/abandoned-body.js';
import type { BodySource, ResponseBody } from '../response/body.js';
import { ReusableTimer } from '../reusable-timer.js';
import {
  type ParserLimits,
  type ResponseHead,
  ResponseParser,
  type ResponseParserHandler,
} from './parser.js';
import { CHUNKED_TERMINATOR } from './request-head.js';
import {
  type StreamBodyHost,
  writeHeadOnly,
  writeRequest,
  writeStreamBody,
  writeWithheldBody,
} from './request-writer.js';

/** Connections idle at least this long get a turn of the event loop before reuse (wantsLivenessTurn). */
const LIVENESS_TURN_AFTER_MS = 250;

const TIMER_NONE = 0;
const TIMER_HEADERS = 1;
const TIMER_BODY = 2;
/** Expect: 100-continue: the body goes when it fires, unless 100 or a final response came first. */
const TIMER_CONTINUE = 3;

/**
 * The parser knows nothing of origins, but every WarmpoolError names one (ParseError,
 * HeadersOverflowError, UnsupportedError, SocketClosedError from a cut-short body): add it here.
 */
function withOrigin(err: unknown, ex: Exchange | null): Error {
  if (err instanceof WarmpoolError && err.origin === undefined && ex !== null) {
    (err as { origin: string | undefined }).origin = ex.origin;
  }
  return err as Error;
}

/**
 * One HTTP/1.1 connection: one exchange at a time. It is the parser's handler and its body's source,
 * so no closures are made per request. Every way an exchange can end goes through `completeExchange`
 * (the response was framed and read whole) or `fail` (anything else): the lease is released exactly
 * once, in one of those two places.
 */
export class H1Connection
  implements PoolConnection, ResponseParserHandler, BodySource, ExchangeAbortTarget, ReadSink, StreamBodyHost
{
  readonly protocol = 'http/1.1' as const;
  readonly multiplexed = false;
  readonly capacity = 1;
  active = 0;
  closed = false;
  requestCount = 0;
  readonly createdMono: number;
  readonly createdWall: number;
  idleSinceMono: number;
  idleSinceWall: number;
  serverIdleTimeoutMs: number | undefined = undefined;
  serverMaxRequests: number | undefined = undefined;
  inFreeStack = false;

  private readonly parser: ResponseParser;
  private ex: Exchange | null = null;
  private body: ResponseBody | null = null;
  private weakBody: WeakRef<ResponseBody> | null = null;
  private paused = false;
  /** The body's reader is full; pause the socket once the current read is parsed (see onBody). */
  private wantPause = false;
  /** The current exchange may leave the connection reusable. */
  private reusable = true;
  /** Set by onComplete inside parser.execute(); handled once execute() has returned. */
  private completed = false;
  /** This exchange's body goes to a reader that keeps its chunks, and one of its reads was large. */
  private largeKeptRead = false;
  /**
   * The last response on this connection was a large body read as chunks (WarmpoolDispatcher under
   * fetch, a download): the next is likely the same, so the read that brings its head goes into a
   * buffer of its own already (keepsNextRead) and its body is not copied out of the scratch buffer.
   * The price: while idle, such a connection holds one 64 KiB read buffer (one that served small
   * responses holds none).
   */
  private expectKeptReads = false;
  private trailers: IncomingHeaders | undefined = undefined;
  /** A streamed request body is still being written (StreamBodyHost). */
  sendingBody = false;
  /** Expect: 100-continue: the head is sent, the body waits for the server's go-ahead. */
  private awaitingContinue = false;
  /** When the head of an Expect request was written (monotonic ms): headersTimeout counts from it. */
  private continueSince = 0;

  /** Headers/body deadline of the exchange in progress. */
  private readonly timer: ReusableTimer;
  private timerKind = TIMER_NONE;
  private lastBodyActivity = 0;
  /** lastBodyActivity already stands for this socket read (one clock reading per read, at most). */
  private activityNoted = false;
  /** Idle expiry; armed once per idle spell and re-checked when it fires (see armIdleTimer). */
  private readonly idleTimer: ReusableTimer;
  private keepsProcessAlive = true;
  /**
   * The read being parsed lives in a buffer the next read overwrites (ReadRoute's scratch buffer, or
   * its own buffer after a short read): a body chunk is valid only during onBody, so whatever the
   * body keeps is copied.
   */
  private readVolatile = false;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    private readonly owner: ConnectionOwner,
    private readonly clock: Clock,
    limits: ParserLimits | undefined,
    readRoute?: ReadRoute,
  ) {
    this.parser = new ResponseParser(this, limits);
    this.createdMono = this.idleSinceMono = clock.monotonicMs();
    this.createdWall = this.idleSinceWall = clock.wallMs();
    this.onEnd = this.onEnd.bind(this);
    this.onError = this.onError.bind(this);
    this.onClose = this.onClose.bind(this);
    this.onTimer = this.onTimer.bind(this);
    this.onIdleTimerFired = this.onIdleTimerFired.bind(this);
    this.timer = new ReusableTimer(this.onTimer);
    this.idleTimer = new ReusableTimer(this.onIdleTimerFired);
    this.onDrain = this.onDrain.bind(this);
    if (readRoute !== undefined) readRoute.attach(this);
    else socket.on('data', (data: Buffer) => this.onSocketRead(data, false));
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  // ---- what the pool asks ---------------------------------------------------------------------

  /**
   * A FIN or RST that reached the kernel while the process was busy elsewhere (say, in the callback
   * that issues this request) has not been read yet. A turn of the loop lets a dead connection report
   * itself before anything is written on it. Who pays: connections idle long enough to be at risk;
   * and requests that cannot be retried (a POST) on any connection from the idle list, because a
   * server that closes right after a response (its request cap, a reset) sends the FIN just behind
   * the response, and a connection handed straight to the next request from that response's callback
   * would take the POST to its death. A retryable request handed over back-to-back goes at once: if
   * it dies, the retry covers it.
   */
  wantsLivenessTurn(fromIdle: boolean, idleMs: number, retrySafe: boolean): boolean {
    return fromIdle && (idleMs >= LIVENESS_TURN_AFTER_MS || !retrySafe);
  }

  /** Only a connection that never carried a request is new. */
  countsAsNewFor(_ex: Exchange): boolean {
    return this.requestCount === 0;
  }

  // ---- sending --------------------------------------------------------------------------------

  dispatch(ex: Exchange): void {
    if (!ex.moveTo(EX_SENT, this, this)) {
      // Settled before it was written (the caller gave up): the connection was never used for it.
      this.owner.onConnectionReleased(this);
      return;
    }
    this.ex = ex;
    this.active = 1;
    this.requestCount++;
    this.reusable = !ex.connectionClose;
    this.completed = false;
    this.parser.expect(ex.isHead);
    if (!this.keepsProcessAlive) this.setKeepsProcessAlive(true);

    if (ex.expectContinue) {
      this.sendHeadOnly(ex);
      return;
    }
    if (writeRequest(this.socket, ex)) void writeStreamBody(this, ex);
    this.arm(TIMER_HEADERS, ex.headersTimeout);
  }

  /**
   * Expect: 100-continue (RFC 9110 §10.1.1): the head goes now, the body when the server says 100
   * Continue, or when continueTimeout has passed without a word (curl's rule: a server that ignores
   * the expectation would otherwise wait for a body that never comes), or not at all if a final
   * response comes first. headersTimeout counts from the head, the wait included.
   */
  private sendHeadOnly(ex: Exchange): void {
    this.awaitingContinue = true;
    writeHeadOnly(this.socket, ex);
    const wait = ex.continueTimeout;
    if (wait > 0 && (ex.headersTimeout === 0 || wait < ex.headersTimeout)) {
      this.continueSince = this.clock.monotonicMs();
      this.arm(TIMER_CONTINUE, wait);
    } else {
      this.arm(TIMER_HEADERS, ex.headersTimeout);
    }
  }

  /** The server said 100 Continue, or the wait ran out: the body goes. */
  private sendWithheldBody(ex: Exchange): void {
    this.awaitingContinue = false;
    if (writeWithheldBody(this.socket, ex)) void writeStreamBody(this, ex);
  }

  /** StreamBodyHost */
  carries(ex: Exchange): boolean {
    return this.ex === ex && !this.closed;
  }

  /** StreamBodyHost */
  bodyFailed(err: Error): void {
    this.fail(err, 'error', false);
  }

  private drainWaiter: (() => void) | null = null;
  waitDrain(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.drainWaiter = resolve;
      this.socket.once('drain', this.onDrain);
    });
  }
  private onDrain(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    if (w !== null) w();
  }

  // ---- receiving ------------------------------------------------------------------------------

  /** Bytes from the socket: from the ReadRoute, or a 'data' event (TLS: never volatile). */
  onSocketRead(data: Buffer, volatile: boolean): void {
    this.readVolatile = volatile;
    const ex = this.ex;
    if (ex === null) {
      // Bytes nobody asked for: the connection's state is unknown, so it is never reused.
      this.shutdown('not-reusable');
      return;
    }
    if (ex.bodyAsChunks && data.length >= HAND_OVER_MIN) this.largeKeptRead = true;
    let consumed: number;
    this.activityNoted = false;
    try {
      consumed = this.parser.execute(data);
    } catch (err) {
      this.fail(withOrigin(err, this.ex), 'error', false);
      return;
    }
    // The body's consumer can end the exchange from inside execute(): a synchronous destroy() in a
    // 'data' handler, or dump() passing its limit, fails the connection while the parser still runs.
    if (this.closed) return;
    if (this.completed) {
      this.wantPause = false; // nothing more to read for this body: pausing would only cost syscalls
      if (consumed < data.length) this.reusable = false; // bytes after the response
      this.completeExchange();
    } else if (this.wantPause) {
      this.wantPause = false;
      this.paused = true;
      this.socket.pause();
      if (this.body !== null) {
        // The reader is full. Hold the body weakly until it asks for more (see abandoned-body.ts).
        this.weakBody = new WeakRef(this.body);
        watchBody(this.body, this);
        this.body = null;
      }
    }
  }

  /**
   * ReadRoute asks after each read: a body that keeps its chunks gets reads of its own. A paused
   * body (held weakly) is asked too: the read after its resume is the next one. With no body, the
   * read that will bring the next head (and usually the first of its body): one of its own for an
   * exchange whose reader keeps chunks, or after a large response to one (expectKeptReads).
   */
  keepsNextRead(): boolean {
    const body = this.body ?? this.weakBody?.deref();
    if (body !== undefined && body !== null) return body.keepsChunks;
    // Between the head and the body, or before the head: the buffer for the read that brings it.
    const ex = this.ex;
    return ex !== null ? ex.bodyAsChunks : this.expectKeptReads;
  }

  onInformation(head: ResponseHead): void {
    const ex = this.ex!;
    if (this.awaitingContinue && head.statusCode === 100) this.sendWithheldBody(ex);
    if (ex.onInformation !== undefined) {
      ex.onInformation({ status: head.statusCode, statusText: head.statusText, headers: head.headers });
    }
  }

  onHead(head: ResponseHead): void {
    const ex = this.ex!;
    if (this.awaitingContinue) this.withholdBody(ex);
    if (!head.keepAlive) this.reusable = false;
    if (head.keepAliveTimeoutMs !== undefined) this.serverIdleTimeoutMs = head.keepAliveTimeoutMs;
    if (head.keepAliveMax !== undefined) this.serverMaxRequests = this.requestCount + head.keepAliveMax - 1;
    const now = this.clock.monotonicMs();
    this.body = ex.deliverHead(
      this,
      head.statusCode,
      head.statusText,
      head.httpVersion,
      head.headers,
      null,
      'http/1.1',
      this.id,
      now,
      this.parser.bodyLength,
    );
    // No re-arm: the pending headers timer, when it fires, finds TIMER_BODY and measures the silence
    // since lastBodyActivity (one timer per connection, refreshed once per request).
    if (ex.bodyTimeout > 0) {
      this.lastBodyActivity = now;
      this.activityNoted = true;
      if (this.timerKind === TIMER_HEADERS && this.timer.ms <= ex.bodyTimeout) this.timerKind = TIMER_BODY;
      else this.arm(TIMER_BODY, ex.bodyTimeout);
    } else {
      this.timerKind = TIMER_NONE;
    }
  }

  /**
   * A final response before the body: the body is not sent (RFC 9110 §10.1.1). The request must still
   * end for the connection to carry another: a chunked one ends now with its last chunk (an empty
   * body, framed); one with a Content-Length cannot end without its bytes, so its connection closes
   * after this response.
   */
  private withholdBody(ex: Exchange): void {
    this.awaitingContinue = false;
    if (ex.bodyFraming === -2) this.socket.write(CHUNKED_TERMINATOR, 'latin1');
    else this.reusable = false;
  }

  onBody(data: Buffer, start: number, end: number): void {
    if (this.timerKind === TIMER_BODY && !this.activityNoted) {
      this.activityNoted = true;
      this.lastBodyActivity = this.clock.monotonicMs();
    }
    // The pause itself waits until execute() returns (onSocketRead): if this chunk ends the body, there
    // is nothing left to hold back and the pause would be two wasted syscalls.
    const body = this.body;
    if (body !== null && !body.pushRange(data, start, end, this.readVolatile) && !this.paused) {
      this.wantPause = true;
    }
  }

  onComplete(trailers: IncomingHeaders | undefined, reusable: boolean): void {
    this.completed = true;
    this.trailers = trailers;
    if (!reusable) this.reusable = false;
  }

  /** The response was framed and received whole: settle the body and release the lease. */
  private completeExchange(): void {
    const ex = this.ex!;
    this.expectKeptReads = this.largeKeptRead;
    this.largeKeptRead = false;
    const body = this.body;
    this.ex = null;
    this.body = null;
    this.completed = false;
    this.active = 0;
    ex.complete(this.trailers);
    if (this.sendingBody) {
      // The server answered before our body was sent: the connection cannot be reused, and the rest
      // of the body is not wanted.
      this.reusable = false;
      ex.body.cancelStream();
    }
    if (this.reusable) {
      if (this.paused) {
        // The last chunk filled the reader's buffer, but the body is whole: backpressure has nothing
        // left to hold. A socket left paused would be blind while idle (FIN, RST, stray bytes: a
        // stale connection handed out) and would never read the next response.
        this.paused = false;
        this.socket.resume();
      }
      this.idleSinceMono = this.clock.monotonicMs();
      this.idleSinceWall = this.clock.wallMs();
      this.timerKind = TIMER_NONE;
      this.owner.onConnectionReleased(this);
    } else {
      this.shutdown('not-reusable');
    }
    if (body !== null) body.endFromSource(this.trailers);
    this.trailers = undefined;
  }

  // ---- body source ----------------------------------------------------------------------------

  resumeBody(): void {
    this.wantPause = false; // asked for more before the pause took effect
    if (!this.paused || this.closed) return;
    if (this.weakBody !== null) {
      const body = this.weakBody.deref();
      this.weakBody = null;
      if (body === undefined) return;
      forgetBody(this);
      this.body = body;
    }
    this.paused = false;
    if (this.timerKind === TIMER_BODY) this.lastBodyActivity = this.clock.monotonicMs();
    this.socket.resume();
  }

  abandonBody(body: ResponseBody, err: Error): void {
    if (this.body !== body && this.weakBody?.deref() !== body) return;
    this.body = null;
    this.weakBody = null;
    this.fail(err, 'aborted', false);
  }

  /** The consumer dropped a paused body without reading or destroying it. */
  onBodyCollected(): void {
    if (this.closed) return;
    warnBodyAbandoned('connection');
    this.weakBody = null;
    this.fail(new SocketClosedError('response body was garbage-collected unread'), 'aborted', false);
  }

  abortExchange(ex: Exchange, err: Error): void {
    if (this.ex !== ex) {
      ex.reject(err);
      return;
    }
    this.fail(err, 'aborted', false);
  }

  // ---- socket events --------------------------------------------------------------------------

  private onEnd(): void {
    if (this.ex !== null && !this.closed) {
      try {
        this.parser.finish(); // completes a close-delimited body, or throws what was cut short
      } catch (err) {
        this.fail(withOrigin(err, this.ex), 'server-close', true);
        return;
      }
      if (this.completed) {
        this.reusable = false;
        this.completeExchange();
        return;
      }
      const origin = this.ex.origin;
      this.fail(
        new SocketClosedError(`${origin} closed the connection before responding`, { origin }),
        'server-close',
        true,
      );
      return;
    }
    this.shutdown('server-close');
  }

  private onError(err: Error): void {
    if (this.closed) return;
    if (this.ex !== null) {
      const code = (err as NodeJS.ErrnoException).code;
      this.fail(
        new SocketClosedError(`connection to ${this.ex.origin} failed: ${code ?? err.message}`, {
          origin: this.ex.origin,
          cause: err,
        }),
        'server-close',
        true,
      );
      return;
    }
    this.shutdown('server-close');
  }

  private onClose(): void {
    if (this.closed) return;
    if (this.ex !== null) {
      this.fail(
        new SocketClosedError(`connection to ${this.ex.origin} closed`, { origin: this.ex.origin }),
        'server-close',
        true,
      );
      return;
    }
    this.shutdown('server-close');
  }

  // ---- timers ---------------------------------------------------------------------------------

  /**
   * One deadline timer per connection, re-armed with refresh() per request: never a new timer per
   * request while the timeouts stay the same.
   */
  private arm(kind: number, ms: number): void {
    this.timerKind = ms > 0 ? kind : TIMER_NONE;
    if (ms > 0) this.timer.arm(ms); // at 0, a pending timer fires and finds TIMER_NONE
  }

  /**
   * The pool calls this each time the connection goes idle. A timer already pending is left alone:
   * when it fires, the pool re-reads the idle age and re-arms for the remainder, so a connection
   * that is reused back-to-back costs no timer work per request.
   */
  armIdleTimer(ms: number): void {
    if (ms > 0) this.idleTimer.armUnlessPending(ms);
  }

  private onIdleTimerFired(): void {
    if (!this.closed && this.ex === null) this.owner.onIdleTimer(this);
  }

  private onTimer(): void {
    if (this.closed) return;
    const ex = this.ex;
    switch (this.timerKind) {
      case TIMER_HEADERS:
        if (ex !== null) {
          this.fail(
            new HeadersTimeoutError(`no response head from ${ex.origin} within ${ex.headersTimeout} ms`, {
              origin: ex.origin,
            }),
            'error',
            false,
          );
        }
        return;
      case TIMER_CONTINUE: {
        if (ex === null) return;
        if (this.awaitingContinue) this.sendWithheldBody(ex);
        if (ex.headersTimeout === 0) {
          this.timerKind = TIMER_NONE;
          return;
        }
        // What is left of headersTimeout (sendHeadOnly armed this only when the wait was shorter).
        this.arm(
          TIMER_HEADERS,
          Math.max(1, ex.headersTimeout - (this.clock.monotonicMs() - this.continueSince)),
        );
        return;
      }
      case TIMER_BODY: {
        if (ex === null) return;
        if (this.paused) {
          // A paused body waits on its reader, not on the server: keep watching, count no silence.
          this.lastBodyActivity = this.clock.monotonicMs();
          this.arm(TIMER_BODY, ex.bodyTimeout);
          return;
        }
        const silent = this.clock.monotonicMs() - this.lastBodyActivity;
        if (silent + 1 >= ex.bodyTimeout) {
          this.fail(
            new BodyTimeoutError(`response body from ${ex.origin} stalled for ${ex.bodyTimeout} ms`, {
              origin: ex.origin,
            }),
            'error',
            false,
          );
        } else {
          this.arm(TIMER_BODY, ex.bodyTimeout - silent);
        }
        return;
      }
    }
  }

  // ---- closing --------------------------------------------------------------------------------

  setKeepsProcessAlive(on: boolean): void {
    this.keepsProcessAlive = on;
    if (on) this.socket.ref();
    else this.socket.unref();
  }

  close(reason: CloseReason): void {
    if (this.ex === null) this.shutdown(reason);
    else this.reusable = false; // closes when the exchange completes
  }

  destroy(reason: CloseReason, err: Error): void {
    if (this.ex !== null) this.fail(err, reason, false);
    else this.shutdown(reason);
  }

  /** Closes a connection with no exchange in progress. */
  private shutdown(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.teardown();
    this.owner.onConnectionClosed(this, reason);
  }

  /**
   * Ends the current exchange with `err`: before the head the exchange is rejected (or retried by the
   * pool, when `mayRetry` and no response byte has arrived on a connection taken from the idle
   * list); after it, the body stream errors. The connection is destroyed either way.
   */
  private fail(err: Error, reason: CloseReason, mayRetry: boolean): void {
    if (this.closed) return;
    this.closed = true;
    const ex = this.ex;
    const body = this.body ?? this.weakBody?.deref() ?? null;
    // Retryable only on a connection taken from the idle list (reused, or opened earlier and left
    // waiting): one dialed for this request has no stale excuse for failing.
    const unanswered = mayRetry && !this.parser.receivedAny;
    const retryable = unanswered && ex !== null && ex.connFromIdle;
    this.ex = null;
    this.body = null;
    this.weakBody = null;
    this.active = 0;
    this.awaitingContinue = false;
    this.teardown();
    this.owner.onConnectionClosed(this, reason);
    if (ex === null) return;
    if (this.sendingBody) ex.body.cancelStream();
    if (body !== null) {
      ex.failBody(err);
      body.failFromSource(err);
    } else if (!ex.settled) {
      // The pool moves it on: queued again for a retry, or rejected.
      if (err instanceof WarmpoolError && err.code === 'WARMPOOL_ABORTED') ex.reject(err);
      else {
        if (unanswered) markUnanswered(err); // closed or reset with no answer: a retry policy may resend
        this.owner.onExchangeFailed(ex, err, retryable);
      }
    }
  }

  private teardown(): void {
    this.timerKind = TIMER_NONE;
    this.timer.clear();
    this.idleTimer.clear();
    forgetBody(this);
    this.socket.destroy();
    this.onDrain();
  }
}
