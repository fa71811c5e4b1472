/**
 * HTTP/1.1 request head: validation and serialization.
 *
 * Everything the caller passes is checked before the head is returned, so a bad method, path, header
 * name or value throws InvalidArgumentError and not a byte reaches the socket. The point is request
 * smuggling / header injection: a CR or LF in a value would let a caller-controlled string start a
 * new header or a whole new request. Strings are later written as latin1, which silently truncates
 * code points above 0xFF to their low byte (U+010A would become LF), so those are refused too.
 *
 * This runs once per request: validation is a loop over char codes against lookup tables, and the
 * special header names are recognised by length before any lowercasing.
 */
import { InvalidArgumentError } from '../errors.js';
import type { OutgoingHeaders } from '../headers.js';
import { TCHAR } from './fields.js';

/** No body and no framing header. */
export const BODY_NONE = -1;
/** Body of unknown length: sent with Transfer-Encoding: chunked. */
export const BODY_CHUNKED = -2;

export interface EncodedHead {
  /** The request head, latin1, ending in CRLFCRLF. */
  head: string;
  /** Final framing: BODY_NONE, BODY_CHUNKED, or the exact number of body bytes to send. */
  bodyLength: number;
  /** The caller asked for `Connection: close`: the connection must not be reused afterwards. */
  connectionClose: boolean;
  /** The caller sent `Expect: 100-continue`: the body waits for the server's go-ahead. */
  expectContinue: boolean;
}

/**
 * Field-value bytes (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text. Everything else (CR, LF, NUL, the
 * other controls, DEL) is refused. Indexed by char code; codes above 0xFF are refused separately.
 */
const VALUE_CHAR: Uint8Array = /* @__PURE__ */ (() => {
  const t = new Uint8Array(256);
  t[0x09] = 1;
  for (let c = 0x20; c <= 0xff; c++) t[c] = 1;
  t[0x7f] = 0;
  return t;
})();

function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TCHAR[c] === 0) return false;
  }
  return true;
}

function isValidValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || VALUE_CHAR[c] === 0) return false;
  }
  return true;
}

