/**
 * manual-clock: a Clock (src/clock.ts) a test can stop and move.
 *
 * By default both readings follow the real clocks. freezeMonotonic() stops the monotonic reading
 * where it is (what a VM snapshot restore or a frozen guest looks like from inside); advanceWall(ms)
 * steps the wall reading (the guest's clock catching up after a restore, or an NTP step when negative);
 * advanceMonotonic(ms) moves the monotonic reading forward.
 */
import { performance } from 'node:perf_hooks';
import type { Clock } from '../../src/clock.js';

export class ManualClock implements Clock {
  private monoOffset = 0;
  private wallOffset = 0;
  private frozenMono: number | undefined = undefined;

  monotonicMs(): number {
    return this.frozenMono ?? performance.now() + this.monoOffset;
  }

  wallMs(): number {
    return Date.now() + this.wallOffset;
  }

  /** The monotonic reading stands still from now on (until thawMonotonic). */
  freezeMonotonic(): void {
    this.frozenMono ??= this.monotonicMs();
  }

  /** The monotonic reading runs again from where it stood (the frozen time never happened). */
  thawMonotonic(): void {
    if (this.frozenMono === undefined) return;
    this.monoOffset = this.frozenMono - performance.now();
    this.frozenMono = undefined;
  }

  advanceMonotonic(ms: number): void {
    if (this.frozenMono !== undefined) this.frozenMono += ms;
    else this.monoOffset += ms;
  }

  /** Steps the wall reading; negative steps it back (NTP). */
  advanceWall(ms: number): void {
    this.wallOffset += ms;
  }
}

/**
 * Blocks this thread for `ms` without running the event loop: sockets are not read, timers do not
 * fire. What a process busy in a long synchronous task (or descheduled) looks like to its peers.
 */
export function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
