import type { Client, RequestInit as WarmpoolRequestInit } from '../client/client.js';
import { type Hop, type RedirectMode, followRedirects, isRedirectStatus } from '../client/redirect.js';
import { resolveAgainst } from '../client/target.js';
import type { TlsOptions } from '../dial/dial.js';
import { InvalidArgumentError } from '../errors.js';
import type { Agent } from '../pool/agent.js';
import { ACCEPT_ENCODING, decodeResponse } from '../response/decode.js';
import type { Response as WarmpoolResponse } from '../response/response.js';
import { FetchInputError, extractBody } from './body-init.js';
import { toFetchResponse } from './response.js';
import { isNormalizedHttpUrl } from './url.js';

/**
 * fetch(): the WHATWG fetch API as Node's built-in fetch implements it, on warmpool's pool. A thin
 * layer over Client.request(): it turns the standard's inputs into a request, follows redirects and
 * undoes content codings with the core's own parts (redirect.ts, decode.ts), and hands back a real
 * global Response. What it knowingly does differently is listed in the README.
 */

/** fetch()'s options: the standard's RequestInit, plus warmpool's own. */
export interface FetchInit {
  method?: string;
  headers?: RequestInit['headers'];
  /** The standard's bodies, and beyond it a Node Readable or any AsyncIterable<Uint8Array>. */
  body?: RequestInit['body'] | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;
  /** 'follow' (default, up to 20), 'manual' (the redirect is the response), 'error'. */
  redirect?: RedirectMode;
  signal?: AbortSignal | null;
  /** Required ('half') for a ReadableStream body, as the standard says. */
  duplex?: 'half';
  /** The pool to use; default the process-wide one (or the Client's, for client.fetch()). */
  agent?: Agent;
  headersTimeout?: number;
  bodyTimeout?: number;
  retryOnStale?: boolean;
  /** Allow a safe retry of a non-idempotent method on a stale connection. */
  idempotent?: boolean;
  tls?: TlsOptions;
  /** Connect to this unix domain socket instead of the URL's host and port. */
  socketPath?: string;
  /** The standard's members that have no meaning outside a browser; accepted and ignored, as by Node's fetch. */
  mode?: string;
  credentials?: string;
  cache?: string;
  referrer?: string;
  referrerPolicy?: string;
  integrity?: string;
  keepalive?: boolean;
  priority?: string;
  window?: null;
}

export type FetchInput = string | URL | Request;

/** The standard's redirect limit (fetch §4.4 HTTP-redirect fetch, step 5). */
const MAX_REDIRECTS = 20;
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
/** Methods the standard upper-cases when given in any case (PATCH is not among them). */
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Headers fetch adds unless the caller set them: what Node's fetch sends (accept, and the codings it
 * decodes), and a user-agent, which some APIs require. Frozen: a request with these alone reuses the
 * head encoded for the last such request (encodeRequestHead).
 */
const DEFAULT_HEADERS: ReadonlyArray<readonly [string, string]> = Object.freeze([
  Object.freeze(['accept', '*/*'] as const),
  Object.freeze(['accept-encoding', ACCEPT_ENCODING] as const),
  Object.freeze(['user-agent', 'warmpool'] as const),
]);

/** What one fetch sends first, and how: the input and init checked and turned into warmpool's terms. */
interface Prepared {
  first: Hop;
  options: WarmpoolRequestInit;
  redirect: RedirectMode;
  signal: AbortSignal | undefined;
}

/**
 * The options of the usual fetch, `fetch(url)` or `fetch(url, { agent })`: a GET with the default
 * headers and nothing else. Shared by every such request (Client.request() only reads what it is given).
 */
const PLAIN_GET: WarmpoolRequestInit = Object.freeze({ method: 'GET', headers: DEFAULT_HEADERS });

