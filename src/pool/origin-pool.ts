import {
  connectionClosed,
  connectionOpened,
  publishConnectionClosed,
  publishConnectionOpened,
  publishHeadersSent,
  publishRequestQueued,
  publishRetry,
  requestHeadersSent,
  requestQueued,
  requestRetry,
} from '../diagnostics/channels.js';
import { AgentClosedError, QueueFullError, QueueTimeoutError, WarmpoolError } from '../errors.js';
import type { CloseReason, PoolConnection } from '../exchange/connection.js';
import { EX_LIVENESS, EX_QUEUED, type Exchange, type ExchangeAbortTarget } from '../exchange/exchange.js';
import {
  type Connector,
  DialBackoff,
  type DialDemand,
  type DialTimings,
  type Dialed,
  Dialer,
  type DialerOwner,
  decideDial,
} from './dialer.js';
import { FreeStack } from './free-stack.js';
import {
  type Now,
  ageOf,
  idleFor,
  idleLimit,
  nearServerTimeout,
  retireReason,
  wornOut,
} from './freshness.js';
import { type LivenessTurnOwner, LivenessTurns } from './liveness-turn.js';
import type { ResolvedAgentOptions } from './options.js';
import { OriginCounters, type OriginStats, originStats } from './origin-stats.js';
import { ServerIdleTimeout } from './server-idle-timeout.js';
import { WaitQueue } from './wait-queue.js';

/** What an OriginPool needs from its Agent: the total cap across origins. */
export interface PoolParent {
  readonly closing: boolean;
  /** May one more connection be opened anywhere? May close another origin's idle connection to make room. */
  reserveConnection(requester: OriginPool): boolean;
  /** A connection (or a dial) ended; origins waiting for room may open one now. */
  releaseConnection(): void;
  /** Is the total cap reached while another origin waits for room (so an idle connection should go)? */
  roomWanted(requester: OriginPool): boolean;
  /** The pool has nothing open and nothing waiting. */
  onPoolEmpty(pool: OriginPool): void;
  nextConnectionId(): number;
}

/**
 * Connections that went into the idle list before carrying any request (dialed for a waiter that was
 * served elsewhere, aborted, or timed out). Their first exchange is not on a fresh connection: the
 * server may have closed them while they waited, like any reused one (see Exchange.connFromIdle).
 */
const waitedUnused = new WeakSet<PoolConnection>();

/**
 * The connections of one origin (plus the TLS options that change a connection).
 *
 * - `free` is a stack of connections with a free slot: the most recently used is reused first, so
 *   surplus connections stay idle and age out.
 * - `waiting` is FIFO: waiters are served in the order they came (a safe retry goes to the front).
 * - At most `maxConnectionsPerOrigin` connections are open or being dialed.
 * Every decision about a connection's freshness is made when it is taken, from one reading of the
 * clocks (timers do not fire while a process is frozen): see freshness.ts. The pool never asks which
 * protocol a connection speaks; the connection answers the pool's questions (PoolConnection).
 */
export class OriginPool implements DialerOwner, ExchangeAbortTarget, LivenessTurnOwner {
  readonly conns = new Set<PoolConnection>();
  private readonly free = new FreeStack();
  private readonly waiting = new WaitQueue<Exchange>(() => this.expireWaiters());
  private readonly dialer: Dialer;
  private readonly dialTimings = new WeakMap<PoolConnection, DialTimings>();
  /** Connections held for an exchange's liveness turn (see send()): leased, not idle. */
  private readonly livenessTurns = new LivenessTurns(this);
  /** What the server chose last time (ALPN); until known, a TLS origin that may speak h2 gets one dial. */
  protocol: 'http/1.1' | 'h2' | 'unknown';
  /** Whether its connections carry several exchanges at once; undefined until the protocol is known. */
  private multiplexed: boolean | undefined;
  /** Multiplexed: the stream limit the last session announced; how many waiters one more serves. */
  private streamLimit = 100;
  /** The server's idle timeout as its closes show it (see server-idle-timeout.ts). */
  private readonly serverIdle = new ServerIdleTimeout();
  private readonly counters = new OriginCounters();
  /** What openAsNeeded() hands decideDial(), refilled on each call. */
  private readonly demand: DialDemand;
  /** Waiters here need a connection that only the total cap (maxConnections) keeps from opening. */
  private starved = false;
  /** Dials wait while the server keeps closing connections before they carry anything. */
  private readonly backoff = new DialBackoff(() => this.openAsNeeded());
  removed = false;
  /**
   * The clocks as last read by readClocks(): one reading serves every decision of one dispatch
   * (freshness, age, timings). Reading a clock costs about as much as parsing a header field on some VMs.
   */
  private readonly now: Now = { mono: 0, wall: 0 };