/** request-target: non-empty, visible ASCII only (anything else must already be percent-encoded). */
function isValidPath(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/** Lowercase ASCII compare of `s` with an already-lowercase `lower` of the same length. */
function equalsLower(s: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function describe(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

/** Whether a Connection value lists `token` (comma-separated, case-insensitive). */
function hasToken(value: string, token: string): boolean {
  for (const part of value.split(',')) {
    if (part.trim().toLowerCase() === token) return true;
  }
  return false;
}

/** Mutable state shared by the header loop; one object per call instead of closures. */
interface HeadBuilder {
  /** Serialize as well as validate (see encodeRequestHead's `serialize`). */
  serialize: boolean;
  head: string;
  hasHost: boolean;
  contentLength: number; // -1 = caller gave none
  connectionClose: boolean;
  expectContinue: boolean;
}

function addHeader(b: HeadBuilder, name: string, value: string): void {
  if (!isToken(name)) throw new InvalidArgumentError(`invalid header name ${describe(name)}`);
  if (!isValidValue(value)) {
    throw new InvalidArgumentError(
      `invalid value for header ${describe(name)}: contains CR, LF, NUL or a control character`,
    );
  }
  switch (name.length) {
    case 4:
      if (equalsLower(name, 'host')) {
        // RFC 9112 §3.2: a server must reject a request with more than one Host field.
        if (b.hasHost) throw new InvalidArgumentError('more than one host header');
        b.hasHost = true;
      }
      break;
    case 6:
      // RFC 9110 §10.1.1: the expectation's value is case-insensitive.
      if (equalsLower(name, 'expect') && value.trim().toLowerCase() === '100-continue')
        b.expectContinue = true;
      break;
    case 7:
      if (equalsLower(name, 'upgrade')) {
        throw new InvalidArgumentError(
          'the Upgrade header is not supported (protocol upgrades are not implemented)',
        );
      }
      break;
    case 10:
      if (equalsLower(name, 'connection')) {
        if (hasToken(value, 'upgrade')) {
          throw new InvalidArgumentError(
            'Connection: upgrade is not supported (protocol upgrades are not implemented)',
          );
        }
        if (hasToken(value, 'close')) b.connectionClose = true;
      }
      break;
    case 14:
      if (equalsLower(name, 'content-length')) {
        const v = value.trim();
        let n = v.length === 0 ? -1 : 0;
        for (let i = 0; i < v.length && n >= 0; i++) {
          const d = v.charCodeAt(i) - 0x30;
          n = d < 0 || d > 9 || n > (Number.MAX_SAFE_INTEGER - d) / 10 ? -1 : n * 10 + d;
        }
        if (n < 0) throw new InvalidArgumentError(`invalid content-length header value ${describe(value)}`);
        if (b.contentLength !== -1 && b.contentLength !== n) {
          throw new InvalidArgumentError('conflicting content-length headers');
        }
        if (b.contentLength === n) return; // an identical repeat adds nothing
        b.contentLength = n;
      }
      break;
    case 17:
      if (equalsLower(name, 'transfer-encoding')) {
        // The body's framing is ours to choose (chunked exactly when the length is unknown); a
        // caller-chosen coding would desynchronise what we send from what we announce.
        throw new InvalidArgumentError(
          'the transfer-encoding header is not supported; pass a body of unknown length instead',
        );
      }
      break;
  }
  if (b.serialize) b.head += `${name}: ${value}\r\n`;
}

/**
 * Validate everything, then return the request head (latin1, ending CRLFCRLF) and the final framing.
 * With `serialize` false the head is '' (validation and framing only: a request for an HTTP/2
 * origin, whose header block is built from the same validated fields).
 * bodyLength >= 0: a body of exactly that many bytes (`content-length` added unless the caller gave
 * the same value; a different value throws). BODY_CHUNKED: unknown length, `transfer-encoding:
 * chunked` is added, unless the caller supplied content-length, in which case the body is sent with
 * that length (returned as bodyLength). BODY_NONE: no framing header (a caller content-length other
 * than 0 throws, since no body would follow it).
 */
export function encodeRequestHead(
  method: string,
  path: string,
  host: string,
  headers: OutgoingHeaders | undefined,
  bodyLength: number,
  serialize = true,
): EncodedHead {
  if (bodyLength !== BODY_NONE) return encodeHead(method, path, host, headers, bodyLength, serialize);
  // A request without a body whose headers cannot change (none, or frozen: fetch()'s defaults): the
  // head depends on method, path, host and that headers object alone, and a caller in a loop sends
  // the same one again and again. The last one is kept, checked and encoded, and handed out again
  // when the same four come: no validation pass, no builder, no result object, no string building
  // per request. An EncodedHead is never changed; a frozen object stays frozen, so the same object
  // means the same fields.
  const last = lastFixed;
  if (
    last !== null &&
    last.headers === headers &&
    last.serialized === serialize &&
    last.path === path &&
    last.method === method &&
    last.host === host
  ) {
    return last.encoded;
  }
  const encoded = encodeHead(method, path, host, headers, BODY_NONE, serialize);
  if (headers === undefined || isImmutable(headers)) {
    lastFixed = { method, path, host, headers, serialized: serialize, encoded };
  }
  return encoded;
}

/** The last head encodeRequestHead() made for a request with no body and fixed headers (see there). */
let lastFixed: {
  method: string;
  path: string;
  host: string;
  headers: OutgoingHeaders | undefined;
  serialized: boolean;
  encoded: EncodedHead;
} | null = null;

/**
 * Headers nobody can change: a frozen array of frozen [name, value] pairs, or a frozen plain object
 * whose values are strings or frozen arrays of them. (A Map or a Headers cannot be frozen.)
 */
function isImmutable(headers: OutgoingHeaders): boolean {
  if (!Object.isFrozen(headers)) return false;
  if (Array.isArray(headers)) {
    for (const pair of headers as unknown[]) if (!Array.isArray(pair) || !Object.isFrozen(pair)) return false;
    return true;
  }
  if (Object.getPrototypeOf(headers) !== Object.prototype) return false;
  for (const value of Object.values(headers)) {
    if (typeof value !== 'string' && !(Array.isArray(value) && Object.isFrozen(value))) return false;
  }
  return true;
}

function encodeHead(
  method: string,
  path: string,
  host: string,
  headers: OutgoingHeaders | undefined,
  bodyLength: number,
  serialize: boolean,
): EncodedHead {
  if (!isToken(method)) throw new InvalidArgumentError(`invalid method ${describe(method)}`);
  if (!isValidPath(path)) {
    throw new InvalidArgumentError(`invalid request path ${describe(path)}: must be non-empty visible ASCII`);
  }
  if (host.length === 0 || !isValidValue(host) || host.indexOf(' ') !== -1 || host.indexOf('\t') !== -1) {
    throw new InvalidArgumentError(`invalid host ${describe(host)}`);
  }
  if (
    !(bodyLength >= 0 || bodyLength === BODY_NONE || bodyLength === BODY_CHUNKED) ||
    !Number.isSafeInteger(bodyLength)
  ) {
    throw new InvalidArgumentError(`invalid body length ${bodyLength}`);
  }

  const b: HeadBuilder = {
    serialize,
    head: '',
    hasHost: false,
    contentLength: -1,
    connectionClose: false,
    expectContinue: false,
  };
  if (headers !== undefined) {
    if (isIterable(headers)) {
      for (const pair of headers) {
        const name = pair[0];
        const value = pair[1];
        if (typeof name !== 'string' || typeof value !== 'string') {
          throw new InvalidArgumentError('header pairs must be [string, string]');
        }
        addHeader(b, name, value);
      }
    } else {
      for (const name in headers) {
        if (!Object.hasOwn(headers, name)) continue;
        const value = headers[name];
        if (value === undefined) continue;
        if (typeof value === 'string') addHeader(b, name, value);
        else if (typeof value === 'number') addHeader(b, name, String(value));
        else if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            const v = value[i];
            if (typeof v !== 'string')
              throw new InvalidArgumentError(`invalid value for header ${describe(name)}`);
            addHeader(b, name, v);
          }
        } else {
          throw new InvalidArgumentError(`invalid value for header ${describe(name)}`);
        }
      }
    }
  }

  let framing = bodyLength;
  let framingLine = '';
  if (bodyLength >= 0) {
    if (b.contentLength === -1) framingLine = `content-length: ${bodyLength}\r\n`;
    else if (b.contentLength !== bodyLength) {
      throw new InvalidArgumentError(
        `content-length header (${b.contentLength}) does not match the body length (${bodyLength})`,
      );
    }
  } else if (bodyLength === BODY_CHUNKED) {
    if (b.contentLength === -1) framingLine = 'transfer-encoding: chunked\r\n';
    else framing = b.contentLength; // the caller vouches for the length: send it unchunked
  } else if (b.contentLength > 0) {
    throw new InvalidArgumentError(
      `content-length header (${b.contentLength}) given but the request has no body`,
    );
  } else if (b.contentLength === 0) {
    framing = 0;
  }

  // RFC 9110 §10.1.1: a request without content has nothing to wait for (the header is sent as given).
  const expectContinue = b.expectContinue && (framing > 0 || framing === BODY_CHUNKED);
  if (!serialize)
    return { head: '', bodyLength: framing, connectionClose: b.connectionClose, expectContinue };
  const hostLine = b.hasHost ? '' : `host: ${host}\r\n`;
  return {
    head: `${method} ${path} HTTP/1.1\r\n${hostLine}${b.head}${framingLine}\r\n`,
    bodyLength: framing,
    connectionClose: b.connectionClose,
    expectContinue,
  };
}

function isIterable(h: OutgoingHeaders): h is Iterable<readonly [string, string]> {
  return typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function';
}

/** Ends a chunked body (last-chunk, no trailers). */
export const CHUNKED_TERMINATOR = '0\r\n\r\n';
/** The CRLF that follows each chunk's data. */
export const CRLF = '\r\n';
const CRLF_BUFFER = Buffer.from(CRLF, 'latin1');

/** The chunk-size line for a chunk of `length` (> 0) bytes: hex size + CRLF. */
export function chunkSizeLine(length: number): string {
  return `${length.toString(16)}\r\n`;
}

/**
 * One chunk as three buffers to write (or writev) in order: size line, the caller's bytes (not copied),
 * CRLF. An empty chunk encodes to nothing, since a zero-size chunk would end the body.
 */
export function encodeChunk(data: Uint8Array): Uint8Array[] {
  if (data.length === 0) return [];
  return [Buffer.from(chunkSizeLine(data.length), 'latin1'), data, CRLF_BUFFER];
}
