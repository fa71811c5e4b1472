/**
 * The liveness turn: an exchange holds the connection it was given while the event loop reads
 * whatever may have arrived on it (a FIN, an RST), before anything is written (see
 * PoolConnection.wantsLivenessTurn for who pays it, and why). The connection is leased meanwhile,
 * neither idle nor busy.
 *
 * Immediates run in the check phase, right after the poll phase that reads sockets. Issued from a
 * timer callback, the first turn follows a poll; issued from an I/O callback (the poll phase itself: a
 * server's request handler, a socket's data, a worker's message, and every promise continuation of
 * those), the first turn ends in that same iteration's check phase with no poll in between, and only
 * the second follows one. A connection that died in the first turn skips the second.
 */
import type { PoolConnection } from '../exchange/connection.js';
import type { Exchange } from '../exchange/exchange.js';

export interface LivenessTurnOwner {
  /** The turn is over: `conn` is closed if it proved dead, and `ex` settled if its caller gave up. */
  afterLivenessTurn(conn: PoolConnection, ex: Exchange): void;
}

export class LivenessTurns {
  private readonly held = new Set<PoolConnection>();

  constructor(private readonly owner: LivenessTurnOwner) {}

  /** Is `conn` held for an exchange's liveness turn? */
  has(conn: PoolConnection): boolean {
    return this.held.size !== 0 && this.held.has(conn);
  }

  start(conn: PoolConnection, ex: Exchange): void {
    this.held.add(conn);
    setImmediate(turn, this, conn, ex, true);
  }

  /** @internal */
  end(conn: PoolConnection, ex: Exchange): void {
    this.held.delete(conn);
    this.owner.afterLivenessTurn(conn, ex);
  }
}

function turn(turns: LivenessTurns, conn: PoolConnection, ex: Exchange, first: boolean): void {
  if (first && !conn.closed && !ex.settled) {
    setImmediate(turn, turns, conn, ex, false);
    return;
  }
  turns.end(conn, ex);
}