  constructor(
    readonly key: string,
    readonly origin: string,
    /** The protocol the dial will speak if the server has no say (no ALPN), else 'unknown'. */
    expected: 'http/1.1' | 'h2' | 'unknown',
    connect: Connector,
    private readonly options: ResolvedAgentOptions,
    private readonly parent: PoolParent,
  ) {
    this.protocol = expected;
    this.multiplexed = expected === 'unknown' ? undefined : expected === 'h2';
    this.dialer = new Dialer(this, connect, parent);
    this.demand = {
      waiting: 0,
      newConnectionWaiters: 0,
      dialing: 0,
      open: 0,
      max: options.maxConnectionsPerOrigin,
      multiplexed: undefined,
      streamLimit: 0,
      conns: this.conns,
    };
  }

  private readClocks(): void {
    this.now.mono = this.options.clock.monotonicMs();
    this.now.wall = this.options.clock.wallMs();
  }

  // ---- taking a connection --------------------------------------------------------------------

  dispatch(ex: Exchange): void {
    if (this.parent.closing) {
      ex.reject(
        new AgentClosedError(`the agent is closed; request to ${this.origin} not sent`, {
          origin: this.origin,
        }),
      );
      return;
    }
    this.counters.requests++;
    this.readClocks();
    if (ex.queuedAt === 0) {
      ex.queuedAt = this.now.mono;
      if (ex.attempt > 1) this.counters.retried++; // the Client's retry policy sends it again
    }
    if (this.waiting.size === 0) {
      const conn = this.takeFree(ex);
      if (conn !== null) {
        this.send(conn, ex);
        return;
      }
    }
    if (this.waiting.size >= this.options.maxQueued) {
      ex.reject(
        new QueueFullError(
          `${this.waiting.size} requests already wait for a connection to ${this.origin} (maxQueued)`,
          { origin: this.origin },
        ),
      );
      return;
    }
    this.enqueue(ex, false);
    this.openAsNeeded();
  }

  /** The top of the free stack, after discarding what is closed, full, or no longer fresh. */
  private takeFree(ex: Exchange): PoolConnection | null {
    const free = this.free;
    for (let conn = free.top; conn !== undefined; conn = free.top) {
      if (conn.closed || conn.active >= conn.capacity) {
        free.pop();
        continue;
      }
      // A busy connection in the free list is a multiplexed one with a free slot: not idle, but it
      // may have outlived maxConnectionAge or maxRequestsPerConnection under constant load.
      const why =
        conn.active === 0
          ? retireReason(conn, this.now, this.options, this.serverIdle.learnedMs)
          : wornOut(conn, this.now, this.options);
      if (why !== null) {
        free.pop();
        conn.close(why); // a multiplexed one drains: its open exchanges finish, no new ones start
        continue;
      }
      if (!ex.retrySafe && conn.active === 0 && nearServerTimeout(conn, this.now, this.serverIdle.lowestMs)) {
        // A request that cannot be retried would be lost if the server's idle timer fired while it
        // is in flight: not on a connection this close to the timeout the server was seen to have.
        // Those below it on the stack have been idle longer still.
        free.pop();
        conn.close('idle-timeout');
        continue;
      }
      if (ex.needsNewConnection && !conn.countsAsNewFor(ex)) return null;
      if (conn.active + 1 >= conn.capacity) free.pop();
      return conn;
    }
    return null;
  }

