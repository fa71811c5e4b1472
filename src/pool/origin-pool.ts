import { type Clock, elapsedSince } from '../clock.js';
import { type DialResult, type DialTarget, dial } from '../dial/dial.js';
import type { TlsSessionCache } from '../dial/tls-session-cache.js';
import { AgentClosedError, QueueFullError, QueueTimeoutError, WarmpoolError } from '../errors.js';
import type { CloseReason, ConnectionOwner, PoolConnection } from './connection.js';
import { createConnection } from './create-connection.js';
import type { Exchange, ExchangeAbortTarget } from './exchange.js';
import type { ResolvedAgentOptions } from './options.js';

/** Counters for one origin; all since the pool was made, except the gauges (open, idle, busy, queued). */
export interface OriginStats {
  origin: string;
  protocol: 'http/1.1' | 'h2' | 'unknown';
  open: number;
  connecting: number;
  idle: number;
  busy: number;
  queued: number;
  created: number;
  requests: number;
  reused: number;
  retried: number;
  closed: Record<CloseReason, number>;
  /** HTTP/2 only: open streams and the servers' current stream limit per session. */
  activeStreams: number;
  streamLimits: number[];
}

/** What an OriginPool needs from its Agent: the total cap across origins. */
export interface PoolParent {
  readonly closing: boolean;
  readonly sessions: TlsSessionCache;
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

/** Idle connections idle at least this long get a turn of the event loop before reuse (see send()). */
const LIVENESS_DEFER_AFTER_MS = 250;

/**
 * The connections of one origin (plus the TLS options that change a connection).
 *
 * - `free` is a stack of connections with a free slot: the most recently used is reused first, so
 *   surplus connections stay idle and age out.
 * - `queue` is FIFO: waiters are served in the order they came (a safe retry goes to the front).
 * - At most `maxConnectionsPerOrigin` connections are open or being dialed.
 * Every decision about a connection's freshness is made here, when it is taken, by reading the clocks
 * (timers do not fire while a process is frozen): see `retireReason`.
 */
export class OriginPool implements ConnectionOwner, ExchangeAbortTarget {
  readonly conns = new Set<PoolConnection>();
  private readonly free: PoolConnection[] = [];
  private readonly inFree = new WeakSet<PoolConnection>();
  private readonly queue: Exchange[] = [];
  private queueHead = 0;
  private queued = 0; // live waiters (cancelled ones are skipped lazily)
  private newConnectionWaiters = 0; // waiters that must not get a reused connection
  private dialing = 0;
  private queueTimer: NodeJS.Timeout | undefined = undefined;
  private readonly dialTimings = new WeakMap<PoolConnection, DialResult>();
  /** Connections taken by an exchange that waits out its liveness turn (see send()): leased, not idle. */
  private readonly inLivenessTurn = new Set<PoolConnection>();
  /** What the server chose last time (ALPN); until known, a TLS origin that may speak h2 gets one dial. */
  protocol: 'http/1.1' | 'h2' | 'unknown';
  /** HTTP/2: the stream limit the last session announced; how many waiters one more session serves. */
  private h2StreamLimit = 100;
  removed = false;

  private created = 0;
  private requests = 0;
  private reused = 0;
  private retried = 0;
  private readonly closedBy: Record<CloseReason, number> = {
    'idle-timeout': 0,
    'max-age': 0,
    'max-requests': 0,
    'server-close': 0,
    'not-reusable': 0,
    error: 0,
    aborted: 0,
    stale: 0,
    'agent-close': 0,
  };

  constructor(
    readonly key: string,
    readonly origin: string,
    private readonly target: DialTarget,
    private readonly options: ResolvedAgentOptions,
    private readonly parent: PoolParent,
  ) {
    this.protocol =
      target.secure && target.alpn.includes('h2')
        ? 'unknown'
        : target.alpn.includes('h2')
          ? 'h2'
          : 'http/1.1';
  }

