import { RedirectError } from '../errors.js';
import { type OutgoingHeaders, getOwn, outgoingEntries } from '../headers.js';
import type { RequestBody } from '../request/body.js';
import type { Response } from '../response/response.js';

/**
 * Following redirects (RFC 9110 §15.4, and the fetch standard's "HTTP-redirect fetch", which Node's
 * fetch implements): used by fetch() (on by default) and by request() with `maxRedirections` (off by
 * default). The decisions are pure functions; the loop sends each hop through the caller's sender.
 */

/** What redirect modes fetch() has; request() always follows (up to its limit). */
export type RedirectMode = 'follow' | 'manual' | 'error';

/** One hop's request, as the loop sends it. */
export interface Hop {
  url: string;
  method: string;
  headers: OutgoingHeaders | undefined;
  body: RequestBody;
}

export interface Redirected {
  response: Response;
  /** Redirects followed to reach `response`. */
  count: number;
}

export type HopSender = (hop: Hop) => Promise<Response>;

export function isRedirectStatus(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** Headers that describe a request's content: dropped with the body (fetch's "request-body-header name"). */
const BODY_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-location',
  'transfer-encoding',
]);
/** Credentials meant for one origin: never sent on to another (a redirect is the server's say, not the caller's). */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/**
 * The next hop after a redirect response from `from` (the URL that answered), or null when it has no Location (the response is then
 * the answer, as in Node's fetch). Throws RedirectError for a Location that is not an http(s) URL.
 */
export function nextHop(hop: Hop, from: string, status: number, location: string | undefined): Hop | null {
  if (location === undefined) return null;
  let next: URL;
  try {
    next = new URL(asUtf8(location), from);
  } catch (err) {
    throw new RedirectError(
      `the ${status} redirect's Location ${JSON.stringify(location)} is not a URL`,
      status,
      {
        cause: err,
      },
    );
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new RedirectError(`the ${status} redirect leads to ${next.protocol}, not http: or https:`, status);
  }
  // 303 asks for a GET of another resource; 301 and 302 historically turned a POST into a GET,
  // which every client does and the fetch standard writes down. 307 and 308 keep method and body.
  const toGet =
    (status === 303 && hop.method !== 'GET' && hop.method !== 'HEAD') ||
    ((status === 301 || status === 302) && hop.method === 'POST');
  const crossOrigin = new URL(from).origin !== next.origin;
  if (!toGet && hop.body !== undefined && hop.body !== null && !isReplayable(hop.body)) {
    throw new RedirectError(
      `cannot follow the ${status} redirect: it must resend the request body, which is a one-shot stream ` +
        '(pass a function that returns the stream to make it replayable)',
      status,
    );
  }
  next.hash = '';
  return {
    url: next.href,
    method: toGet ? 'GET' : hop.method,
    headers: redirectHeaders(hop.headers, toGet, crossOrigin),
    body: toGet ? undefined : hop.body,
  };
}

/**
 * The headers for the next hop: `host` always goes (the new URL names the host), the body's headers
 * go with the body, and credentials go when the origin changes.
 */
export function redirectHeaders(
  headers: OutgoingHeaders | undefined,
  dropBody: boolean,
  crossOrigin: boolean,
): Array<[string, string]> | undefined {
  if (headers === undefined) return undefined;
  const out: Array<[string, string]> = [];
  for (const [name, value] of outgoingEntries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host') continue;
    if (dropBody && BODY_HEADERS.has(lower)) continue;
    if (crossOrigin && CREDENTIAL_HEADERS.has(lower)) continue;
    out.push([name, value]);
  }
  return out;
}

/**
 * Sends `first`, following redirects: at most `limit` of them, then RedirectError. `mode` 'manual'
 * hands the first redirect back; 'error' fails on it. Each redirect's body is drained (or, past 1 MiB,
 * its connection closed) before the next hop is sent. `firstResponse`: `first` was sent already and
 * this came back.
 */
export async function followRedirects(
  send: HopSender,
  first: Hop,
  limit: number,
  mode: RedirectMode = 'follow',
  firstResponse?: Response,
): Promise<Redirected> {
  let hop = first;
  for (let count = 0; ; count++) {
    const response = count === 0 && firstResponse !== undefined ? firstResponse : await send(hop);
    if (!isRedirectStatus(response.status) || mode === 'manual') return { response, count };
    const location = getOwn(response.headers, 'location');
    const next = nextHopOrFail(
      hop,
      response,
      typeof location === 'object' ? location[0] : location,
      count,
      limit,
      mode,
    );
    if (next === null) return { response, count };
    await response.body.dump().catch(() => {}); // a failed drain closed that connection; the next hop goes on
    hop = next;
  }
}

function nextHopOrFail(
  hop: Hop,
  response: Response,
  location: string | undefined,
  count: number,
  limit: number,
  mode: RedirectMode,
): Hop | null {
  const status = response.status;
  try {
    if (mode === 'error' && location !== undefined) {
      throw new RedirectError(`the server redirected (${status}) and redirect is 'error'`, status);
    }
    const next = nextHop(hop, response.url, status, location);
    if (next !== null && count >= limit) {
      throw new RedirectError(`more than ${limit} redirects (the last, ${status}, to ${next.url})`, status);
    }
    return next;
  } catch (err) {
    response.body.destroy();
    throw err;
  }
}

/** A body that can be sent once more: none, bytes, or a function that makes a new stream. */
function isReplayable(body: RequestBody): boolean {
  return typeof body === 'string' || body instanceof Uint8Array || typeof body === 'function';
}

/**
 * Header values arrive as latin1 (one char per byte). A Location with UTF-8 bytes in it (servers send
 * them, though RFC 3986 says to percent-encode) would be encoded twice if parsed so: read it as UTF-8.
 */
function asUtf8(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7e) return Buffer.from(value, 'latin1').toString('utf8');
  }
  return value;
}