  /** Sends on `conn`, recording for the response what the connection was when it was taken. */
  private send(conn: PoolConnection, ex: Exchange): void {
    const fromIdle = conn.requestCount > 0 || waitedUnused.has(conn);
    const idleMs = conn.active === 0 && fromIdle ? idleFor(conn, this.now) : 0;
    ex.connReused = conn.requestCount > 0;
    ex.connFromIdle = fromIdle;
    ex.connIdleMs = idleMs;
    // Measured like maxConnectionAge (and like idleMs): the larger of the two clocks, so age >= idle.
    ex.connAgeMs = ageOf(conn, this.now);
    ex.connRequestCount = conn.requestCount + 1;
    ex.dispatchedAt = this.now.mono;
    ex.dispatchedWall = this.now.wall;
    if (idleMs !== 0) this.serverIdle.sentAfterIdle(conn, idleMs);
    if (ex.connReused) this.counters.reused++;
    else {
      const t = this.dialTimings.get(conn);
      if (t !== undefined) {
        this.dialTimings.delete(conn);
        ex.dnsMs = t.dnsMs;
        ex.connectMs = t.connectMs;
        ex.tlsMs = t.tlsMs;
      }
    }
    if (conn.wantsLivenessTurn(fromIdle, idleMs, ex.retrySafe)) {
      // The connection stays leased to `ex` while the loop reads what may have arrived on it (see
      // liveness-turn.ts for why that may take two turns).
      ex.moveTo(EX_LIVENESS, this, conn);
      this.livenessTurns.start(conn, ex);
      return;
    }
    conn.dispatch(ex);
    if (requestHeadersSent.hasSubscribers) publishHeadersSent(ex, conn, this.origin);
  }

  /** Second half of send() for a connection that was given a turn of the loop to report its death. */
  afterLivenessTurn(conn: PoolConnection, ex: Exchange): void {
    if (ex.settled) {
      // Aborted meanwhile: the connection was never used for it.
      this.onConnectionReleased(conn);
      return;
    }
    if (conn.closed) {
      // It was dead: nothing was written, so any request may go again, reused or not.
      ex.moveTo(EX_QUEUED, this, null);
      this.counters.requests--;
      if (ex.connReused) this.counters.reused--;
      this.dispatch(ex);
      return;
    }
    conn.dispatch(ex);
    if (requestHeadersSent.hasSubscribers) publishHeadersSent(ex, conn, this.origin);
  }

  // ---- the queue --------------------------------------------------------------------------------

  private enqueue(ex: Exchange, front: boolean): void {
    if (!ex.moveTo(EX_QUEUED, this, null)) return; // settled meanwhile
    if (front)
      this.waiting.pushFront(ex); // it has waited its turn once already: no deadline
    else this.waiting.pushBack(ex, this.now.mono, this.options.queueTimeout);
    if (requestQueued.hasSubscribers) publishRequestQueued(ex, this.waiting.size);
  }

  /** The first waiter `conn` may serve (with `conn` null: the first waiter), removed from the queue; null if none. */
  private takeWaiter(conn: PoolConnection | null): Exchange | null {
    const waiting = this.waiting;
    for (let ex = waiting.first; ex !== null; ex = ex.nextWaiter) {
      if (conn !== null && ex.needsNewConnection && !conn.countsAsNewFor(ex)) {
        // A connection that takes one exchange at a time and that no waiter may take goes back to
        // the free list (a multiplexed one keeps looking: its next slot may serve another waiter).
        if (!conn.multiplexed && waiting.newConnectionWaiters === waiting.size) return null;
        continue;
      }
      waiting.remove(ex);
      return ex;
    }
    return null;
  }

