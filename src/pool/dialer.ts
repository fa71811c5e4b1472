/**
 * Opening connections for one origin's pool. A `Connector` is the pool's only way to a socket (tests
 * give a pool one that makes fake connections); the `Dialer` runs dials and does their bookkeeping in
 * one place, whatever the outcome: the count of dials in flight and the room reserved under the
 * Agent's total cap.
 */
import { type DialTarget, dial } from '../dial/dial.js';
import type { TlsSessionCache } from '../dial/tls-session-cache.js';
import { AgentClosedError } from '../errors.js';
import type { ConnectionOwner, PoolConnection } from '../exchange/connection.js';
import { createConnection } from './create-connection.js';
import type { ResolvedAgentOptions } from './options.js';

/** The steps a dial took, for res.timings of its connection's first request (absent: skipped). */
export interface DialTimings {
  dnsMs: number | undefined;
  connectMs: number | undefined;
  tlsMs: number | undefined;
  /** Over TLS: the session was resumed. */
  tlsResumed?: boolean;
}

/** A connection ready to take requests (an HTTP/2 session has the server's first SETTINGS). */
export interface Dialed {
  conn: PoolConnection;
  timings: DialTimings;
}

/** Opens one connection for `owner`, with id `id`; rejects with the dial's typed error. */
export type Connector = (owner: ConnectionOwner, id: number) => Promise<Dialed>;

/** A Connector that dials `target` (DNS, TCP, TLS with ALPN) and wraps the socket in its protocol. */
export function socketConnector(
  target: DialTarget,
  options: ResolvedAgentOptions,
  sessions: TlsSessionCache,
  origin: string,
): Connector {
  return async (owner, id) => {
    const result = await dial(target, options.connectTimeout, options.clock, sessions, undefined, origin);
    const conn = createConnection(result, id, owner, options, origin);
    // HTTP/2: until the server's SETTINGS arrive the session's stream limit is unknown; it stays a
    // dial until then, and a session that fails first is a failed dial.
    if (conn.ready !== undefined) await conn.ready;
    return { conn, timings: result };
  };
}

/** What a Dialer needs of its pool. */
export interface DialerOwner extends ConnectionOwner {
  /** Does the pool still want a connection that has just opened (not when the agent closes with nobody waiting)? */
  wantsDialed(): boolean;
  /** A connection opened; the room it reserved is its own now. */
  onDialed(dialed: Dialed): void;
  /** A dial failed (`err`), or its connection closed or was not wanted (null); its room is released. */
  onDialEnded(err: Error | null): void;
}

/** What a Dialer needs of the Agent: the room reserved for each dial under the total cap. */
export interface DialerParent {
  releaseConnection(): void;
  nextConnectionId(): number;
}

export class Dialer {
  /** Dials in flight. */
  inFlight = 0;

  constructor(
    private readonly owner: DialerOwner,
    private readonly connect: Connector,
    private readonly parent: DialerParent,
  ) {}

  /** Starts one dial; the caller has reserved room for it under the total cap. */
  start(): void {
    this.inFlight++;
    void this.run();
  }

  private async run(): Promise<void> {
    let dialed: Dialed | undefined;
    let failure: Error | null = null;
    try {
      dialed = await this.connect(this.owner, this.parent.nextConnectionId());
    } catch (err) {
      failure = err as Error;
    }
    // Every dial ends here, once: whatever it became, it is no longer in flight.
    this.inFlight--;
    if (dialed !== undefined && !dialed.conn.closed && this.owner.wantsDialed()) {
      this.owner.onDialed(dialed);
      return;
    }
    if (dialed !== undefined && !dialed.conn.closed) {
      // Not in the pool's set: its close is not counted there (onConnectionClosed ignores it).
      dialed.conn.destroy('agent-close', new AgentClosedError('the agent is closing; connection not used'));
    }
    this.parent.releaseConnection();
    this.owner.onDialEnded(failure);
  }
}

