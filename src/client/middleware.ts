/**
 * Middleware: functions around a Client's requests, for signing (AWS SigV4), auth refresh, logging,
 * metrics. Each gets the request as a plain object and `next`, which sends it on (a changed copy,
 * if it likes) and resolves with the Response; the first in the list is the outermost. Below the
 * last one is the Client's core: the retry policy around one send, so a middleware sees one call
 * per request, however many attempts it took (`res.attempts`).
 *
 * Only a Client that has middleware builds the plain object: a Client without any goes straight
 * to its core, as if the feature did not exist.
 */
import { InvalidArgumentError } from '../errors.js';
import type { OutgoingHeaders } from '../headers.js';
import type { Response } from '../response/response.js';
import type { RequestInit } from './client.js';

/** The request as middleware sees it. */
export interface MiddlewareRequest extends Omit<RequestInit, 'method' | 'headers'> {
  /** Absolute (a Client's baseUrl already applied). */
  url: string;
  /** Upper case as given; default GET. */
  method: string;
  /** Lowercase names; the Client's default headers merged in; a repeated field is an array. */
  headers: Record<string, string | string[]>;
}

export type Middleware = (req: MiddlewareRequest, next: MiddlewareNext) => Promise<Response>;
export type MiddlewareNext = (req: MiddlewareRequest) => Promise<Response>;

/** A list of middleware, checked: each a function. */
export function checkMiddleware(list: unknown): readonly Middleware[] {
  if (!Array.isArray(list) || !list.every((m) => typeof m === 'function')) {
    throw new InvalidArgumentError(
      'middleware must be an array of functions (req, next) => Promise<Response>',
    );
  }
  return list.slice() as Middleware[];
}

/**
 * The plain request object: `init`'s options as given, with url, method and headers normalized.
 * `headers` are the merged default and request headers (see mergeHeaders).
 */
export function middlewareRequest(
  url: string,
  init: RequestInit,
  headers: OutgoingHeaders | undefined,
): MiddlewareRequest {
  return { ...init, url, method: init.method ?? 'GET', headers: headerRecord(headers) };
}

/** Headers in any accepted shape as a record with lowercase names; a repeated name is an array. */
export function headerRecord(h: OutgoingHeaders | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (h === undefined) return out;
  const add = (name: string, value: unknown): void => {
    const lower = name.toLowerCase();
    const v = String(value);
    const had = out[lower];
    if (had === undefined) out[lower] = v;
    else if (Array.isArray(had)) had.push(v);
    else out[lower] = [had, v];
  };
  if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [n, v] of h as Iterable<readonly [string, string]>) add(n, v);
    return out;
  }
  const rec = h as Record<string, string | number | readonly string[] | undefined>;
  for (const name of Object.keys(rec)) {
    const v = rec[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) add(name, x);
    else add(name, v);
  }
  return out;
}

/** Runs `req` through `list` from index `i`; past the last, `core` sends it. */
export function runMiddleware(
  list: readonly Middleware[],
  i: number,
  req: MiddlewareRequest,
  core: MiddlewareNext,
): Promise<Response> {
  if (i === list.length) return core(req);
  const next: MiddlewareNext = (changed) => {
    if (typeof changed !== 'object' || changed === null || typeof changed.url !== 'string') {
      return Promise.reject(
        new InvalidArgumentError('middleware must call next() with a request object (with a string url)'),
      );
    }
    return runMiddleware(list, i + 1, changed, core);
  };
  try {
    const out = list[i]!(req, next);
    // A middleware that returns a plain value (or throws) still makes a promise.
    return Promise.resolve(out);
  } catch (err) {
    return Promise.reject(err);
  }
}
