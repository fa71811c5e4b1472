/**
 * One Node timer kept for the life of a connection. Re-arming with the same delay only refresh()es it
 * (no allocation, no new timer-list entry), which is what lets a connection re-arm its deadline on
 * every request at almost no cost. Always unref'd: a connection's socket, not its timers, decides
 * whether the process stays alive.
 */
export class ReusableTimer {
  private timer: NodeJS.Timeout | undefined = undefined;
  private delay = 0;
  /** Armed and neither fired nor cleared since. */
  private pending = false;
  private readonly onFire: () => void;

  constructor(onFire: () => void) {
    this.onFire = () => {
      this.pending = false;
      onFire();
    };
  }

  /** The delay the timer was last armed with (ms). */
  get ms(): number {
    return this.delay;
  }

  /** Fires `ms` from now (replacing any pending firing). */
  arm(ms: number): void {
    this.pending = true;
    if (this.timer !== undefined && this.delay === ms) {
      this.timer.refresh();
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.delay = ms;
    this.timer = setTimeout(this.onFire, ms);
    this.timer.unref();
  }

  /**
   * Fires `ms` from now unless a firing is already pending, which is left alone. For expiries that
   * are re-checked when they fire (a connection's idle timeout): re-arming on every request would
   * cost a timer-list update each time, and the check re-arms for whatever remains.
   */
  armUnlessPending(ms: number): void {
    if (!this.pending) this.arm(ms);
  }

  clear(): void {
    this.pending = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
