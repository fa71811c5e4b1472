import { InvalidArgumentError } from '../errors.js';
import type { Target } from '../pool/agent.js';

/** A request URL split into what picks the connection (target) and what goes on the request line. */
export interface ParsedUrl {
  readonly target: Target;
  /** Host header value: host, plus :port when not the scheme's default. */
  readonly host: string;
  /** Path and query, as sent on the request line. */
  readonly path: string;
  /** Normalized URL, for res.url and errors. */
  readonly href: string;
}

/**
 * The URLs' scheme-and-authority prefixes seen recently ("https://host:port"), each with its parse.
 * Parsing `http://host:port` with `new URL()` on every request is a measurable part of a small
 * request's cost; the prefix repeats, so its parse is kept.
 */
const authorities = new Map<string, { target: Target; host: string }>();
const MAX_AUTHORITIES = 512;
/** The last URL string the fast path parsed, and its parse (never changed by whoever gets it). */
let lastSimple: ParsedUrl | undefined;
/** Characters that make a URL simple enough for the fast path (no userinfo, IDN, escapes or fragments). */
const SIMPLE_AUTHORITY = /^[a-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$/;

/**
 * A path that needs no normalizing: starts with '/', visible ASCII only, no '#'. Anything else
 * (spaces to percent-encode, dot segments are kept as sent, control characters to refuse) takes
 * the URL parser's slow path.
 */
export function isSimplePath(path: string): boolean {
  if (path.charCodeAt(0) !== 0x2f) return false;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x23) return false;
  }
  return true;
}

export function parseUrl(input: string | URL): ParsedUrl {
  if (typeof input === 'string') {
    // Code in a loop sends to the same URL again and again: the last fast-path parse is kept whole.
    if (lastSimple !== undefined && input === lastSimple.href) return lastSimple;
    let schemeEnd = -1;
    let secure = false;
    if (input.startsWith('http://')) schemeEnd = 7;
    else if (input.startsWith('https://')) {
      schemeEnd = 8;
      secure = true;
    }
    if (schemeEnd !== -1) {
      let slash = input.indexOf('/', schemeEnd);
      if (slash === -1) slash = input.length;
      const path = slash === input.length ? '/' : input.slice(slash);
      if (isSimplePath(path)) {
        // Keyed by scheme and authority as written, whole: anything shorter lets one stand for another
        // (a key of "s" + authority for https once made https://H and http://sH the same target).
        const origin = input.slice(0, slash);
        let known = authorities.get(origin);
        if (known === undefined) {
          const authority = origin.slice(schemeEnd);
          if (SIMPLE_AUTHORITY.test(authority)) {
            known = parseAuthority(secure, authority, input);
            if (authorities.size >= MAX_AUTHORITIES) authorities.clear();
            authorities.set(origin, known);
          }
        }
        if (known !== undefined) {
          lastSimple = { target: known.target, host: known.host, path, href: input };
          return lastSimple;
        }
      }
    }
  }
  return parseWithUrl(input);
}

function parseAuthority(secure: boolean, authority: string, input: string): { target: Target; host: string } {
  let url: URL;
  try {
    url = new URL(`${secure ? 'https' : 'http'}://${authority}/`);
  } catch (err) {
    // The pattern above lets through what only the URL parser can refuse: a port over 65535, an
    // IPv4 address with five parts or a part over 255, an IPv6 address with ':::'.
    throw invalidUrl(input, err);
  }
  return fromUrl(url);
}

function fromUrl(url: URL): { target: Target; host: string } {
  const secure = url.protocol === 'https:';
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    target: { secure, hostname, port, origin: `${url.protocol}//${url.host}` },
    host: url.host,
  };
}

/**
 * ASCII control characters and DEL. The WHATWG URL parser silently removes CR, LF and TAB and
 * percent-encodes the others, so "http://h/a\r\nX-Injected: 1" would quietly become a request for a
 * different path: a control character in a URL string is refused instead.
 */
const URL_CONTROL = /[\x00-\x1f\x7f]/;

function refuseControls(input: string): void {
  if (URL_CONTROL.test(input)) {
    throw new InvalidArgumentError(
      `invalid URL ${JSON.stringify(input.length > 64 ? `${input.slice(0, 64)}...` : input)}: contains a control character`,
    );
  }
}

function parseWithUrl(input: string | URL): ParsedUrl {
  if (typeof input === 'string') refuseControls(input);
  else if (typeof input !== 'object' || input === null) {
    // Any object is read as a URL (its protocol, host, pathname...), whatever made it.
    throw new InvalidArgumentError(
      `the URL must be a string or a URL, got ${input === null ? 'null' : typeof input}`,
    );
  }
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input;
  } catch (err) {
    throw invalidUrl(String(input), err);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`unsupported URL scheme ${url.protocol} (only http: and https:)`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidArgumentError(
      'credentials in the URL are not sent; pass an authorization header instead',
    );
  }
  const { target, host } = fromUrl(url);
  return { target, host, path: `${url.pathname}${url.search}`, href: url.href };
}

/** Resolves `input` against `base` (a Client's baseUrl); absolute inputs stand alone. */
export function resolveAgainst(base: string | undefined, input: string | URL): string | URL {
  if (base === undefined || typeof input !== 'string') return input;
  refuseControls(input); // new URL(input, base) below would drop them
  if (input.startsWith('http://') || input.startsWith('https://')) return input;
  if (input.startsWith('/')) return base.endsWith('/') ? base + input.slice(1) : base + input;
  try {
    return new URL(input, base.endsWith('/') ? base : `${base}/`).href;
  } catch (err) {
    throw invalidUrl(input, err); // e.g. 'https:256.0.0.1', another scheme's authority
  }
}

/**
 * The URL parser says only "Invalid URL" (a TypeError): name the part that is wrong, as far as it can
 * be told from the text, in an InvalidArgumentError.
 */
function invalidUrl(input: string, cause: unknown): InvalidArgumentError {
  const shown = JSON.stringify(input.length > 128 ? `${input.slice(0, 128)}...` : input);
  return new InvalidArgumentError(`invalid URL ${shown}: ${whatIsWrong(input)}`, { cause });
}

function whatIsWrong(input: string): string {
  // Special schemes (http, https) take an authority after any run of '/' and '\\', or none at all
  // ('https:host' means https://host/).
  const m = /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):)?[/\\]*([^/?#\\]*)/.exec(input);
  if (m === null || m[1] === undefined) return 'not an absolute URL (it has no scheme)';
  let authority = m[2];
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1);
  let host = authority;
  let port: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close !== -1) {
      host = authority.slice(0, close + 1);
      const rest = authority.slice(close + 1);
      if (rest.startsWith(':')) port = rest.slice(1);
      else if (rest !== '') return `unexpected ${JSON.stringify(rest)} after the host ${host}`;
    }
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon !== -1) {
      host = authority.slice(0, colon);
      port = authority.slice(colon + 1);
    }
  }
  if (host === '') return 'no host';
  if (port !== undefined && port !== '') {
    if (!/^[0-9]+$/.test(port)) return `invalid port ${JSON.stringify(port)}`;
    if (Number(port) > 65535) return `port ${port} is out of range (0-65535)`;
  }
  return `invalid host ${JSON.stringify(host)}`;
}
