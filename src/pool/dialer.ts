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

const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5000;
