/**
 * Field-level helpers of the HTTP/1.1 response parser: byte tables, interned field names, and the
 * values that decide framing and persistence (Transfer-Encoding, Content-Length, Connection,
 * Keep-Alive). Pure functions of their arguments; malformed values throw ParseError.
 *
 * Deliberate strictness choices:
 * - Transfer-Encoding naming chunked more than once (in one field or across several) is a ParseError:
 *   RFC 9112 §6.1 forbids applying it twice, and reading such a body until close would hand out its
 *   chunk framing, and whatever followed, as content.
 * - Content-Length must be 1*DIGIT; several values are accepted only when all are equal (RFC 9110
 *   §8.6), and a length beyond 2^53 - 1 is a ParseError.
 */
import { ParseError } from '../errors.js';

const SP = 32;
const HTAB = 9;

/** RFC 9110 tchar: "!#$%&'*+-.^_`|~" / DIGIT / ALPHA. */
export const TCHAR: Uint8Array = /* @__PURE__ */ (() => {
  const t = new Uint8Array(256);
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (const ch of "!#$%&'*+-.^_`|~") t[ch.charCodeAt(0)] = 1;
  return t;
})();

/** Hex digit value + 1 (0 = not a hex digit), so one table lookup both tests and converts. */
export const HEX: Uint8Array = /* @__PURE__ */ (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 10; i++) t[0x30 + i] = i + 1;
  for (let i = 0; i < 6; i++) {
    t[0x41 + i] = i + 11;
    t[0x61 + i] = i + 11;
  }
  return t;
})();

export function parseError(message: string): ParseError {
  return new ParseError(message);
}

/** Short printable excerpt of a bad line for error messages (bounded, control bytes escaped). */
export function describe(text: string, s: number, e: number): string {
  const part = text.slice(s, Math.min(e, s + 64));
  return JSON.stringify(e - s > 64 ? `${part}...` : part);
}

/**
 * Field names seen in most responses, by length. Only [a-z0-9-] may appear in them: then, for input
 * already checked to be tchar, `byte | 0x20` equals the candidate's byte exactly when the two match
 * case-insensitively.
 */
const KNOWN_NAMES: (string[] | undefined)[] = /* @__PURE__ */ (() => {
  const names = [
    'age',
    'via',
    'date',
    'etag',
    'link',
    'vary',
    'server',
    'pragma',
    'expires',
    'alt-svc',
    'trailer',
    'upgrade',
    'location',
    'connection',
    'keep-alive',
    'set-cookie',
    'x-request-id',
    'content-type',
    'x-powered-by',
    'retry-after',
    'cache-control',
    'content-range',
    'accept-ranges',
    'last-modified',
    'content-length',
    'content-encoding',
    'content-language',
    'x-frame-options',
    'www-authenticate',
    'transfer-encoding',
    'content-disposition',
    'x-content-type-options',
    'content-security-policy',
    'strict-transport-security',
    'access-control-allow-origin',
    'access-control-allow-credentials',
    'access-control-expose-headers',
  ];
  const table: (string[] | undefined)[] = [];
  for (const n of names) {
    const list = table[n.length];
    if (list === undefined) table[n.length] = [n];
    else list.push(n);
  }
  return table;
})();

export function knownName(text: string, s: number, e: number): string | undefined {
  const candidates = KNOWN_NAMES[e - s];
  if (candidates === undefined) return undefined;
  for (let k = 0; k < candidates.length; k++) {
    const cand = candidates[k];
    let j = 0;
    while (j < cand.length && (text.charCodeAt(s + j) | 0x20) === cand.charCodeAt(j)) j++;
    if (j === cand.length) return cand;
  }
  return undefined;
}

