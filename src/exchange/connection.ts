import type { Exchange } from './exchange.js';

/** Why a connection was closed; counted per origin in agent.stats(). */
export type CloseReason =
  | 'idle-timeout' // idle longer than idleTimeout or the server's Keep-Alive hint
  | 'max-age' // older than maxConnectionAge
  | 'max-requests' // served maxRequestsPerConnection (or the server's Keep-Alive max)
  | 'server-close' // the server closed it (FIN or RST) while idle, or after a response
  | 'not-reusable' // the last exchange left it unfit (Connection: close, HTTP/1.0, close-delimited, leftovers)
  | 'error' // socket error, parse error or timeout during an exchange
  | 'aborted' // the caller aborted an exchange in progress (or abandoned its body)
  | 'stale' // dropped on evidence that the server reset its connections
  | 'agent-close'; // agent.close() / agent.destroy() / making room for another origin

/**
 * What an OriginPool needs of a connection, HTTP/1.1 or HTTP/2. A connection serves up to `capacity`
 * exchanges at once (1 for HTTP/1.1, the server's stream limit for HTTP/2). The pool never asks which
 * protocol it speaks (hyper-util's `Poolable`): the connection answers the pool's questions itself
 * (`multiplexed`, `wantsLivenessTurn`, `countsAsNewFor`); `protocol` is only reported (stats, responses).
 */
export interface PoolConnection {
  readonly id: number;
  readonly protocol: 'http/1.1' | 'h2';
  /**
   * Carries several exchanges at once (HTTP/2). A connection that is not takes one exchange per
   * release: the pool hands it over and waits for the next release.
   */
  readonly multiplexed: boolean;
  readonly capacity: number;
  /**
   * Open and not draining, but the server allows no exchanges on it for now (HTTP/2: it announced
   * SETTINGS_MAX_CONCURRENT_STREAMS 0): its capacity is 0 by the server's choice, not because it is in
   * use, and may rise later (then the connection reports a release). Absent (false) for HTTP/1.1.
   */
  readonly streamsWithheld?: boolean;
  readonly active: number;
  /** Once true, never false again; the pool forgets the connection after onConnectionClosed. */
  readonly closed: boolean;
  readonly requestCount: number;
  readonly createdMono: number;
  readonly createdWall: number;
  /** When active last dropped to 0. */
  readonly idleSinceMono: number;
  readonly idleSinceWall: number;
  /** The server's `Keep-Alive: timeout=` hint in ms, if it sent one. */
  readonly serverIdleTimeoutMs: number | undefined;
  /** The server's `Keep-Alive: max=` hint, if it sent one. */
  readonly serverMaxRequests: number | undefined;
  /** In its pool's free stack: FreeStack's mark, set and cleared there only (false when made). */
  inFreeStack: boolean;
  /**
   * HTTP/2: settles once the server's first SETTINGS arrived (its stream limit is known); rejects if
   * the session failed before that. The pool counts the connection as dialing until then.
   */
  readonly ready?: Promise<void> | undefined;
  /**
   * Should the pool give the loop a turn to read a FIN or RST this idle connection may have received,
   * before writing `ex` on it? (`fromIdle`: it waited in the idle list; `idleMs`: for how long.) A
   * connection that checks its own liveness (an HTTP/2 PING) says no.
   */
  wantsLivenessTurn(fromIdle: boolean, idleMs: number, retrySafe: boolean): boolean;
  /**
   * May this connection carry `ex`, which must have a new connection (a safe retry of a request that
   * failed on a stale one)?
   */
  countsAsNewFor(ex: Exchange): boolean;
  /** Sends an exchange. The pool has checked that a slot is free. */
  dispatch(ex: Exchange): void;
  /** Closes when no exchange is active; HTTP/2 stops taking new streams and drains. */
  close(reason: CloseReason): void;
  /** Closes now; exchanges in progress fail with `err`. */
  destroy(reason: CloseReason, err: Error): void;
  /** Arms (or disarms, ms <= 0) the idle timer; the pool decides when an idle connection expires. */
  armIdleTimer(ms: number): void;
  /** Allow (false) or prevent (true) an idle connection from keeping the process alive. */
  setKeepsProcessAlive(on: boolean): void;
}

/** What a connection tells its pool. */
export interface ConnectionOwner {
  /** A slot became free and the connection can take another exchange. */
  onConnectionReleased(conn: PoolConnection): void;
  /** The connection is gone; `reason` is counted. */
  onConnectionClosed(conn: PoolConnection, reason: CloseReason): void;
  /** The idle timer fired. */
  onIdleTimer(conn: PoolConnection): void;
  /**
   * An exchange failed before its response head. `retryable` is the connection's view: it had been
   * used before, and no byte of this response arrived. The pool decides the rest (method, body,
   * options) and either sends it again on a new connection or rejects it.
   */
  onExchangeFailed(ex: Exchange, err: Error, retryable: boolean): void;
  /**
   * HTTP/2: the server did not process the exchange (REFUSED_STREAM, or a stream above a GOAWAY's
   * last-stream-id), or it was never sent (the session failed its liveness PING). The connection has
   * checked that the body can be sent again and no longer offers a slot to it; the pool sends it
   * again, first in line, on another connection. `replay`: it had been sent (counted as a retry).
   * When the pool cannot (the agent is closing), the exchange is rejected with `err`.
   */
  resend(ex: Exchange, err: Error, replay: boolean): void;
}
