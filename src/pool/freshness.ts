/**
 * Whether a connection may take another request: pure functions of (connection, a reading of both
 * clocks, the options, what was learned of the server). Time is passed in, as OkHttp's
 * `closeConnections(now)` does, so the policy is tested with numbers, and every decision of one
 * dispatch uses one reading (reading a clock costs about as much as parsing a header field on some VMs).
 *
 * The decisions are made when a connection is taken, not by timers alone: timers do not fire while a
 * process is frozen, and a VM snapshot restore leaves the monotonic clock where it was.
 */
import type { CloseReason, PoolConnection } from '../exchange/connection.js';
import type { ResolvedAgentOptions } from './options.js';
import { idleMarginFor } from './server-idle-timeout.js';

/** One reading of both clocks. */
export interface Now {
  mono: number;
  wall: number;
}

/**
 * Milliseconds since (mono, wall): the larger of the two clocks' readings, never negative (DESIGN.md
 * invariant 4). After a freeze the monotonic clock has not moved but the wall clock has (and so has the
 * server's idle timer); after an NTP step back the monotonic clock still has. The larger is never too young.
 */
export function elapsed(now: Now, mono: number, wall: number): number {
  const m = now.mono - mono;
  const w = now.wall - wall;
  const larger = m > w ? m : w;
  return larger > 0 ? larger : 0;
}

export function idleFor(conn: PoolConnection, now: Now): number {
  return elapsed(now, conn.idleSinceMono, conn.idleSinceWall);
}

export function ageOf(conn: PoolConnection, now: Now): number {
  return elapsed(now, conn.createdMono, conn.createdWall);
}

/**
 * How long a connection may sit idle: idleTimeout, or the server's Keep-Alive hint, or the server's
 * learned idle timeout (`learnedMs`), each less a safety margin, whichever is shortest. The server's
 * timer started when it sent the response, a little before ours, and a request must reach it before
 * the timer fires, not merely leave before.
 */
export function idleLimit(conn: PoolConnection, idleTimeout: number, learnedMs: number | undefined): number {
  let limit = idleTimeout;
  const hint = conn.serverIdleTimeoutMs;
  if (hint !== undefined && hint - idleMarginFor(hint) < limit) limit = hint - idleMarginFor(hint);
  if (learnedMs !== undefined && learnedMs - idleMarginFor(learnedMs) < limit) {
    limit = learnedMs - idleMarginFor(learnedMs);
  }
  return limit > 0 ? limit : 0;
}

/**
 * Why a connection must take no new request whether idle or not, or null: past maxConnectionAge, or
 * at its request limit (ours, or the server's Keep-Alive max).
 */
export function wornOut(conn: PoolConnection, now: Now, o: ResolvedAgentOptions): CloseReason | null {
  if (o.maxConnectionAge > 0 && ageOf(conn, now) >= o.maxConnectionAge) return 'max-age';
  if (o.maxRequestsPerConnection > 0 && conn.requestCount >= o.maxRequestsPerConnection)
    return 'max-requests';
  if (conn.serverMaxRequests !== undefined && conn.requestCount >= conn.serverMaxRequests)
    return 'max-requests';
  return null;
}

/** Why an idle connection must not be used again, or null. */
export function retireReason(
  conn: PoolConnection,
  now: Now,
  o: ResolvedAgentOptions,
  learnedMs: number | undefined,
): CloseReason | null {
  if (idleFor(conn, now) >= idleLimit(conn, o.idleTimeout, learnedMs)) return 'idle-timeout';
  return wornOut(conn, now, o);
}

/**
 * Is an idle connection within the safety margin of the shortest idle age at which the server was
 * seen closing one (`lowestMs`, +Infinity when never)? A request that cannot be retried must not take it.
 */
export function nearServerTimeout(conn: PoolConnection, now: Now, lowestMs: number): boolean {
  if (lowestMs === Number.POSITIVE_INFINITY) return false;
  return idleFor(conn, now) >= lowestMs - idleMarginFor(lowestMs);
}
