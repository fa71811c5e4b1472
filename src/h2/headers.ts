/**
 * HTTP/2 request and response header blocks.
 *
 * Request: built from the caller's headers (Exchange.headers), already validated by the HTTP/1.1
 * encoder in Client.request (names are tokens, values carry no CR/LF/NUL), so nothing is checked
 * twice here. HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2): they are dropped, along
 * with any field the Connection header names. Host becomes :authority; framing is HTTP/2's own, so
 * content-length is set from the body we will send and transfer-encoding is never sent.
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Exchange } from '../exchange/exchange.js';
import { type IncomingHeaders, type OutgoingHeaders, addField } from '../headers.js';

/** Fields HTTP/2 does not carry (RFC 9113 §8.2.2), and the ones we derive ourselves. */
const DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'http2-settings',
]);

/**
 * A header object. An ordinary object literal, not Object.create(null): V8 keeps a literal in fast
 * mode with one shape for the pseudo-headers, where a prototype-less object is a dictionary, and
 * node:http2 walks and copies the block on every request. So fields are read as own properties only
 * (a field may be named `constructor` or `__proto__`), and `__proto__` is defined, not assigned.
 */
type HeaderBlock = Record<string, string | string[]>;

function add(h: HeaderBlock, name: string, value: string): void {
  if (!Object.hasOwn(h, name)) {
    if (name === '__proto__') {
      Object.defineProperty(h, name, { value, writable: true, enumerable: true, configurable: true });
    } else {
      h[name] = value;
    }
    return;
  }
  const prev = h[name]!;
  if (typeof prev === 'string') h[name] = [prev, value];
  else prev.push(value);
}

function* pairs(headers: OutgoingHeaders): Iterable<readonly [string, string]> {
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    yield* headers as Iterable<readonly [string, string]>;
    return;
  }
  const rec = headers as Record<string, string | number | readonly string[] | undefined>;
  for (const name in rec) {
    if (!Object.hasOwn(rec, name)) continue;
    const v = rec[name];
    if (v === undefined) continue;
    if (typeof v === 'string') yield [name, v];
    else if (typeof v === 'number') yield [name, String(v)];
    else for (const x of v) yield [name, x];
  }
}

/** The request's header block: pseudo-headers first, then the caller's fields, lowercased. */
export function requestHeaders(ex: Exchange, scheme: 'https' | 'http'): OutgoingHttpHeaders {
  const h: HeaderBlock = {
    ':method': ex.method,
    ':scheme': scheme,
    ':authority': ex.authority,
    ':path': ex.path,
  };
  if (ex.headers !== undefined) {
    let nominated: Set<string> | undefined;
    for (const [rawName, value] of pairs(ex.headers)) {
      const name = rawName.toLowerCase();
      if (DROPPED.has(name)) {
        if (name === 'host') {
          h[':authority'] = value; // as HTTP/1.1 sends the caller's Host
        } else if (name === 'connection') {
          for (const token of value.split(',')) {
            const t = token.trim().toLowerCase();
            if (t.length === 0) continue;
            if (nominated === undefined) nominated = new Set();
            nominated.add(t);
          }
        }
        continue;
      }
      // TE is allowed only as "trailers" (RFC 9113 §8.2.2).
      if (name === 'te' && value.trim().toLowerCase() !== 'trailers') continue;
      add(h, name, value);
    }
    if (nominated !== undefined)
      for (const n of nominated) if (!n.startsWith(':') && Object.hasOwn(h, n)) delete h[n];
  }
  // bodyFraming: -1 none, -2 unknown length (HTTP/2 needs no framing header), >= 0 the exact length.
  if (ex.bodyFraming >= 0) h['content-length'] = String(ex.bodyFraming);
  return h;
}

/**
 * A header block as node:http2 passes it raw with 'response', 'headers' and 'trailers' (name, value,
 * name, value, ...), as IncomingHeaders: the pseudo-headers left out, a repeated field an array, as
 * over HTTP/1.1 (node's own header object joins repeats into one string).
 */
export function incomingHeaders(raw: readonly string[]): IncomingHeaders {
  const out: IncomingHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a) continue; // ':status' and the like
    addField(out, name, raw[i + 1]!);
  }
  return out;
}
