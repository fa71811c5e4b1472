/**
 * The idle timeout of one origin's server, learned from what the server does.
 *
 * Liveness checks see a close that has happened; they cannot see one that is about to. A request
 * written on a connection just as the server's idle timer fires is lost in flight, and when it
 * cannot be retried (a POST) the caller gets the error: against five common servers with a 1 s
 * keep-alive timeout, requests paced across that second lost 4 POSTs in 1 800. Most servers do not
 * announce their timeout (nginx sends no `Keep-Alive: timeout=` by default), but they show it: a
 * server that closes a connection that has been idle for t ms has an idle timeout of about t.
 *
 * The evidence is noisy, so:
 * - Closes that arrive together (within GROUP_MS) are one observation, at the longest idle age among
 *   them. A server's idle sweep closes connections of one idle age at once; a restart, or a process
 *   that was frozen and reads every close at once on waking, closes connections of many idle ages at
 *   once, and the youngest of those says nothing about the timeout.
 * - Closes of connections idle less than MIN_IDLE_MS are not idle timeouts (a server that closes right
 *   after a response has a request cap, or is shutting down).
 * - `lowestMs`, the shortest idle age of any observation, guards requests that cannot be retried: one
 *   close is enough to make them careful.
 * - `learnedMs`, the second shortest, is the timeout for everything else (and what stats() shows):
 *   two observations confirm it, so one odd close does not shorten every connection's life.
 * - A connection that served a request after being idle u ms proves the server keeps connections at
 *   least that long: observations at or below u were something else (a restart), and are dropped.
 * - The most recent KEEP observations are kept: a server whose timeout went down is learned anew.
 *
 * Pure: time is passed in, so tests drive it with numbers.
 */
export class ServerIdleTimeout {
  /** Observations, oldest first: the idle age (ms) at which the server closed, and when it was seen. */
  private readonly seen: Array<{ idleMs: number; at: number }> = [];
  /** Shortest idle age of any observation; +Infinity when none. */
  lowestMs = Number.POSITIVE_INFINITY;
  /** Second shortest: the learned timeout; undefined until two observations confirm one. */
  learnedMs: number | undefined = undefined;

  /** The server closed a connection that had been idle `idleMs`, seen at monotonic `now`. */
  observeClose(idleMs: number, now: number): void {
    if (idleMs < MIN_IDLE_MS) return;
    const last = this.seen[this.seen.length - 1];
    if (last !== undefined && now - last.at <= GROUP_MS) {
      if (idleMs > last.idleMs) last.idleMs = idleMs;
    } else {
      this.seen.push({ idleMs, at: now });
      if (this.seen.length > KEEP) this.seen.shift();
    }
    this.update();
  }

  /**
   * Connections sent a request after an idle time at least as long as one at which the server was
   * seen closing: if that request is answered, those observations were not the server's idle timeout.
   */
  private readonly proofs = new Map<object, number>();

  /** A request goes out on `conn`, idle `idleMs` before it. */
  sentAfterIdle(conn: object, idleMs: number): void {
    if (idleMs >= this.lowestMs) this.proofs.set(conn, idleMs);
  }

  /** `conn` answered the request it was given. */
  answered(conn: object): void {
    if (this.proofs.size === 0) return;
    const idleMs = this.proofs.get(conn);
    if (idleMs === undefined) return;
    this.proofs.delete(conn);
    this.observeAlive(idleMs);
  }

  /** `conn` is gone: what was sent on it proves nothing. */
  forget(conn: object): void {
    if (this.proofs.size !== 0) this.proofs.delete(conn);
  }

  /** A connection idle `idleMs` served a request: the server's timeout is longer than that. */
  observeAlive(idleMs: number): void {
    let kept = 0;
    for (const o of this.seen) if (o.idleMs > idleMs) this.seen[kept++] = o;
    if (kept === this.seen.length) return;
    this.seen.length = kept;
    this.update();
  }

  private update(): void {
    let lowest = Number.POSITIVE_INFINITY;
    let second = Number.POSITIVE_INFINITY;
    for (const o of this.seen) {
      if (o.idleMs < lowest) {
        second = lowest;
        lowest = o.idleMs;
      } else if (o.idleMs < second) {
        second = o.idleMs;
      }
    }
    this.lowestMs = lowest;
    this.learnedMs = second === Number.POSITIVE_INFINITY ? undefined : Math.round(second);
  }
}

/** Closes seen within this many ms of the previous observation are part of it. */
export const GROUP_MS = 50;
/** Closes of connections idle less than this are not idle timeouts. */
export const MIN_IDLE_MS = 100;
/** Observations kept. */
const KEEP = 8;

/**
 * How long before a server's idle timeout (announced or learned) a connection stops being used: a
 * quarter of it, between 100 ms and 1 s. The server's timer started when it sent its last response,
 * a little before ours, and a request must reach the server before the timer fires, not merely
 * leave before.
 */
export function idleMarginFor(timeoutMs: number): number {
  return Math.min(1000, Math.max(100, timeoutMs * 0.25));
}