/** Sends a fetch through `client`. fetch() and client.fetch() both come here. */
export function fetchThrough(client: Client, input: FetchInput, init?: FetchInit): Promise<Response> {
  let prepared: Prepared;
  try {
    prepared =
      typeof input === 'string' && (init === undefined || isPlainGet(init, client))
        ? plainGet(input, client)
        : prepare(client, input, init === undefined ? {} : init);
  } catch (err) {
    return Promise.reject(err);
  }
  return exchange(client, prepared);
}

/**
 * True for an init that asks for nothing but what PLAIN_GET sends (no member set but the Client's own
 * agent), which is most of them: such a fetch skips the checks and conversions of prepare().
 */
function isPlainGet(init: FetchInit, client: Client): boolean {
  return (
    typeof init === 'object' &&
    init !== null &&
    (init.agent === undefined || init.agent === client.agent) &&
    init.method === undefined &&
    init.headers === undefined &&
    init.body === undefined &&
    init.redirect === undefined &&
    init.signal == null &&
    init.headersTimeout === undefined &&
    init.bodyTimeout === undefined &&
    init.retryOnStale === undefined &&
    init.idempotent === undefined &&
    init.tls === undefined &&
    init.socketPath === undefined
  );
}

function plainGet(input: string, client: Client): Prepared {
  let url: string;
  try {
    url = parseInput(input, client.baseUrl);
  } catch (err) {
    throw fetchError(err, undefined);
  }
  return {
    first: { url, method: 'GET', headers: DEFAULT_HEADERS as Array<[string, string]>, body: undefined },
    options: PLAIN_GET,
    redirect: 'follow',
    signal: undefined,
  };
}

/** The input and init as the standard reads them; throws what fetch rejects with. */
function prepare(client: Client, input: FetchInput, init: FetchInit): Prepared {
  if (typeof init !== 'object' || init === null) {
    throw new TypeError(`fetch options must be an object, got ${init === null ? 'null' : typeof init}`);
  }
  if (init.agent !== undefined && init.agent !== client.agent) {
    throw new TypeError(
      "client.fetch() sends through its Client's agent: make the Client with { agent } instead",
    );
  }
  const request = input instanceof Request ? input : undefined;
  const signal = init.signal ?? request?.signal ?? undefined;
  let first: Hop;
  let redirect: RedirectMode;
  try {
    const url = parseInput(request !== undefined ? request.url : input, client.baseUrl);
    const method = normalizeMethod(init.method ?? request?.method ?? 'GET');
    redirect = init.redirect ?? (request?.redirect as RedirectMode | undefined) ?? 'follow';
    if (redirect !== 'follow' && redirect !== 'manual' && redirect !== 'error') {
      throw new FetchInputError(`redirect must be 'follow', 'manual' or 'error', got ${String(redirect)}`);
    }
    const bodyInit = init.body !== undefined ? init.body : request?.body;
    const extracted = extractBody(bodyInit, init.duplex ?? (request !== undefined ? 'half' : undefined));
    if (extracted.body !== undefined && (method === 'GET' || method === 'HEAD')) {
      throw new FetchInputError('Request with GET/HEAD method cannot have body.');
    }
    const headers = requestHeaders(init.headers ?? request?.headers, extracted.contentType, extracted.length);
    first = { url, method, headers, body: extracted.body };
  } catch (err) {
    throw fetchError(err, signal);
  }
  const options: WarmpoolRequestInit = {
    method: first.method,
    headers: first.headers,
    body: first.body,
    signal,
    headersTimeout: init.headersTimeout,
    bodyTimeout: init.bodyTimeout,
    retryOnStale: init.retryOnStale,
    idempotent: init.idempotent,
    tls: init.tls,
    socketPath: init.socketPath,
  };
  return { first, options, redirect, signal };
}