  private get clock(): Clock {
    return this.options.clock;
  }

  /**
   * The clocks as last read by readClocks(). Reading a clock costs about as much as parsing a header
   * field on some VMs, so one reading serves every decision of one dispatch (freshness, age, timings).
   */
  private nowMono = 0;
  private nowWall = 0;
  private readClocks(): void {
    this.nowMono = this.clock.monotonicMs();
    this.nowWall = this.clock.wallMs();
  }

  /** Larger of the two clocks' time since (mono, wall), by the last readClocks(): never too young. */
  private since(mono: number, wall: number): number {
    const m = this.nowMono - mono;
    const w = this.nowWall - wall;
    const larger = m > w ? m : w;
    return larger > 0 ? larger : 0;
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
    this.requests++;
    this.readClocks();
    if (ex.queuedAt === 0) ex.queuedAt = this.nowMono;
    if (this.queued === 0) {
      const conn = this.takeFree(ex);
      if (conn !== null) {
        this.send(conn, ex);
        return;
      }
    }
    if (this.queued >= this.options.maxQueued) {
      ex.reject(
        new QueueFullError(
          `${this.queued} requests already wait for a connection to ${this.origin} (maxQueued)`,
          {
            origin: this.origin,
          },
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
    while (free.length > 0) {
      const conn = free[free.length - 1]!;
      if (conn.closed || conn.active >= conn.capacity) {
        free.pop();
        this.inFree.delete(conn);
        continue;
      }
      // A busy connection in the free list is an HTTP/2 session with a free slot: not idle, but it
      // may have outlived maxConnectionAge or maxRequestsPerConnection under constant load.
      const why = conn.active === 0 ? this.retireReason(conn) : this.wornOut(conn);
      if (why !== null) {
        free.pop();
        this.inFree.delete(conn);
        conn.close(why); // an HTTP/2 session drains: its open streams finish, no new ones start
        continue;
      }
      if (ex.needsNewConnection && !isNewFor(conn, ex)) return null;
      if (conn.active + 1 >= conn.capacity) {
        free.pop();
        this.inFree.delete(conn);
      }
      return conn;
    }
    return null;
  }

  /**
   * Why an idle connection must not be used again, or null. Idle age is the larger of the monotonic
   * and wall-clock time since it went idle (DESIGN.md invariant 4): after a VM freeze the monotonic
   * clock has not moved, but the wall clock has, and so has the server's idle timer.
   * Reads the clocks as of the last readClocks().
   */
  private retireReason(conn: PoolConnection): CloseReason | null {
    if (this.since(conn.idleSinceMono, conn.idleSinceWall) >= this.idleLimit(conn)) return 'idle-timeout';
    return this.wornOut(conn);
  }

  /**
   * Why a connection must take no new request whether idle or not: past maxConnectionAge (by the
   * larger of the two clocks), or at its request limit (ours, or the server's Keep-Alive max).
   * Reads the clocks as of the last readClocks().
   */
  private wornOut(conn: PoolConnection): CloseReason | null {
    const o = this.options;
    if (o.maxConnectionAge > 0 && this.since(conn.createdMono, conn.createdWall) >= o.maxConnectionAge) {
      return 'max-age';
    }
    if (o.maxRequestsPerConnection > 0 && conn.requestCount >= o.maxRequestsPerConnection)
      return 'max-requests';
    if (conn.serverMaxRequests !== undefined && conn.requestCount >= conn.serverMaxRequests)
      return 'max-requests';
    return null;
  }

  /**
   * How long a connection may sit idle: idleTimeout, or the server's Keep-Alive hint less a safety
   * margin when that is shorter (the server's timer started when it sent the response, a little before
   * ours, and a request must arrive before it fires, not merely leave before).
   */
  private idleLimit(conn: PoolConnection): number {
    const hint = conn.serverIdleTimeoutMs;
    let limit = this.options.idleTimeout;
    if (hint !== undefined) {
      const margin = Math.min(1000, Math.max(100, hint * 0.25));
      if (hint - margin < limit) limit = hint - margin;
    }
    return limit > 0 ? limit : 0;
  }

  /** Sends on `conn`, recording for the response what the connection was when it was taken. */
  private send(conn: PoolConnection, ex: Exchange): void {
    const now = this.nowMono;
    const fromIdle = conn.requestCount > 0 || waitedUnused.has(conn);
    const idleMs = conn.active === 0 && fromIdle ? this.since(conn.idleSinceMono, conn.idleSinceWall) : 0;
    ex.connReused = conn.requestCount > 0;
    ex.connFromIdle = fromIdle;
    ex.connIdleMs = idleMs;
    // Measured like maxConnectionAge (and like idleMs): the larger of the two clocks, so age >= idle.
    ex.connAgeMs = this.since(conn.createdMono, conn.createdWall);
    ex.connRequestCount = conn.requestCount + 1;
    ex.dispatchedAt = now;
    ex.dispatchedWall = this.nowWall;
    if (ex.connReused) this.reused++;
    else {
      const t = this.dialTimings.get(conn);
      if (t !== undefined) {
        this.dialTimings.delete(conn);
        ex.dnsMs = t.dnsMs;
        ex.connectMs = t.connectMs;
        ex.tlsMs = t.tlsMs;
      }
    }
    if (conn.protocol === 'http/1.1' && fromIdle && (idleMs >= LIVENESS_DEFER_AFTER_MS || !ex.retrySafe)) {
      // A FIN or RST that reached the kernel while we were busy elsewhere (say, in the callback that
      // issues this request) has not been read yet. Letting the loop poll the sockets once lets a dead
      // connection report itself before we write on it (see livenessTurn for why that may take two
      // turns). Who pays: connections idle long enough to be at risk; and requests that cannot be
      // retried (a POST) on any reused connection, because a server that closes right after a
      // response (its request cap, a reset) sends the FIN just behind the response, and a connection
      // handed straight to the next request from that response's callback would take the POST to
      // its death. A retryable request handed over back-to-back goes at once: if it dies, the retry
      // covers it.
      ex.connection = conn;
      ex.setAbortTarget(this);
      this.inLivenessTurn.add(conn);
      setImmediate(livenessTurn, this, conn, ex, true);
      return;
    }
    conn.dispatch(ex);
  }

  /** Second half of send() for a connection that was given a turn of the loop to report its death. */
  resumeDeferredSend(conn: PoolConnection, ex: Exchange): void {
    this.inLivenessTurn.delete(conn);
    ex.connection = null;
    ex.setAbortTarget(null);
    if (ex.settled) {
      // Aborted meanwhile: the connection was never used for it.
      this.onConnectionReleased(conn);
      return;
    }
    if (conn.closed) {
      // It was dead: nothing was written, so any request may go again, reused or not.
      this.requests--;
      if (ex.connReused) this.reused--;
      this.dispatch(ex);
      return;
    }
    conn.dispatch(ex);
  }

  // ---- the queue --------------------------------------------------------------------------------

  private enqueue(ex: Exchange, front: boolean): void {
    ex.setAbortTarget(this);
    if (front) {
      if (this.queueHead > 0) this.queue[--this.queueHead] = ex;
      else this.queue.unshift(ex);
      ex.queueDeadline = 0; // it has waited its turn once already
    } else {
      this.queue.push(ex);
      const timeout = this.options.queueTimeout;
      ex.queueDeadline = timeout > 0 ? ex.queuedAt + timeout : 0;
      if (timeout > 0 && this.queueTimer === undefined) this.armQueueTimer(timeout);
    }
    this.queued++;
    if (ex.needsNewConnection) this.newConnectionWaiters++;
  }

  /** The first waiter `conn` may serve (with `conn` null: the first waiter), removed from the queue; null if none. */
  private takeWaiter(conn: PoolConnection | null): Exchange | null {
    const q = this.queue;
    for (let i = this.queueHead; i < q.length; i++) {
      const ex = q[i]!;
      if (ex.cancelled) {
        if (i === this.queueHead) {
          q[this.queueHead++] = undefined as unknown as Exchange;
        }
        continue;
      }
      if (conn !== null && ex.needsNewConnection && !isNewFor(conn, ex)) {
        if (conn.protocol !== 'h2' && this.newConnectionWaiters === this.queued) return null; // all need a new one
        continue;
      }
      if (i === this.queueHead) {
        q[this.queueHead++] = undefined as unknown as Exchange;
      } else {
        q.splice(i, 1);
      }
      this.queued--;
      if (ex.needsNewConnection) this.newConnectionWaiters--;
      this.compactQueue();
      return ex;
    }
    this.compactQueue();
    return null;
  }

  private compactQueue(): void {
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Abort while queued or during a liveness turn. */
  abortExchange(ex: Exchange, err: Error): void {
    if (ex.connection === null) this.cancelWaiter(ex);
    ex.reject(err);
    this.maybeEmpty();
  }

  private cancelWaiter(ex: Exchange): void {
    if (ex.cancelled) return;
    ex.cancelled = true;
    this.queued--;
    if (ex.needsNewConnection) this.newConnectionWaiters--;
  }

  private armQueueTimer(ms: number): void {
    this.queueTimer = setTimeout(onQueueTimer, Math.max(1, ms), this);
    this.queueTimer.unref();
  }

  /** The queue timer fired: fail every waiter past its deadline, re-arm for the next. */
  expireWaiters(): void {
    this.queueTimer = undefined;
    const now = this.clock.monotonicMs();
    let next = Number.POSITIVE_INFINITY;
    const q = this.queue;
    for (let i = this.queueHead; i < q.length; i++) {
      const ex = q[i]!;
      if (ex.cancelled || ex.queueDeadline === 0) continue;
      if (ex.queueDeadline <= now) {
        this.cancelWaiter(ex);
        ex.reject(
          new QueueTimeoutError(
            `no connection to ${this.origin} became free within ${this.options.queueTimeout} ms (queueTimeout)`,
            { origin: this.origin },
          ),
        );
      } else if (ex.queueDeadline < next) {
        next = ex.queueDeadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.armQueueTimer(next - now);
    this.maybeEmpty();
  }

  // ---- opening connections --------------------------------------------------------------------

  /** Dials as many connections as the waiters need, within the caps. */
  openAsNeeded(): void {
    const max = this.options.maxConnectionsPerOrigin;
    this.starved = false;
    for (;;) {
      if (this.queued === 0 || this.parent.closing) return;
      // Until the server's protocol is known, a TLS origin that may choose h2 gets one dial: one h2
      // session could carry every waiter.
      if (this.protocol === 'unknown' && this.dialing > 0) return;
      if (this.protocol === 'h2') {
        // Sessions being dialed will carry about as many streams as the last one did; a session with
        // room has taken every waiter it could, except those that must have a new connection.
        if (this.dialing * this.h2StreamLimit >= this.queued) return;
        if (this.newConnectionWaiters === 0 && this.h2HasRoom()) return;
        // A session whose server allows no streams for now (SETTINGS_MAX_CONCURRENT_STREAMS 0) is
        // open, not full: waiters wait for its limit to rise (onRemoteSettings serves them). One more
        // session may be dialed meanwhile (the 0 may be that session's alone), never more: a server
        // that says 0 on every session must not make the pool dial up to the cap (invariant 9).
        const withheld = this.h2Withheld();
        if (withheld > 0 && withheld + this.dialing > 1) return;
      } else if (this.dialing >= this.queued) {
        return;
      }
      if (this.conns.size + this.dialing >= max) {
        // At the cap. A waiter that must have a new connection (a safe retry) may close an idle one.
        if (this.newConnectionWaiters > 0 && this.closeOneIdle('stale')) continue;
        return;
      }
      if (!this.parent.reserveConnection(this)) {
        this.starved = true; // waits for room under maxConnections (see roomWanted)
        return;
      }
      this.dialing++;
      this.created++;
      void this.open();
    }
  }

  /** Waiters here need a connection that only the total cap (maxConnections) keeps from opening. */
  get waitingForRoom(): boolean {
    return this.starved && this.queued > 0;
  }
  private starved = false;

  private h2HasRoom(): boolean {
    for (const c of this.conns) if (!c.closed && c.active < c.capacity && c.protocol === 'h2') return true;
    return false;
  }

  /** Open HTTP/2 sessions whose server allows no streams for now. */
  private h2Withheld(): number {
    let n = 0;
    for (const c of this.conns) if (c.streamsWithheld === true) n++;
    return n;
  }

  private closeOneIdle(reason: CloseReason): boolean {
    for (const c of this.free) {
      if (!c.closed && c.active === 0) {
        c.close(reason);
        return true;
      }
    }
    return false;
  }

  private async open(): Promise<void> {
    let result: DialResult;
    try {
      result = await dial(
        this.target,
        this.options.connectTimeout,
        this.clock,
        this.parent.sessions,
        undefined,
        this.origin,
      );
    } catch (err) {
      this.dialing--;
      this.parent.releaseConnection();
      this.onDialFailed(err as Error);
      return;
    }
    if (this.parent.closing && this.queued === 0) {
      this.dialing--;
      result.socket.destroy();
      this.parent.releaseConnection();
      this.maybeEmpty();
      return;
    }
    this.protocol = result.protocol;
    const conn = createConnection(result, this.parent.nextConnectionId(), this, this.options, this.origin);
    if (conn.ready !== undefined) {
      // HTTP/2: until the server's SETTINGS arrive we do not know how many streams the session may
      // carry; it stays a dial (not in `conns`) until then, and a session that fails first is a
      // failed dial.
      try {
        await conn.ready;
      } catch (err) {
        this.dialing--;
        this.parent.releaseConnection();
        this.onDialFailed(err as Error);
        return;
      }
      if (conn.closed) {
        // Closed between its SETTINGS and now: its close was not counted (it was not in `conns`).
        this.dialing--;
        this.parent.releaseConnection();
        this.openAsNeeded();
        this.maybeEmpty();
        return;
      }
      if (conn.capacity > 0) this.h2StreamLimit = conn.capacity;
    }
    this.dialing--;
    this.conns.add(conn);
    this.dialTimings.set(conn, result);
    this.onConnectionReleased(conn);
    this.openAsNeeded();
  }

  /**
   * A dial failed. When no connection to the origin is open, the origin is unreachable for now:
   * every waiter gets the error at once rather than one dial timeout after another. Otherwise only the
   * waiter first in line does, and the rest keep their place.
   */
  private onDialFailed(err: Error): void {
    if (this.protocol === 'unknown') {
      // nothing learned
    }
    const failAll = this.conns.size === 0 && this.dialing === 0;
    for (;;) {
      const ex = this.takeWaiter(null);
      if (ex === null) break;
      ex.reject(err);
      if (!failAll) break;
    }
    this.openAsNeeded();
    this.maybeEmpty();
  }

  // ---- connection callbacks -------------------------------------------------------------------

  onConnectionReleased(conn: PoolConnection): void {
    if (conn.closed) return;
    // An HTTP/2 session with streams still open and no waiter to give the slot to needs neither the
    // time nor a check here: the next dispatch checks it, with fresh clocks, in takeFree.
    if (conn.active === 0 || this.queued > 0) {
      if (conn.active === 0 && conn.idleSinceMono >= this.nowMono) {
        // It went idle just now and read both clocks doing so: that reading is "now" for everything
        // below, and spares reading them again on every response.
        this.nowMono = conn.idleSinceMono;
        this.nowWall = conn.idleSinceWall;
      } else {
        this.readClocks();
      }
      const why = conn.active === 0 ? this.retireReason(conn) : this.wornOut(conn);
      if (why !== null) {
        conn.close(why);
        // A draining HTTP/2 session stays open until its streams end: its waiters need another one
        // now. (A connection closed idle makes room through onConnectionClosed.)
        if (conn.active > 0) this.openAsNeeded();
        return;
      }
    }
    while (conn.active < conn.capacity && this.queued > 0) {
      const ex = this.takeWaiter(conn);
      if (ex === null) break;
      this.send(conn, ex);
      if (conn.protocol === 'http/1.1') return; // H1 dispatch is synchronous, or deferred holding the slot
    }
    if (this.parent.closing && this.queued === 0 && conn.active === 0) {
      conn.close('agent-close');
      return;
    }
    if (conn.active === 0 && this.parent.roomWanted(this)) {
      // At maxConnections with another origin waiting for room: kept idle here, this connection
      // would make that origin wait for its idle timeout. Its close lets that origin dial.
      conn.close('agent-close');
      return;
    }
    if (conn.active < conn.capacity && !this.inFree.has(conn)) {
      this.inFree.add(conn);
      this.free.push(conn);
      if (conn.requestCount === 0) waitedUnused.add(conn);
    }
    if (conn.active === 0) {
      conn.armIdleTimer(this.idleLimit(conn));
      conn.setKeepsProcessAlive(false);
    }
    if (conn.protocol === 'h2') {
      // A session that stopped taking streams (GOAWAY) or lowered its limit may leave waiters
      // that another session must serve.
      if (this.queued > 0) this.openAsNeeded();
    } else if (this.newConnectionWaiters > 0) {
      this.openAsNeeded();
    }
  }

  onConnectionClosed(conn: PoolConnection, reason: CloseReason): void {
    if (!this.conns.delete(conn)) return;
    this.closedBy[reason]++;
    // `free` is cleaned lazily in takeFree(); drop it now if it is on top, the common case.
    const free = this.free;
    if (free.length > 0 && free[free.length - 1] === conn) {
      free.pop();
      this.inFree.delete(conn);
    }
    this.parent.releaseConnection();
    this.openAsNeeded();
    this.maybeEmpty();
  }

  onIdleTimer(conn: PoolConnection): void {
    if (conn.closed || conn.active > 0) return;
    this.readClocks();
    const why = this.retireReason(conn);
    if (why === 'idle-timeout' && conn.streamsWithheld === true && this.queued > 0) {
      // Idle by the server's choice (it allows no streams) while requests wait for its limit to
      // rise: closing it would only make the pool dial another. Looked at again a full period on.
      conn.armIdleTimer(this.idleLimit(conn));
      return;
    }
    if (why !== null) conn.close(why);
    else {
      const idle = this.since(conn.idleSinceMono, conn.idleSinceWall);
      conn.armIdleTimer(Math.max(1, this.idleLimit(conn) - idle));
    }
  }

  onExchangeFailed(ex: Exchange, err: Error, retryable: boolean): void {
    if (retryable) {
      // A reused connection died before answering: the server probably closed or reset every
      // connection that has been idle as long (a restart, an idle sweep). Drop those now instead of
      // failing through them one request at a time.
      this.dropIdleOlderThan(ex.connIdleMs);
    }
    if (retryable && ex.retrySafe && !ex.retried && !this.parent.closing) {
      ex.retried = true;
      ex.needsNewConnection = true;
      this.retried++;
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
    ex.connection = null;
    ex.setAbortTarget(null);
    if (ex.settled) return;
    if (this.parent.closing) {
      ex.reject(err);
      this.maybeEmpty();
      return;
    }
    if (ex.connReused) this.reused--; // send() counts the next attempt
    if (replay) {
      ex.retried = true;
      this.retried++;
    }
    this.readClocks();
    const conn = this.queued === 0 ? this.takeFree(ex) : null;
    if (conn !== null) {
      this.send(conn, ex);
      return;
    }
    this.enqueue(ex, true);
    this.openAsNeeded();
  }

  private dropIdleOlderThan(idleMs: number): void {
    const clock = this.clock;
    for (const c of [...this.free]) {
      if (c.closed || c.active > 0) continue;
      if (elapsedSince(clock, c.idleSinceMono, c.idleSinceWall) >= idleMs) c.close('stale');
    }
  }

  // ---- closing ----------------------------------------------------------------------------------

  /** agent.close(): idle connections close now, busy ones when their exchange ends. */
  closeGracefully(): void {
    // A connection in a liveness turn is leased to a request accepted before close(): it closes
    // when that request is done, like any busy one.
    for (const c of [...this.conns]) {
      if (c.active === 0 && !this.inLivenessTurn.has(c)) c.close('agent-close');
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
    if (this.queueTimer !== undefined) clearTimeout(this.queueTimer);
    this.queueTimer = undefined;
    this.maybeEmpty();
  }

  get isEmpty(): boolean {
    return this.conns.size === 0 && this.dialing === 0 && this.queued === 0;
  }

  private maybeEmpty(): void {
    if (this.isEmpty) {
      if (this.queueTimer !== undefined) clearTimeout(this.queueTimer);
      this.queueTimer = undefined;
      this.parent.onPoolEmpty(this);
    }
  }

  /** Closes the least recently used idle connection, to make room for another origin. */
  closeLeastRecentIdle(): boolean {
    for (const c of this.free) {
      if (!c.closed && c.active === 0) {
        c.close('agent-close');
        return true;
      }
    }
    return false;
  }

  get idleCount(): number {
    let n = 0;
    for (const c of this.conns) if (c.active === 0) n++;
    return n;
  }

  stats(): OriginStats {
    let idle = 0;
    let busy = 0;
    let activeStreams = 0;
    const streamLimits: number[] = [];
    for (const c of this.conns) {
      if (c.active === 0) idle++;
      else busy++;
      if (c.protocol === 'h2') {
        activeStreams += c.active;
        streamLimits.push(c.capacity);
      }
    }
    return {
      origin: this.origin,
      protocol: this.protocol,
      open: this.conns.size,
      connecting: this.dialing,
      idle,
      busy,
      queued: this.queued,
      created: this.created,
      requests: this.requests,
      reused: this.reused,
      retried: this.retried,
      closed: { ...this.closedBy },
      activeStreams,
      streamLimits,
    };
  }
}

/**
 * The liveness turn of send(). Immediates run in the check phase, right after the poll phase that
 * reads sockets. Issued from a timer callback, the first turn follows a poll; issued from an I/O
 * callback (the poll phase itself: a server's request handler, a socket's data, a worker's message,
 * and every promise continuation of those), the first turn ends in that same iteration's check phase
 * with no poll in between, and only the second follows one. A connection that died in the first turn
 * skips the second.
 */
function livenessTurn(pool: OriginPool, conn: PoolConnection, ex: Exchange, first: boolean): void {
  if (first && !conn.closed && !ex.settled) {
    setImmediate(livenessTurn, pool, conn, ex, false);
    return;
  }
  pool.resumeDeferredSend(conn, ex);
}

function onQueueTimer(pool: OriginPool): void {
  pool.expireWaiters();
}

/**
 * May `conn` carry `ex`, which must have a new connection (a safe retry)? A connection that never
 * served anything may; so may an HTTP/2 session opened after the failed attempt was sent (it cannot
 * be the stale one, and one new session carries every such retry).
 */
function isNewFor(conn: PoolConnection, ex: Exchange): boolean {
  return conn.requestCount === 0 || (conn.protocol === 'h2' && conn.createdMono > ex.dispatchedAt);
}