/**
 * Connections that closed, one after another, without carrying a single exchange (a server that
 * allows no streams and closes every session, or one that accepts and hangs up before anything is
 * sent): each makes the next dial wait longer, doubling from 50 ms up to 5 s, so that such a server
 * does not make the pool dial in a loop (DESIGN.md invariant 9). A connection that carries an exchange
 * ends the run. Time is passed in.
 */
export class DialBackoff {
  private fruitless = 0;
  private notBefore = 0;
  private timer: NodeJS.Timeout | undefined = undefined;

  /** `retry` is called when a wait that held a dial back is over. */
  constructor(private readonly retry: () => void) {}

  /** Must a dial wanted at `now` wait? Then the timer calls `retry` when it may go. */
  holdsBack(now: number): boolean {
    const wait = this.waitMs(now);
    if (wait === 0) return false;
    if (this.timer === undefined) {
      this.timer = setTimeout(onBackoffTimer, wait, this);
      this.timer.unref();
    }
    return true;
  }

  /** Nothing waits for a dial any more. */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** @internal The timer fired. */
  fired(): void {
    this.timer = undefined;
    this.retry();
  }

  /** A connection the server closed before it carried anything. */
  closedUnused(now: number): void {
    this.fruitless++;
    this.notBefore = now + Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.fruitless - 1));
  }

  /** A connection carried an exchange: dials go at once again. */
  served(): void {
    this.fruitless = 0;
  }

  get backingOff(): boolean {
    return this.fruitless !== 0;
  }

  /** How long the next dial must wait from `now` (0: it may go now). */
  waitMs(now: number): number {
    return this.fruitless === 0 || now >= this.notBefore ? 0 : this.notBefore - now;
  }
}

function onBackoffTimer(backoff: DialBackoff): void {
  backoff.fired();
}

const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5000;

/** What an origin's pool knows when it decides whether to dial (see decideDial). */
export interface DialDemand {
  /** Waiters, and those among them that must have a new connection (safe retries). */
  waiting: number;
  newConnectionWaiters: number;
  /** Dials in flight, and connections open. */
  dialing: number;
  open: number;
  /** maxConnectionsPerOrigin. */
  max: number;
  /** Whether the origin's connections carry several exchanges at once; undefined until known. */
  multiplexed: boolean | undefined;
  /** Multiplexed: the stream limit the last session announced. */
  streamLimit: number;
  /** The open connections (looked at only for a multiplexed origin). */
  conns: Iterable<PoolConnection>;
}

/**
 * Whether the waiters need one more dial now: 'dial'; 'none' (the dials in flight and the
 * connections open will serve them); or 'at-cap' (maxConnectionsPerOrigin is reached).
 */
export function decideDial(d: DialDemand): 'dial' | 'none' | 'at-cap' {
  if (d.waiting === 0) return 'none';
  // Until the server's protocol is known, a TLS origin that may choose h2 gets one dial: one
  // multiplexed session could carry every waiter.
  if (d.multiplexed === undefined && d.dialing > 0) return 'none';
  if (d.multiplexed === true) {
    // Sessions being dialed will carry about as many exchanges as the last one did; a session with
    // room has taken every waiter it could, except those that must have a new connection.
    if (d.dialing * d.streamLimit >= d.waiting) return 'none';
    let freeSlot = false;
    let withheld = 0;
    for (const c of d.conns) {
      if (!c.closed && c.active < c.capacity) freeSlot = true;
      if (c.streamsWithheld === true) withheld++;
    }
    if (d.newConnectionWaiters === 0 && freeSlot) return 'none';
    // A session whose server allows no streams for now (SETTINGS_MAX_CONCURRENT_STREAMS 0) is open,
    // not full: waiters wait for its limit to rise (it reports the rise as a release). One more
    // session may be dialed meanwhile (the 0 may be that session's alone), never more: a server that
    // says 0 on every session must not make the pool dial up to the cap (invariant 9).
    if (withheld > 0 && withheld + d.dialing > 1) return 'none';
  } else if (d.dialing >= d.waiting) {
    return 'none';
  }
  return d.open + d.dialing >= d.max ? 'at-cap' : 'dial';
}
