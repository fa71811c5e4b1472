import { performance } from 'node:perf_hooks';

/**
 * The two clocks the pool reads. Injectable so tests can stop one and move the other.
 *
 * Why two: the monotonic clock is immune to NTP steps but stands still while a VM is frozen or a
 * snapshot is restored (the process never saw the time pass); the wall clock sees that time but can
 * be stepped back by NTP. An idle connection's age is the larger of the two elapsed times, so neither
 * failure can make a stale connection look young (DESIGN.md invariant 4).
 */
export interface Clock {
  /** Monotonic milliseconds (performance.now()). */
  monotonicMs(): number;
  /** Wall-clock milliseconds since the epoch (Date.now()). */
  wallMs(): number;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

/** A point in time as both clocks saw it. */
export interface Instant {
  mono: number;
  wall: number;
}

/** Milliseconds elapsed since `since`, the larger of the two clocks' readings (never negative). */
export function elapsedSince(clock: Clock, sinceMono: number, sinceWall: number): number {
  const mono = clock.monotonicMs() - sinceMono;
  const wall = clock.wallMs() - sinceWall;
  const larger = mono > wall ? mono : wall;
  return larger > 0 ? larger : 0;
}
