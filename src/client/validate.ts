import { InvalidArgumentError } from '../errors.js';
import { checkSocketPath } from '../pool/options.js';

/**
 * The shapes of a request's and a Client's options, checked before anything else reads them: a
 * careless caller gets an InvalidArgumentError naming the option, not a TypeError from deep inside
 * (or, worse, a number sent as a method). The values themselves (a method's token, a header's
 * characters, a timeout's range, a body's type) are checked where they are used.
 */
export function checkRequestInit(init: unknown): void {
  if (init === undefined) return;
  if (typeof init !== 'object' || init === null) {
    throw new InvalidArgumentError(`request options must be an object, got ${describe(init)}`);
  }
  const o = init as Record<string, unknown>;
  if (o.method !== undefined && typeof o.method !== 'string') fail('method', 'a string', o.method);
  if (o.agent !== undefined && typeof (o.agent as { submit?: unknown } | null)?.submit !== 'function') {
    fail('agent', 'an Agent', o.agent);
  }
  checkCommon(o);
  if (o.signal !== undefined && !isSignal(o.signal)) fail('signal', 'an AbortSignal', o.signal);
  if (o.idempotent !== undefined && typeof o.idempotent !== 'boolean')
    fail('idempotent', 'a boolean', o.idempotent);
  if (o.onInformation !== undefined && typeof o.onInformation !== 'function') {
    fail('onInformation', 'a function', o.onInformation);
  }
  // Checked here, not only where it is used: it is used only with an Expect: 100-continue header.
  if (
    o.expectContinueTimeout !== undefined &&
    !(typeof o.expectContinueTimeout === 'number' && o.expectContinueTimeout >= 0)
  ) {
    fail('expectContinueTimeout', 'a number >= 0', o.expectContinueTimeout);
  }
  checkSocketPath(o.socketPath);
  if (o.highWaterMark !== undefined && !(typeof o.highWaterMark === 'number' && o.highWaterMark >= 1)) {
    fail('highWaterMark', 'a number >= 1', o.highWaterMark);
  }
}

export function checkClientOptions(options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`Client options must be an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  if (o.baseUrl !== undefined && typeof o.baseUrl !== 'string') fail('baseUrl', 'a string', o.baseUrl);
  if (o.agent !== undefined && typeof (o.agent as { submit?: unknown } | null)?.submit !== 'function') {
    fail('agent', 'an Agent', o.agent);
  }
  checkCommon(o);
}

/** The options a request and a Client share (the timeouts are checked by numberOption). */
function checkCommon(o: Record<string, unknown>): void {
  if (o.headers !== undefined && (typeof o.headers !== 'object' || o.headers === null)) {
    fail('headers', 'an object or an iterable of [name, value] pairs', o.headers);
  }
  if (o.retryOnStale !== undefined && typeof o.retryOnStale !== 'boolean') {
    fail('retryOnStale', 'a boolean', o.retryOnStale);
  }
  if (o.tls !== undefined && (typeof o.tls !== 'object' || o.tls === null)) fail('tls', 'an object', o.tls);
  if (
    o.maxRedirections !== undefined &&
    !(typeof o.maxRedirections === 'number' && Number.isInteger(o.maxRedirections) && o.maxRedirections >= 0)
  ) {
    fail('maxRedirections', 'an integer >= 0', o.maxRedirections);
  }
  if (o.decompress !== undefined && typeof o.decompress !== 'boolean')
    fail('decompress', 'a boolean', o.decompress);
}

function isSignal(v: unknown): boolean {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as AbortSignal).aborted === 'boolean' &&
    typeof (v as AbortSignal).addEventListener === 'function' &&
    typeof (v as AbortSignal).removeEventListener === 'function'
  );
}

function fail(name: string, expected: string, got: unknown): never {
  throw new InvalidArgumentError(`${name} must be ${expected}, got ${describe(got)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}
