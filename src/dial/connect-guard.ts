import { AbortedError, ConnectTimeoutError } from '../errors.js';

/**
 * What ends a dial early, the same for a direct dial and one through a proxy: the connect timeout and
 * the caller's abort.
 */

/** After `ms` (none for 0), `fail` gets a ConnectTimeoutError saying `what` timed out. */
export function startConnectTimer(
  ms: number,
  origin: string,
  what: string,
  fail: (err: Error) => void,
): ReturnType<typeof setTimeout> | undefined {
  if (ms <= 0) return undefined;
  return setTimeout(() => fail(new ConnectTimeoutError(`${what} timed out after ${ms} ms`, { origin })), ms);
}

/** The error a dial fails with when the caller's signal fires while it connects. */
export function abortedWhileConnecting(origin: string, signal: AbortSignal | undefined): AbortedError {
  return new AbortedError(`request to ${origin} aborted while connecting`, { origin, cause: signal?.reason });
}
