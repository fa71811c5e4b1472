import { InvalidArgumentError } from '../errors.js';
import type { Target } from '../pool/agent.js';

/** A request URL split into what picks the connection (target) and what goes on the request line. */
export interface ParsedUrl {
  target: Target;
  /** Host header value: host, plus :port when not the scheme's default. */
  host: string;
  /** Path and query, as sent on the request line. */
  path: string;
  /** Normalized URL, for res.url and errors. */
  href: string;
}

/**
 * The authorities seen recently. Parsing `http://host:port` with `new URL()` on every request is a
 * measurable part of a small request's cost; the authority part repeats, so its parse is kept.
 */
const authorities = new Map<string, { target: Target; host: string }>();
const MAX_AUTHORITIES = 512;
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
      const authority = input.slice(schemeEnd, slash);
      const path = slash === input.length ? '/' : input.slice(slash);
      if (isSimplePath(path)) {
        const key = secure ? `s${authority}` : authority;
        let known = authorities.get(key);
        if (known === undefined && SIMPLE_AUTHORITY.test(authority)) {
          known = parseAuthority(secure, authority);
          if (authorities.size >= MAX_AUTHORITIES) authorities.clear();
          authorities.set(key, known);
        }
        if (known !== undefined) return { target: known.target, host: known.host, path, href: input };
      }
    }
  }
  return parseWithUrl(input);
}

function parseAuthority(secure: boolean, authority: string): { target: Target; host: string } {
  const url = new URL(`${secure ? 'https' : 'http'}://${authority}/`);
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
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input;
  } catch (err) {
    throw new InvalidArgumentError(`invalid URL ${JSON.stringify(String(input))}`, { cause: err });
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
  return new URL(input, base.endsWith('/') ? base : `${base}/`).href;
}