  /** Abort while queued or during a liveness turn. */
  abortExchange(ex: Exchange, err: Error): void {
    this.waiting.remove(ex);
    ex.reject(err);
    this.maybeEmpty();
  }

  /** The queue's timer: fail every waiter past its deadline. */
  private expireWaiters(): void {
    for (const ex of this.waiting.takeExpired(this.options.clock.monotonicMs())) {
      ex.reject(
        new QueueTimeoutError(
          `no connection to ${this.origin} became free within ${this.options.queueTimeout} ms (queueTimeout)`,
          { origin: this.origin },
        ),
      );
    }
    this.maybeEmpty();
  }

  // ---- opening connections --------------------------------------------------------------------

  /** Dials as many connections as the waiters need, within the caps (see decideDial). */
  openAsNeeded(): void {
    const waiting = this.waiting;
    const demand = this.demand;
    this.starved = false;
    for (;;) {
      if (waiting.size === 0 || this.parent.closing) return;
      demand.waiting = waiting.size;
      demand.newConnectionWaiters = waiting.newConnectionWaiters;
      demand.dialing = this.dialer.inFlight;
      demand.open = this.conns.size;
      demand.multiplexed = this.multiplexed;
      demand.streamLimit = this.streamLimit;
      const decision = decideDial(demand);
      if (decision === 'none') return;
      if (decision === 'at-cap') {
        // A waiter that must have a new connection (a safe retry) may close an idle one.
        if (waiting.newConnectionWaiters > 0 && this.closeOneIdle('stale')) continue;
        return;
      }
      if (this.backoff.backingOff && this.backoff.holdsBack(this.options.clock.monotonicMs())) return;
      if (!this.parent.reserveConnection(this)) {
        this.starved = true; // waits for room under maxConnections (see roomWanted)
        return;
      }
      this.counters.created++;
      this.dialer.start();
    }
  }

  /** Waiters here need a connection that only the total cap (maxConnections) keeps from opening. */
  get waitingForRoom(): boolean {
    return this.starved && this.waiting.size > 0;
  }

  /** Closes the least recently used idle connection (for a retry at the cap, or another origin). */
  closeOneIdle(reason: CloseReason): boolean {
    return this.free.closeOldestIdle(reason);
  }

  wantsDialed(): boolean {
    return !this.parent.closing || this.waiting.size > 0;
  }

  onDialed({ conn, timings }: Dialed): void {
    this.protocol = conn.protocol;
    this.multiplexed = conn.multiplexed;
    if (conn.multiplexed && conn.capacity > 0) this.streamLimit = conn.capacity;
    this.conns.add(conn);
    this.dialTimings.set(conn, timings);
    if (connectionOpened.hasSubscribers) publishConnectionOpened(conn, this.origin, timings);
    this.onConnectionReleased(conn);
    this.openAsNeeded();
  }

  /**
   * A dial ended without a connection for the pool. When it failed and no connection to the origin
   * is open, the origin is unreachable for now: every waiter gets the error at once rather than one
   * dial timeout after another. Otherwise only the waiter first in line does; the rest keep their place.
   */
  onDialEnded(err: Error | null): void {
    if (err !== null) {
      const failAll = this.conns.size === 0 && this.dialer.inFlight === 0;
      for (;;) {
        const ex = this.takeWaiter(null);
        if (ex === null) break;
        ex.reject(err);
        if (!failAll) break;
      }
    }
    this.openAsNeeded();
    this.maybeEmpty();
  }

  // ---- connection callbacks -------------------------------------------------------------------

