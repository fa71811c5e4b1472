/**
 * One HTTP/2 connection: a node:http2 ClientHttp2Session over a socket the pool dialed. A lease is
 * one stream slot; `capacity` is the server's SETTINGS_MAX_CONCURRENT_STREAMS (0 once the session
 * stops taking streams). This module is the pool's face (PoolConnection) and the session's wiring:
 * its events, its slots, its end. The rest is one job per module: a stream (stream.ts, its states
 * in stream-state.ts, its events routed by stream-events.ts), what a failed stream's exchange
 * becomes (outcome.ts), SETTINGS and GOAWAY (session.ts), the liveness PING (liveness.ts), the
 * timers (timers.ts), the header limits (header-limits.ts).
 *
 * Every way a stream can end goes through H2Stream: `onEnd` (the response arrived whole) or `fail`
 * and `failClosed` (anything else, settled as `streamOutcome` decides; an exchange that failed
 * before its head comes back here, `handBack`, for the pool). The slot is released exactly once, in
 * `release`, when both directions are done or the stream has closed ('close' always comes).
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
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Clock } from '../clock.js';
import { ConnectTimeoutError, Http2Error, SocketClosedError, WarmpoolError } from '../errors.js';
import type { CloseReason, ConnectionOwner, PoolConnection } from '../exchange/connection.js';
import { EX_LIVENESS, EX_SENT, type Exchange, type ExchangeAbortTarget } from '../exchange/exchange.js';
import { BODY_KIND_BYTES, BODY_KIND_NONE } from '../request/body.js';
import { ReusableTimer } from '../reusable-timer.js';
import type { H2HeaderLimits } from './header-limits.js';
import { requestHeaders } from './headers.js';
import { type LivenessOwner, LivenessPing, needsLivenessCheck } from './liveness.js';
import { type StreamOutcome, goawayError } from './outcome.js';
import { SessionSettings, openSession } from './session.js';
import { H2Stream } from './stream.js';
import { DeadlineTimer, ProcessRef } from './timers.js';

const { NGHTTP2_NO_ERROR } = http2.constants;

/** session.request() options; node:http2 copies them, so one object each serves every request. */
const END_STREAM = Object.freeze({ endStream: true });
const OPEN_STREAM = Object.freeze({ endStream: false });

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
  inFreeStack = false;
  readonly ready: Promise<void>;

  private readonly session: ClientHttp2Session;
  private readonly scheme: 'https' | 'http';
  /** What the server's SETTINGS and GOAWAY said (H2Stream reads GOAWAY's). */
  readonly settings = new SessionSettings();
  /** No new streams: GOAWAY arrived, or close() was asked while streams were open. */
  private draining = false;
  private drainReason: CloseReason = 'server-close';
  /** What the session reported ('error'), for H2Stream. */
  sessionError: Error | undefined = undefined;
  /** The error open streams fail with when we ended the session ourselves (for H2Stream too). */
  closeError: Error | undefined = undefined;
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
    readonly clock: Clock,
    readonly origin: string,
    settingsTimeout: number,
    readonly limits: H2HeaderLimits,
  ) {
    this.createdMono = this.idleSinceMono = clock.monotonicMs();
    this.createdWall = this.idleSinceWall = clock.wallMs();
    this.scheme = socket instanceof TLSSocket ? 'https' : 'http';
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
    session.on('remoteSettings', this.onRemoteSettings.bind(this));
    session.once('localSettings', this.onLocalSettings.bind(this));
    session.on('goaway', this.onGoaway.bind(this));
    session.on('error', this.onSessionError.bind(this));
    session.on('close', this.onSessionClose.bind(this));
    if (settingsTimeout > 0) {
      this.settingsTimer = setTimeout(() => {
        this.terminate(
          'error',
          new ConnectTimeoutError(
            `no HTTP/2 SETTINGS (or ACK of ours) from ${origin} within ${settingsTimeout} ms`,
            { origin },
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
    if (this.liveness.holding > 0)
      this.resendHeld(goawayError(this.origin, this.settings.goawayCode, this.sessionError));
    if (this.active === 0) {
      this.terminate('server-close', undefined);
      return;
    }
    // node:http2 closes the session itself (gracefully for NO_ERROR, at once otherwise); streams
    // end through H2Stream.onClose. The pool may need another session for its waiters.
    if (!wasDraining) this.owner.onConnectionReleased(this);
  }

  private onSessionError(err: Error): void {
    if (this.sessionError === undefined) this.sessionError = err;
  }

  private onSessionClose(): void {
    this.terminate(this.draining ? this.drainReason : 'server-close', undefined);
  }

  // ---- what the pool asks ---------------------------------------------------------------------

  /** A session checks its own liveness: a PING before reuse when at risk (see dispatch). */
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
    s.index = this.streams.length;
    this.streams.push(s);
    s.start(endStream);
    if (ex.headersTimeout > 0) this.deadlines.arm(now + ex.headersTimeout);
  }

  /** For H2Stream: a stream's next deadline (monotonic ms). */
  armStreamTimer(at: number): void {
    this.deadlines.arm(at);
  }

  // ---- ending a stream --------------------------------------------------------------------------

  /** For H2Stream: its session died under it (not a reset of this one stream by the server). */
  get sessionLost(): boolean {
    return this.closed || this.session.destroyed || this.settings.goaway;
  }

  /** For H2Stream: the server refused a stream (REFUSED_STREAM) without going away. */
  onRefused(): void {
    // Over the server's limit: no new stream here until one of ours ends or new SETTINGS arrive.
    if (!this.draining && !this.closed) this.settings.onRefused(this.active - 1);
  }

  /**
   * For H2Stream: its exchange failed before its head and goes back to the pool, as `outcome` says
   * ('replay-elsewhere', 'retry-if-safe' or 'fail'; see outcome.ts).
   */
  handBack(ex: Exchange, err: Error, outcome: StreamOutcome): void {
    if (outcome === 'replay-elsewhere') {
      // A lone REFUSED_STREAM goes to another session: this one is over its limit. (After GOAWAY this
      // one takes no streams anyway, and any other session will do.)
      if (!this.settings.goaway && !this.closed) ex.needsNewConnection = true;
      this.owner.resend(ex, err, true);
      return;
    }
    this.owner.onExchangeFailed(ex, err, outcome === 'retry-if-safe');
  }

  /** Gives the stream's slot back: once per stream. */
  release(s: H2Stream): void {
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

  abortExchange(ex: Exchange, err: Error): void {
    for (const s of this.streams) {
      if (s.ex === ex) {
        s.fail(err);
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
      let deadline = s.deadline();
      if (deadline < 0) continue;
      // An Expect: 100-continue wait that ran out is not a timeout: the body goes, the stream waits on.
      if (deadline <= now + 1 && s.continueDue(now)) deadline = s.deadline();
      if (deadline < 0) continue;
      if (deadline <= now + 1) {
        if (expired === null) expired = [];
        expired.push(s);
      } else if (deadline < next) {
        next = deadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.deadlines.arm(next);
    if (expired === null) return;
    for (const s of expired) s.fail(s.timeoutError());
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
