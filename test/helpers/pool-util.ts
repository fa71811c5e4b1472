/** Small utilities shared by the pool tests. */
import assert from 'node:assert/strict';
import { WarmpoolError } from '../../src/index.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `cond` every 5 ms until it holds. The bound only turns a hang into a readable failure; it is
 * never what a test measures.
 */
export async function waitFor(cond: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} did not happen`);
    await sleep(5);
  }
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Awaits `p`, which must reject with a WarmpoolError of `code` naming `origin`; returns the error. */
export async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  origin?: string,
): Promise<WarmpoolError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `expected a rejection with ${code}, but it resolved`);
  assert.ok(err instanceof WarmpoolError, `expected a WarmpoolError, got ${String(err)}`);
  assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
  if (origin !== undefined) assert.equal(err.origin, origin);
  return err;
}

/** Has the promise settled yet (after letting pending callbacks run)? */
export async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setImmediate(r));
  return settled;
}
