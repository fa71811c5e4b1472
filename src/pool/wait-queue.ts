/**
 * The requests of one origin waiting for a connection, in the order they are to be served.
 *
 * A doubly linked list threaded through the waiters themselves (no node allocated per waiter), so a
 * waiter that gives up (aborted, timed out) is unlinked at once, in O(1), wherever it stands: a
 * cancelled waiter left in an array until the head of the queue reached it kept its request, its
 * body and its promise alive, and 100 000 of them held 150 MiB while the queue said it was empty.
 *
 * Waiters added at the back get a deadline of `now + timeout`; with one timeout per pool and a clock
 * that does not go back, those deadlines never decrease from the front to the back. Waiters put at
 * the front (a retry: it has waited its turn already) have none (0). So the queue is a run of
 * deadline-free waiters followed by waiters in deadline order, and expiring waiters never has to look
 * past the first one still in time. One timer per queue, armed for the earliest deadline.
 */
export interface Waiter<T> {
  /** The neighbours in the queue; both null and `inQueue` false when not queued. */
  prevWaiter: T | null;
  nextWaiter: T | null;
  inQueue: boolean;
  /** Monotonic ms after which it fails with a queue timeout; 0 = none. */
  queueDeadline: number;
  /** It must be served by a new connection (a safe retry); counted separately. */
  readonly needsNewConnection: boolean;
}

export class WaitQueue<T extends Waiter<T>> {
  private head: T | null = null;
  private tail: T | null = null;
  private timer: NodeJS.Timeout | undefined = undefined;

  /** `onDeadline` is called when the earliest deadline has come: it calls takeExpired(). */
  constructor(private readonly onDeadline: () => void) {}

  /** Waiters in the queue. */
  size = 0;
  /** Waiters in the queue that must have a new connection. */
  newConnectionWaiters = 0;

  get first(): T | null {
    return this.head;
  }

  /** Adds a waiter behind the others, to wait at most `timeoutMs` from `now` (0 = no limit). */
  pushBack(w: T, now: number, timeoutMs: number): void {
    w.queueDeadline = timeoutMs > 0 ? now + timeoutMs : 0;
    if (timeoutMs > 0 && this.timer === undefined) this.arm(timeoutMs);
    w.prevWaiter = this.tail;
    w.nextWaiter = null;
    if (this.tail === null) this.head = w;
    else this.tail.nextWaiter = w;
    this.tail = w;
    this.added(w);
  }

  /** Adds a waiter before the others, without a deadline. */
  pushFront(w: T): void {
    w.queueDeadline = 0;
    w.prevWaiter = null;
    w.nextWaiter = this.head;
    if (this.head === null) this.tail = w;
    else this.head.prevWaiter = w;
    this.head = w;
    this.added(w);
  }

  private added(w: T): void {
    w.inQueue = true;
    this.size++;
    if (w.needsNewConnection) this.newConnectionWaiters++;
  }

  /** Takes a waiter out of the queue; false if it was not in it. */
  remove(w: T): boolean {
    if (!w.inQueue) return false;
    const prev = w.prevWaiter;
    const next = w.nextWaiter;
    if (prev === null) this.head = next;
    else prev.nextWaiter = next;
    if (next === null) this.tail = prev;
    else next.prevWaiter = prev;
    w.prevWaiter = null;
    w.nextWaiter = null;
    w.inQueue = false;
    this.size--;
    if (w.needsNewConnection) this.newConnectionWaiters--;
    return true;
  }

  /**
   * Takes out every waiter whose deadline is at or before `now`, front to back, and returns them
   * (in queue order); the timer is armed again for the earliest deadline left.
   */
  takeExpired(now: number): T[] {
    const expired: T[] = [];
    let w = this.head;
    this.nextDeadline = 0;
    while (w !== null) {
      const next = w.nextWaiter;
      if (w.queueDeadline !== 0) {
        if (w.queueDeadline > now) {
          this.nextDeadline = w.queueDeadline;
          break;
        }
        this.remove(w);
        expired.push(w);
      }
      w = next;
    }
    if (this.timer === undefined && this.nextDeadline !== 0) this.arm(this.nextDeadline - now);
    return expired;
  }

  /** The earliest deadline left after takeExpired(); 0 if none. */
  nextDeadline = 0;

  /** Stops the timer (the queue is empty, or everything in it has gone). */
  stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(onQueueTimer, ms > 1 ? ms : 1, this);
    this.timer.unref();
  }

  /** @internal The timer fired. */
  fired(): void {
    this.timer = undefined;
    this.onDeadline();
  }
}

function onQueueTimer(queue: { fired(): void }): void {
  queue.fired();
}
