/**
 * fetch()'s URL check without the URL parser, for the URL that is already in the form the parser
 * would give back (what code usually passes: a constant origin plus a plain path). Node's fetch parses
 * every input with `new URL()`, which is a few µs a request; warmpool's own request path has its own
 * fast parse (client/target.ts) and needs only the normalized string.
 */

/** Origins ("http://host:port", as written) and whether the URL parser leaves them as they are. */
const normalOrigins = new Map<string, boolean>();
const MAX_ORIGINS = 256;

/**
 * True when `input` is exactly what `new URL(input).href` returns, as far as a cheap check can tell;
 * false sends it to the parser (which is right for everything). The origin part is parsed once and
 * compared with its serialization (that catches case, default ports, IDN, IPv4 shorthands, userinfo
 * forms); the rest must be characters the parser never rewrites, with no dot segment.
 */
export function isNormalizedHttpUrl(input: string): boolean {
  // Code in a loop fetches the same URL again and again: the last one found normal is remembered.
  if (input === lastNormal) return true;
  let schemeEnd: number;
  if (input.startsWith('http://')) schemeEnd = 7;
  else if (input.startsWith('https://')) schemeEnd = 8;
  else return false;
  const slash = input.indexOf('/', schemeEnd);
  if (slash === -1 || !isPlainPathAndQuery(input, slash)) return false;
  const origin = input.slice(0, slash);
  let normal = normalOrigins.get(origin);
  if (normal === undefined) {
    try {
      normal = new URL(`${origin}/`).href === `${origin}/`;
    } catch {
      normal = false;
    }
    if (normalOrigins.size >= MAX_ORIGINS) normalOrigins.clear();
    normalOrigins.set(origin, normal);
  }
  if (normal) lastNormal = input;
  return normal;
}

/** The last input isNormalizedHttpUrl() said yes to. */
let lastNormal = '';

/**
 * From `start` (a '/'): visible ASCII that neither the path nor the query percent-encodes (so not
 * space, " # ' < > [ \ ] ^ ` { | }), and in the path no segment that starts with '.' or its escape
 * %2e (dot segments are resolved by the parser). Stricter than needed, never looser.
 */
function isPlainPathAndQuery(s: string, start: number): boolean {
  let inPath = true;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
    switch (c) {
      case 0x22: // "
      case 0x23: // #
      case 0x27: // '
      case 0x3c: // <
      case 0x3e: // >
      case 0x5b: // [
      case 0x5c: // \
      case 0x5d: // ]
      case 0x5e: // ^
      case 0x60: // `
      case 0x7b: // {
      case 0x7c: // |
      case 0x7d: // }
        return false;
      case 0x3f: // ?
        inPath = false;
        break;
      case 0x2e: // .
        if (inPath && s.charCodeAt(i - 1) === 0x2f) return false;
        break;
      case 0x25: // %
        if (inPath && s.charCodeAt(i + 1) === 0x32 && (s.charCodeAt(i + 2) | 0x20) === 0x65) return false;
        break;
    }
  }
  return true;
}