/** Whether a comma-separated list header (one field or several) contains `token`, case-insensitively. */
export function hasToken(value: string | string[], token: string): boolean {
  if (typeof value !== 'string') {
    for (let i = 0; i < value.length; i++) if (hasToken(value[i], token)) return true;
    return false;
  }
  if (value.length === token.length) return value.toLowerCase() === token;
  const v = value.toLowerCase();
  let from = 0;
  while (from <= v.length) {
    let comma = v.indexOf(',', from);
    if (comma === -1) comma = v.length;
    let s = from;
    let e = comma;
    while (s < e && (v.charCodeAt(s) === SP || v.charCodeAt(s) === HTAB)) s++;
    while (e > s && (v.charCodeAt(e - 1) === SP || v.charCodeAt(e - 1) === HTAB)) e--;
    if (e - s === token.length && v.startsWith(token, s)) return true;
    from = comma + 1;
  }
  return false;
}

/**
 * RFC 9112 §6.3: chunked framing applies only when chunked is the final transfer coding; otherwise
 * (`chunked, gzip`, `identity`) the body runs until the server closes. A coding list naming chunked
 * more than once is invalid (§6.1: a sender must not apply chunked twice): neither reading it as
 * chunked nor until close can be trusted to find where the response ends, so it is a ParseError.
 */
export function isChunkedFinal(te: string | string[]): boolean {
  if (typeof te === 'string' && te.length === 7 && te.toLowerCase() === 'chunked') return true;
  const list = typeof te === 'string' ? te : te.join(',');
  let chunkedCount = 0;
  let last = '';
  for (const part of list.split(',')) {
    const coding = part.trim().toLowerCase();
    if (coding === '') continue; // empty list elements are ignored (RFC 9110 §5.6.1)
    if (coding === 'chunked') chunkedCount++;
    last = coding;
  }
  if (chunkedCount > 1) {
    throw parseError(`Transfer-Encoding applies chunked ${chunkedCount} times (RFC 9112 §6.1 allows once)`);
  }
  return last === 'chunked';
}

/**
 * Content-Length = 1*DIGIT. Several fields, or a comma list, are accepted only if every value is the
 * same (RFC 9110 §8.6); anything else is a ParseError, as is a length beyond 2^53 - 1.
 */
export function parseContentLength(cl: string | string[]): number {
  if (typeof cl === 'string') {
    const n = parseDigits(cl, 0, cl.length);
    if (n >= 0) return n;
  }
  const list = typeof cl === 'string' ? cl : cl.join(',');
  let result = -1;
  for (const part of list.split(',')) {
    const v = part.trim();
    const n = parseDigits(v, 0, v.length);
    if (n < 0) throw parseError(`invalid Content-Length: ${JSON.stringify(list)}`);
    if (result !== -1 && n !== result)
      throw parseError(`conflicting Content-Length values: ${JSON.stringify(list)}`);
    result = n;
  }
  return result;
}

/** Decimal digits only → value; -1 if empty or not all digits; throws past Number.MAX_SAFE_INTEGER. */
export function parseDigits(s: string, start: number, end: number): number {
  if (start === end) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    if (n > (Number.MAX_SAFE_INTEGER - d) / 10) throw parseError('Content-Length too large');
    n = n * 10 + d;
  }
  return n;
}

/**
 * One numeric parameter of `Keep-Alive: timeout=5, max=100` (names case-insensitive, spaces and
 * quotes tolerated, ',' or ';' between parameters). undefined when absent or not a plain number.
 */
export function keepAliveParam(value: string, param: string): number | undefined {
  const v = value.toLowerCase();
  let from = 0;
  while (from < v.length) {
    let sep = from;
    while (sep < v.length && v.charCodeAt(sep) !== 0x2c && v.charCodeAt(sep) !== 0x3b) sep++;
    const eq = v.indexOf('=', from);
    if (eq !== -1 && eq < sep && v.slice(from, eq).trim() === param) {
      let raw = v.slice(eq + 1, sep).trim();
      if (raw.length >= 2 && raw.charCodeAt(0) === 0x22 && raw.charCodeAt(raw.length - 1) === 0x22) {
        raw = raw.slice(1, -1);
      }
      try {
        const n = parseDigits(raw, 0, raw.length);
        return n < 0 ? undefined : n;
      } catch {
        return undefined; // absurdly large: treat as absent rather than fail the response
      }
    }
    from = sep + 1;
  }
  return undefined;
}
