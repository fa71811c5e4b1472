/**
 * The retry policy: which outcomes of an attempt are worth another, and how long to wait first.
 * The decisions are pure functions of the facts (status, Retry-After, error, attempt number, the
 * wall clock and a random number passed in), tested with numbers; `withRetries` is the thin loop
 * around them that Client.request runs when a policy is on.
 *
 * Defaults, when a `retry` option is given (off otherwise):
 * - limit 2: at most three attempts. A retry helps a blip; a server that fails three times in a row
 *   is not helped by a fourth, and every retry multiplies the load it is already failing under.
 * - status codes 408, 429, 500, 502, 503, 504: the server timed out, asked to slow down, or failed
 *   in a way that is usually transient. 501, 505 and the other 4xx say the request itself is wrong.
 * - idempotent methods only (GET, HEAD, OPTIONS, TRACE, PUT, DELETE); any method with
 *   `idempotent: true`. A 500 to a POST does not say whether it took effect.
 * - exponential backoff with full jitter, 100 ms doubling up to 10 s: the spread of full jitter keeps
 *   clients that failed together from coming back together (AWS's "Exponential Backoff and Jitter").
 * - Retry-After (seconds or an HTTP-date) is the server's word and beats the backoff; one longer than
 *   maxRetryAfterMs (60 s) is not waited for: the response is returned at once, the caller decides.
 */
import { AbortedError, ConnectError, InvalidArgumentError } from '../errors.js';
import { isUnanswered } from '../exchange/unanswered.js';
import type { Response } from '../response/response.js';

export interface RetryOptions {
  /** Retries after the first attempt; 0 = none. Default 2 (when a retry option is given). */
  limit?: number;
  /** Response statuses that are retried. Default 408, 429, 500, 502, 503, 504. */
  statusCodes?: readonly number[];
  /** Methods that are retried. Default the idempotent ones; `idempotent: true` adds the request's own. */
  methods?: readonly string[];
  /** Exponential backoff with full jitter: a random wait up to min(maxMs, baseMs * 2^(retry - 1)). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** A Retry-After longer than this is not waited for: the response is returned. Default 60 000. */
  maxRetryAfterMs?: number;
}

/** RetryOptions resolved: every field set. */
export interface RetryPolicy {
  readonly limit: number;
  readonly statusCodes: ReadonlySet<number>;
  readonly methods: ReadonlySet<string>;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  limit: 2,
  statusCodes: new Set([408, 429, 500, 502, 503, 504]),
  methods: new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']),
  baseMs: 100,
  maxMs: 10_000,
  maxRetryAfterMs: 60_000,
};

/** A body left unread by an attempt that is retried is drained up to this, else its connection closed. */
const DRAIN_LIMIT = 64 * 1024;

/**
 * Checks `options` (an InvalidArgumentError naming the field) and fills what it leaves out from
 * `base` (a Client's policy), else from the defaults. undefined: no retry option anywhere.
 */
export function resolveRetry(options: unknown, base: RetryPolicy | undefined): RetryPolicy | undefined {
  if (options === undefined) return base;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`retry must be an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  const from = base ?? DEFAULT_RETRY;
  const backoff = o.backoff;
  if (backoff !== undefined && (typeof backoff !== 'object' || backoff === null)) {
    throw new InvalidArgumentError(`retry.backoff must be an object, got ${describe(backoff)}`);
  }
  const b = (backoff ?? {}) as Record<string, unknown>;
  const policy: RetryPolicy = {
    limit: count('retry.limit', o.limit, from.limit, true),
    statusCodes: o.statusCodes === undefined ? from.statusCodes : statusSet(o.statusCodes),
    methods: o.methods === undefined ? from.methods : methodSet(o.methods),
    baseMs: count('retry.backoff.baseMs', b.baseMs, from.baseMs, false),
    maxMs: count('retry.backoff.maxMs', b.maxMs, from.maxMs, false),
    maxRetryAfterMs: count('retry.maxRetryAfterMs', o.maxRetryAfterMs, from.maxRetryAfterMs, false),
  };
  return policy;
}

function count(name: string, v: unknown, fallback: number, integer: boolean): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v >= 0) || (integer && !Number.isInteger(v))) {
    throw new InvalidArgumentError(
      `${name} must be ${integer ? 'an integer' : 'a number'} >= 0, got ${describe(v)}`,
    );
  }
  return v;
}

function statusSet(v: unknown): ReadonlySet<number> {
  if (!Array.isArray(v) || !v.every((s) => Number.isInteger(s) && s >= 100 && s <= 599)) {
    throw new InvalidArgumentError(`retry.statusCodes must be an array of status codes, got ${describe(v)}`);
  }
  return new Set(v as number[]);
}

function methodSet(v: unknown): ReadonlySet<string> {
  if (!Array.isArray(v) || !v.every((m) => typeof m === 'string' && m.length > 0)) {
    throw new InvalidArgumentError(`retry.methods must be an array of method names, got ${describe(v)}`);
  }
  return new Set((v as string[]).map((m) => m.toUpperCase()));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array with an invalid element';
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}...` : v);
  return typeof v;
}