  onConnectionReleased(conn: PoolConnection): void {
    if (conn.closed) return;
    if (conn.requestCount !== 0) this.backoff.served();
    this.serverIdle.answered(conn);
    const waiting = this.waiting;
    // A multiplexed connection with exchanges still open and no waiter to give the slot to needs
    // neither the time nor a check here: the next dispatch checks it, with fresh clocks, in takeFree.
    if (conn.active === 0 || waiting.size > 0) {
      if (conn.active === 0 && conn.idleSinceMono >= this.now.mono) {
        // It went idle just now and read both clocks doing so: that reading is "now" for everything
        // below, and spares reading them again on every response.
        this.now.mono = conn.idleSinceMono;
        this.now.wall = conn.idleSinceWall;
      } else {
        this.readClocks();
      }
      const why =
        conn.active === 0
          ? retireReason(conn, this.now, this.options, this.serverIdle.learnedMs)
          : wornOut(conn, this.now, this.options);
      if (why !== null) {
        conn.close(why);
        // A draining multiplexed connection stays open until its exchanges end: its waiters need
        // another one now. (A connection closed idle makes room through onConnectionClosed.)
        if (conn.active > 0) this.openAsNeeded();
        return;
      }
    }
    while (conn.active < conn.capacity && waiting.size > 0) {
      const ex = this.takeWaiter(conn);
      if (ex === null) break;
      this.send(conn, ex);
      // One at a time: dispatched (synchronously), or held for its liveness turn; its release comes back here.
      if (!conn.multiplexed) return;
    }
    if (this.parent.closing && waiting.size === 0 && conn.active === 0) {
      conn.close('agent-close');
      return;
    }
    if (conn.active === 0 && this.parent.roomWanted(this)) {
      // At maxConnections with another origin waiting for room: kept idle here, this connection
      // would make that origin wait for its idle timeout. Its close lets that origin dial.
      conn.close('agent-close');
      return;
    }
    if (conn.active < conn.capacity && this.free.push(conn) && conn.requestCount === 0)
      waitedUnused.add(conn);
    if (conn.active === 0) {
      conn.armIdleTimer(idleLimit(conn, this.options.idleTimeout, this.serverIdle.learnedMs));
      conn.setKeepsProcessAlive(false);
    }
    // A multiplexed connection that stopped taking exchanges (GOAWAY) or lowered its limit may leave
    // waiters that another must serve; a waiter that must have a new connection needs a dial.
    if (conn.multiplexed ? waiting.size > 0 : waiting.newConnectionWaiters > 0) this.openAsNeeded();
  }

  onConnectionClosed(conn: PoolConnection, reason: CloseReason): void {
    if (!this.conns.delete(conn)) return;
    this.counters.closed[reason]++;
    if (connectionClosed.hasSubscribers) {
      publishConnectionClosed(conn, this.origin, reason, this.options.clock.monotonicMs());
    }
    this.serverIdle.forget(conn);
    if (
      conn.requestCount === 0 &&
      this.waiting.size > 0 &&
      (reason === 'server-close' || reason === 'error')
    ) {
      // Closed by the server while requests waited for it, before it carried one: dialing another at
      // once would likely meet the same (see DialBackoff).
      this.backoff.closedUnused(this.options.clock.monotonicMs());
    }
    if (
      reason === 'server-close' &&
      conn.active === 0 &&
      (this.free.has(conn) || this.livenessTurns.has(conn))
    ) {
      // Closed by the server while idle (in the free list, or taken but not yet written on): its
      // idle age then is what the server's idle timeout looks like.
      this.readClocks();
      this.serverIdle.observeClose(idleFor(conn, this.now), this.now.mono);
    }
    // `free` is cleaned lazily in takeFree(); drop it now if it is on top, the common case.
    this.free.dropIfTop(conn);
    this.parent.releaseConnection();
    this.openAsNeeded();
    this.maybeEmpty();
  }

