/**
 * One Node timer kept for the life of a connection. Re-arming with the same delay only refresh()es it
 * (no allocation, no new timer-list entry), which is what lets a connection re-arm its deadline on
 * every request at almost no cost. Always unref'd: a connection's socket, not its timers, decides
 * whether the process stays alive.
 */
export class ReusableTimer {
  private timer: NodeJS.Timeout | undefined = undefined;
  private delay = 0;

  constructor(private readonly onFire: () => void) {}

  /** The delay the timer was last armed with (ms). */
  get ms(): number {
    return this.delay;
  }

  /** Fires `ms` from now (replacing any pending firing). */
  arm(ms: number): void {
    if (this.timer !== undefined && this.delay === ms) {
      this.timer.refresh();
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.delay = ms;
    this.timer = setTimeout(this.onFire, ms);
    this.timer.unref();
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