/** May this request be retried at all? (A one-shot stream body cannot be sent twice.) */
export function mayRetry(
  policy: RetryPolicy,
  method: string,
  idempotent: boolean | undefined,
  replayable: boolean,
): boolean {
  return policy.limit > 0 && replayable && (idempotent === true || policy.methods.has(method));
}

/** The wait before retry number `retry` (1-based): full jitter, `random` in [0, 1). */
export function backoffMs(policy: RetryPolicy, retry: number, random: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** (retry - 1));
  return Math.floor(random * ceiling);
}

/**
 * Retry-After (RFC 9110 §10.2.3) as a wait in ms from `nowWall`: delay-seconds, or an HTTP-date
 * (a date in the past is 0). -1 when absent or not either form.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowWall: number): number {
  if (value === undefined) return -1;
  const v = (typeof value === 'string' ? value : (value[0] ?? '')).trim();
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date names its weekday and has a GMT zone; anything looser (a bare number with a sign,
  // "tomorrow") is not trusted to Date.parse's guesses.
  if (!/^[A-Za-z]{3}/.test(v)) return -1;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return -1;
  return at > nowWall ? at - nowWall : 0;
}

/**
 * After a response to attempt number `attempt`: the wait before the next attempt, or -1 for none
 * (the response is the answer). Assumes the request may be retried (mayRetry).
 */
export function delayAfterResponse(
  policy: RetryPolicy,
  attempt: number,
  status: number,
  retryAfter: () => string | readonly string[] | undefined,
  nowWall: number,
  random: number,
): number {
  if (attempt > policy.limit || !policy.statusCodes.has(status)) return -1;
  const asked = parseRetryAfter(retryAfter(), nowWall);
  if (asked > policy.maxRetryAfterMs) return -1;
  return asked >= 0 ? asked : backoffMs(policy, attempt, random);
}

/**
 * After attempt number `attempt` failed with `err`: the wait before the next attempt, or -1 (the
 * error is the answer). Only what a retry can cure: a connection refused, or closed or reset before
 * any byte of the response; never a timeout (the server may be working on it) or a parse error.
 */
export function delayAfterError(policy: RetryPolicy, attempt: number, err: unknown, random: number): number {
  if (attempt > policy.limit || !curable(err)) return -1;
  return backoffMs(policy, attempt, random);
}

function curable(err: unknown): boolean {
  if (isUnanswered(err)) return true;
  if (!(err instanceof ConnectError)) return false;
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET';
}

/** What the loop reads from outside: swapped in tests. */
export interface RetryEnv {
  random(): number;
  wallMs(): number;
  /** Resolves after `ms`, or rejects with the abort error when `signal` aborts first. */
  sleep(ms: number, signal: AbortSignal | undefined, origin: string | undefined): Promise<void>;
}

export const systemRetryEnv: RetryEnv = { random: Math.random, wallMs: Date.now, sleep };

/**
 * Sends attempts until one is the answer. `send(n)` makes attempt n. A response that is retried has
 * its body drained (or its connection closed, past 64 KiB) before the next attempt goes, so it
 * holds no lease meanwhile. The caller's signal cuts a wait short with WARMPOOL_ABORTED.
 */
export async function withRetries(
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  send: (attempt: number) => Promise<Response>,
  env: RetryEnv = systemRetryEnv,
): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    let delay: number;
    let drained: Promise<void> | undefined;
    let origin: string | undefined;
    try {
      const res = await send(attempt);
      delay = delayAfterResponse(
        policy,
        attempt,
        res.status,
        () => res.headers['retry-after'],
        env.wallMs(),
        env.random(),
      );
      if (delay < 0) return res;
      // Drained while the wait runs: its connection goes back to the pool, or is closed.
      drained = res.body.dump({ limit: DRAIN_LIMIT }).catch(ignore);
      origin = new URL(res.url).origin;
    } catch (err) {
      delay = delayAfterError(policy, attempt, err, env.random());
      if (delay < 0) throw err;
      origin = (err as { origin?: string }).origin;
    }
    await env.sleep(delay, signal, origin);
    if (drained !== undefined) await drained;
  }
}

function ignore(): void {}

function sleep(ms: number, signal: AbortSignal | undefined, origin: string | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortedWaiting(origin, signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedWaiting(origin, signal!));
    };
    // Not unref'd: the caller awaits this request, and the process must not exit under it.
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortedWaiting(origin: string | undefined, signal: AbortSignal): AbortedError {
  return new AbortedError(`request to ${origin ?? 'its origin'} aborted while waiting to retry`, {
    origin,
    cause: signal.reason,
  });
}