  onIdleTimer(conn: PoolConnection): void {
    if (conn.closed || conn.active > 0) return;
    this.readClocks();
    const why = retireReason(conn, this.now, this.options, this.serverIdle.learnedMs);
    if (why === 'idle-timeout' && conn.streamsWithheld === true && this.waiting.size > 0) {
      // Idle by the server's choice (it allows no exchanges) while requests wait for its limit to
      // rise: closing it would only make the pool dial another. Looked at again a full period on.
      conn.armIdleTimer(idleLimit(conn, this.options.idleTimeout, this.serverIdle.learnedMs));
      return;
    }
    if (why !== null) conn.close(why);
    else {
      const left =
        idleLimit(conn, this.options.idleTimeout, this.serverIdle.learnedMs) - idleFor(conn, this.now);
      conn.armIdleTimer(left > 1 ? left : 1);
    }
  }

  onExchangeFailed(ex: Exchange, err: Error, retryable: boolean): void {
    if (retryable) {
      this.readClocks();
      // The server closed a connection idle connIdleMs just as this request reached it: the race an
      // idle timeout makes, and what the learned timeout keeps requests that cannot be retried out of.
      this.serverIdle.observeClose(ex.connIdleMs, this.now.mono);
      // A reused connection died before answering: the server probably closed or reset every
      // connection that has been idle as long (a restart, an idle sweep). Drop those now instead of
      // failing through them one request at a time.
      this.free.closeIdleFor(ex.connIdleMs, this.now, 'stale');
    }
    if (retryable && ex.retrySafe && !ex.retried && !this.parent.closing) {
      ex.retried = true;
      ex.needsNewConnection = true;
      this.counters.retried++;
      if (requestRetry.hasSubscribers) publishRetry(ex, 'stale-connection', err);
      this.enqueue(ex, true);
      this.openAsNeeded();
      return;
    }
    if (retryable && !ex.retried && err instanceof WarmpoolError) {
      // Say why it was not retried: the caller can decide (or mark the request idempotent).
      err.message += ex.retrySafe
        ? ''
        : ' (not retried: the request is not idempotent or its body cannot be replayed)';
    }
    ex.reject(err);
    this.maybeEmpty();
  }

  resend(ex: Exchange, err: Error, replay: boolean): void {
    if (!ex.moveTo(EX_QUEUED, this, null)) return; // settled meanwhile
    if (this.parent.closing) {
      ex.reject(err);
      this.maybeEmpty();
      return;
    }
    if (ex.connReused) this.counters.reused--; // send() counts the next attempt
    if (replay) {
      ex.retried = true;
      this.counters.retried++;
      if (requestRetry.hasSubscribers) publishRetry(ex, 'refused-stream', err);
    }
    this.readClocks();
    const conn = this.waiting.size === 0 ? this.takeFree(ex) : null;
    if (conn !== null) {
      this.send(conn, ex);
      return;
    }
    this.enqueue(ex, true);
    this.openAsNeeded();
  }

  // ---- closing ----------------------------------------------------------------------------------

  /** agent.close(): idle connections close now, busy ones when their exchange ends. */
  closeGracefully(): void {
    // A connection in a liveness turn is leased to a request accepted before close(): it closes
    // when that request is done, like any busy one.
    for (const c of [...this.conns]) {
      if (c.active === 0 && !this.livenessTurns.has(c)) c.close('agent-close');
    }
    this.maybeEmpty();
  }

  /** agent.destroy(): everything ends now with `err`. */
  destroyAll(err: Error): void {
    for (;;) {
      const ex = this.takeWaiter(null);
      if (ex === null) break;
      ex.reject(err);
    }
    for (const c of [...this.conns]) c.destroy('agent-close', err);
    this.maybeEmpty();
  }

  get isEmpty(): boolean {
    return this.conns.size === 0 && this.dialer.inFlight === 0 && this.waiting.size === 0;
  }

  private maybeEmpty(): void {
    if (this.waiting.size === 0) {
      this.waiting.stopTimer();
      this.backoff.cancel();
    }
    if (this.isEmpty) this.parent.onPoolEmpty(this);
  }

  stats(): OriginStats {
    return originStats(
      this.origin,
      this.protocol,
      this.conns,
      this.dialer.inFlight,
      this.waiting.size,
      this.counters,
      this.serverIdle.learnedMs,
    );
  }
}
