/**
 * The connections of one origin that have a free slot: a stack, the most recently released on top,
 * so that surplus connections sink, stay idle and age out (LIFO). A connection that closed or filled
 * up while below the top is dropped when it comes up (takeFree), not searched for.
 */
import type { CloseReason, PoolConnection } from '../exchange/connection.js';
import { type Now, idleFor } from './freshness.js';

export class FreeStack {
  // Membership is a mark on the connection (inFreeStack), not a WeakSet: a WeakSet's has, add and
  // delete on every request cost 0.6 µs at C=1, where the hash table is never in cache.
  private readonly stack: PoolConnection[] = [];

  get top(): PoolConnection | undefined {
    return this.stack[this.stack.length - 1];
  }

  has(conn: PoolConnection): boolean {
    return conn.inFreeStack;
  }

  /** Puts `conn` on top unless it is in the stack already; true if it was put. */
  push(conn: PoolConnection): boolean {
    if (conn.inFreeStack) return false;
    conn.inFreeStack = true;
    this.stack.push(conn);
    return true;
  }

  /** Takes the top off. */
  pop(): void {
    const conn = this.stack.pop();
    if (conn !== undefined) conn.inFreeStack = false;
  }

  /** Takes `conn` off if it is on top: the common case for a connection that just closed. */
  dropIfTop(conn: PoolConnection): void {
    if (this.top === conn) this.pop();
  }

  /** Closes the least recently used idle connection, with `reason`; false if there is none. */
  closeOldestIdle(reason: CloseReason): boolean {
    for (const c of this.stack) {
      if (!c.closed && c.active === 0) {
        c.close(reason);
        return true;
      }
    }
    return false;
  }

  /** Closes every idle connection that has been idle at least `ms` by `now`, with `reason`. */
  closeIdleFor(ms: number, now: Now, reason: CloseReason): void {
    for (const c of [...this.stack]) {
      if (!c.closed && c.active === 0 && idleFor(c, now) >= ms) c.close(reason);
    }
  }
}