/** Sends what prepare() made, follows the redirects it allows, and makes the global Response. */
async function exchange(client: Client, { first, options, redirect, signal }: Prepared): Promise<Response> {
  try {
    let response = await client.request(first.url, options);
    let count = 0;
    if (isRedirectStatus(response.status) && redirect !== 'manual') {
      // Only a redirect pays for the loop (and its closure): most responses are not one.
      const send = (hop: Hop): Promise<WarmpoolResponse> =>
        client.request(hop.url, { ...options, method: hop.method, headers: hop.headers, body: hop.body });
      ({ response, count } = await followRedirects(send, first, MAX_REDIRECTS, redirect, response));
    }
    return toFetchResponse(decodeResponse(response, first.method), first.method, count, signal);
  } catch (err) {
    throw fetchError(err, signal);
  }
}

/**
 * The URL as the standard parses it (relative to a Client's baseUrl, for client.fetch()) (so res.url is the normalized one: a default port dropped, dot
 * segments resolved, the host lowercased, as Node's fetch gives it). Only http(s) is fetched here:
 * Node's fetch also does data: and blob: URLs, which need no pool.
 */
function parseInput(input: unknown, baseUrl: string | undefined): string {
  let url: URL;
  if (input instanceof URL) url = input;
  else if (typeof input === 'string') {
    // A Client's baseUrl is a prefix (baseUrl + path), as for its request().
    const resolved = resolveAgainst(baseUrl, input);
    if (typeof resolved === 'string' && isNormalizedHttpUrl(resolved)) return resolved;
    try {
      url = typeof resolved === 'string' ? new URL(resolved) : resolved;
    } catch (err) {
      throw new FetchInputError(`Failed to parse URL from ${input}`, { cause: err });
    }
  } else throw new FetchInputError('fetch input must be a string, a URL or a Request');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FetchInputError(`fetch of a ${url.protocol} URL is not supported (only http: and https:)`);
  }
  return url.href;
}

function normalizeMethod(method: unknown): string {
  // Nearly every fetch's method, already as the checks below would leave it.
  if (method === 'GET') return method;
  if (typeof method !== 'string' || !TOKEN.test(method)) {
    throw new FetchInputError(`'${String(method)}' is not a valid HTTP method.`);
  }
  const upper = method.toUpperCase();
  if (FORBIDDEN_METHODS.has(upper)) throw new FetchInputError(`'${method}' HTTP method is unsupported.`);
  return NORMALIZED_METHODS.has(upper) ? upper : method;
}

/**
 * The request's header lines: the caller's (normalized as the standard's Headers does, which also
 * checks them), the body's Content-Type and length, and the defaults the caller did not set.
 */
function requestHeaders(
  init: RequestInit['headers'] | undefined,
  contentType: string | null,
  length: number,
): Array<readonly [string, string]> {
  if (init === undefined && contentType === null && length === -1)
    return DEFAULT_HEADERS as Array<[string, string]>;
  const lines: Array<readonly [string, string]> = [];
  const seen = new Set<string>();
  if (init !== undefined) {
    const headers = init instanceof Headers ? init : new Headers(init);
    for (const line of headers) {
      lines.push(line);
      seen.add(line[0]);
    }
  }
  if (contentType !== null && !seen.has('content-type')) lines.push(['content-type', contentType]);
  if (length >= 0 && !seen.has('content-length')) lines.push(['content-length', String(length)]);
  for (const line of DEFAULT_HEADERS) if (!seen.has(line[0])) lines.push(line);
  return lines;
}

/**
 * What a failed fetch rejects with, as Node's fetch: the abort reason once the signal fired; a
 * TypeError for bad input (its message says what was wrong); and TypeError('fetch failed') with the
 * warmpool error as its `cause` for everything the network did.
 */
function fetchError(err: unknown, signal: AbortSignal | undefined | null): unknown {
  if (signal?.aborted) return signal.reason;
  if (err instanceof TypeError) return err;
  if (err instanceof InvalidArgumentError) return new TypeError(err.message, { cause: err });
  return new TypeError('fetch failed', { cause: err });
}
