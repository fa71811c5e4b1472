/**
 * The HTTP/1.1 response conformance corpus (/work/shared/conformance/http1-responses.json, derived
 * from llhttp's test suite) and what a *client* must make of each case.
 *
 * Shared by the parser-level conformance test and the socket-level one: both turn what they observed
 * into an ObservedOutcome and compare it with expectedClientOutcome(case).outcome.
 *
 * The expectation is derived from llhttp's record by the rules in the corpus README, with an
 * independent (deliberately simple) framing walk to find whether bytes follow the response. Where
 * warmpool deliberately differs from llhttp, DEVIATIONS says so and why, and the expectation is
 * adjusted for that case only.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingHeaders } from '../../src/headers.js';
import { prng } from './prng.js';

export interface WireMessage {
  status: number;
  version: string;
  statusText: string;
  headers: [string, string][];
  trailers: [string, string][];
  body: Buffer;
  ending: 'complete' | 'eof' | 'truncated';
}

export interface ConformanceCase {
  id: string;
  name: string;
  requestMethod: 'GET' | 'HEAD';
  /** What the server writes before it closes the connection. */
  input: Buffer;
  /** Messages llhttp found, in order (1xx included). */
  messages: WireMessage[];
  /** llhttp's error after the last message, if any. */
  error: { code: number; reason: string } | null;
}

/** How a request fails when no usable final response arrives. */
export type RequestFailure = 'parse' | 'unsupported' | 'socket-closed';

/** How the response body ends. */
export type BodyEnd = 'complete' | 'eof' | 'truncated' | 'parse-error';

export interface InterimResponse {
  status: number;
  headers: IncomingHeaders;
}

export type ClientOutcome =
  | { kind: 'error'; error: RequestFailure; informational: InterimResponse[] }
  | {
      kind: 'response';
      informational: InterimResponse[];
      status: number;
      statusText: string;
      httpVersion: '1.0' | '1.1';
      headers: IncomingHeaders;
      body: Buffer;
      /** undefined when the response had no trailer fields. */
      trailers: IncomingHeaders | undefined;
      bodyEnd: BodyEnd;
      /** Whether the connection may carry another request afterwards. */
      reusable: boolean;
    };

/** Same shape as ClientOutcome: what a test saw. */
export type ObservedOutcome = ClientOutcome;

export interface ClientExpectation {
  outcome: ClientOutcome;
  /** Why warmpool differs from llhttp on this case; undefined when it matches llhttp exactly. */
  deviation: string | undefined;
}

/**
 * Cases where warmpool deliberately differs from llhttp, with the reason. The conformance test
 * checks that each listed case really differs from llhttpClientOutcome() and every other case equals
 * it, so the list cannot go stale.
 */
export const DEVIATIONS: Readonly<Record<string, string>> = {
  'sample.md:40':
    'RTSP/1.1 status line refused (ParseError): a client that sent HTTP/1.1 accepts only HTTP/1.0 and HTTP/1.1 ' +
    'responses (RFC 9112 §2.3); llhttp also parses RTSP.',
  'sample.md:60':
    'ICE/1.1 status line refused (ParseError): not HTTP; llhttp accepts it for SHOUTcast-era servers.',
  'sample.md:645':
    'HTTP/0.9 status line refused (ParseError): HTTP/0.9 has no status line at all, so "HTTP/0.9 200" is ' +
    'malformed; llhttp accepts any single-digit version pair.',
  'connection.md:293':
    '101 Switching Protocols fails the request with UnsupportedError: warmpool does not implement upgrades ' +
    '(llhttp pauses and hands the socket over).',
  'connection.md:331':
    '101 Switching Protocols fails the request with UnsupportedError: warmpool does not implement upgrades ' +
    '(llhttp pauses and hands the socket over).',
  'content-length.md:168':
    'Header value "\\t42\\t" is reported as "42": RFC 9110 §5.5 excludes surrounding OWS from the field value; ' +
    'llhttp leaves trailing whitespace in its value span for the embedder to strip (Node does).',
  'sample.md:118':
    'Header value " 219  " is reported as "219": RFC 9110 §5.5 excludes surrounding OWS from the field value; ' +
    'llhttp leaves trailing whitespace in its value span for the embedder to strip (Node does).',
  'connection.md:4':
    '`Proxy-Connection: close` does not stop reuse: persistence follows the Connection header only ' +
    '(RFC 9112 §9.3); Proxy-Connection is a non-standard request header for proxies. llhttp treats it as ' +
    'Connection (flags=0x22); the corpus does not record keep-alive, so this is visible only in `reusable`.',
};

/** The repo root, from the URL of a compiled test file at build/test/<x>.js or build/test/helpers/<x>.js. */
export function repoRootFrom(importMetaUrl: string): string {
  let dir = path.dirname(fileURLToPath(importMetaUrl));
  // Walk up to the directory that holds `build/`.
  while (path.basename(dir) !== 'build') {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the build directory above ${importMetaUrl}`);
    dir = up;
  }
  return path.dirname(dir);
}

export function conformanceFile(repoRoot: string = repoRootFrom(import.meta.url)): string {
  return path.resolve(repoRoot, '..', 'shared', 'conformance', 'http1-responses.json');
}

interface RawCase {
  id: string;
  name: string;
  request_method: 'GET' | 'HEAD';
  input_base64: string;
  messages: {
    status: number;
    version: string;
    statusText: string;
    headers: [string, string][];
    trailers: [string, string][];
    body_base64: string;
    ending: 'complete' | 'eof' | 'truncated';
  }[];
  error: { code: number; reason: string } | null;
}

export function loadConformanceCases(repoRoot?: string): ConformanceCase[] {
  const raw = JSON.parse(readFileSync(conformanceFile(repoRoot), 'utf8')) as RawCase[];
  return raw.map((c) => ({
    id: c.id,
    name: c.name,
    requestMethod: c.request_method,
    input: Buffer.from(c.input_base64, 'base64'),
    messages: c.messages.map((m) => ({
      status: m.status,
      version: m.version,
      statusText: m.statusText,
      headers: m.headers,
      trailers: m.trailers ?? [],
      body: Buffer.from(m.body_base64, 'base64'),
      ending: m.ending,
    })),
    error: c.error,
  }));
}

/** Field list → IncomingHeaders as warmpool reports it: lowercase names, repeats as arrays, OWS trimmed. */
export function toIncomingHeaders(fields: [string, string][], trimTrailingOws = true): IncomingHeaders {
  const out: IncomingHeaders = {};
  for (const [rawName, rawValue] of fields) {
    const name = rawName.toLowerCase();
    const value = trimTrailingOws ? rawValue.replace(/^[ \t]+|[ \t]+$/g, '') : rawValue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (typeof prev === 'string') out[name] = [prev, value];
    else prev.push(value);
  }
  return out;
}

function listTokens(headers: IncomingHeaders, name: string): string[] {
  const v = headers[name];
  if (v === undefined) return [];
  const joined = typeof v === 'string' ? v : v.join(',');
  return joined
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

/** RFC 9112 §9.3, restated independently of the parser. llhttp also reads Proxy-Connection. */
function persists(version: string, headers: IncomingHeaders, llhttp: boolean): boolean {
  const tokens = listTokens(headers, 'connection');
  if (llhttp) tokens.push(...listTokens(headers, 'proxy-connection'));
  if (tokens.includes('close')) return false;
  return version === '1.1' || tokens.includes('keep-alive');
}

function chunkedIsFinal(headers: IncomingHeaders): boolean {
  const codings = listTokens(headers, 'transfer-encoding');
  return (
    codings.length > 0 &&
    codings[codings.length - 1] === 'chunked' &&
    codings.filter((c) => c === 'chunked').length === 1
  );
}

/**
 * Where the k-th message (which llhttp saw end with framing) ends in the input. A plain walk over the
 * bytes, trusting that llhttp already judged the message well-formed; used only to find out whether
 * unsolicited bytes follow the response.
 */
function endOfMessage(c: ConformanceCase, k: number): number {
  const buf = c.input;
  let pos = 0;
  for (let i = 0; i <= k; i++) {
    const m = c.messages[i];
    while (buf[pos] === 13 && buf[pos + 1] === 10) pos += 2; // empty lines before a status line
    const headEnd = buf.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) throw new Error(`${c.id}: message ${i} has no end of head`);
    pos = headEnd + 4;
    const headers = toIncomingHeaders(m.headers);
    const noBody = m.status < 200 || m.status === 204 || m.status === 304 || c.requestMethod === 'HEAD';
    if (noBody) continue;
    if (headers['transfer-encoding'] !== undefined) {
      if (!chunkedIsFinal(headers)) return buf.length;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', pos);
        const size = Number.parseInt(buf.toString('latin1', pos, lineEnd).split(';')[0], 16);
        pos = lineEnd + 2;
        if (size === 0) break;
        pos += size + 2;
      }
      // Trailer fields, then the empty line.
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', pos);
        const empty = lineEnd === pos;
        pos = lineEnd + 2;
        if (empty) break;
      }
    } else if (headers['content-length'] !== undefined) {
      pos += Number(String(headers['content-length']).split(',')[0]);
    } else {
      return buf.length;
    }
  }
  return pos;
}

function interim(m: WireMessage, llhttp: boolean): InterimResponse {
  return { status: m.status, headers: toIncomingHeaders(m.headers, !llhttp) };
}

/**
 * What a client must make of the case (see the corpus README): 1xx are interim, the first final
 * message is the response; its body completes, runs to EOF, is truncated, or fails to parse; anything
 * after it (another message, an error, stray bytes) leaves the response standing but the connection
 * not reusable.
 */
export function expectedClientOutcome(c: ConformanceCase): ClientExpectation {
  return { outcome: deriveOutcome(c, false), deviation: DEVIATIONS[c.id] };
}

/**
 * The same derivation without warmpool's deviations: what a client built on llhttp (strict mode, no
 * embedder post-processing) would observe. The conformance test checks that this equals
 * expectedClientOutcome() exactly for every case not in DEVIATIONS, and differs for every case in it.
 * (Version strings other than 1.0/1.1 and 101 "responses" only occur in this view.)
 */
export function llhttpClientOutcome(c: ConformanceCase): ClientOutcome {
  return deriveOutcome(c, true);
}

function deriveOutcome(c: ConformanceCase, llhttp: boolean): ClientOutcome {
  const informational: InterimResponse[] = [];
  let k = 0;
  for (; k < c.messages.length; k++) {
    const m = c.messages[k];
    if (m.status >= 200 || m.status === 101) break;
    informational.push(interim(m, llhttp));
  }

  if (k === c.messages.length) {
    // No final head: malformed before it, or the connection closed first.
    return { kind: 'error', error: c.error !== null ? 'parse' : 'socket-closed', informational };
  }
  const m = c.messages[k];
  // warmpool speaks HTTP/1.0 and HTTP/1.1 only (see DEVIATIONS), and does not do upgrades.
  // (llhttp reports RTSP/1.1 and ICE/1.1 as version 1.1, so look at the protocol name on the wire.)
  const wireStart = c.input.toString('latin1', 0, 64).replace(/^(\r\n)+/, '');
  if (!llhttp && !/^HTTP\/1\.[01] /.test(wireStart)) return { kind: 'error', error: 'parse', informational };
  if (!llhttp && m.status === 101) return { kind: 'error', error: 'unsupported', informational };

  const isLast = k === c.messages.length - 1;
  const headers = toIncomingHeaders(m.headers, !llhttp);
  let bodyEnd: BodyEnd = m.ending;
  // llhttp records a message as truncated when its error stopped the body: a parse error to a client.
  if (m.ending === 'truncated' && isLast && c.error !== null) bodyEnd = 'parse-error';

  let reusable = false;
  if (bodyEnd === 'complete' && m.status !== 101) {
    const teAndCl = headers['transfer-encoding'] !== undefined && headers['content-length'] !== undefined;
    const nothingAfter = isLast && c.error === null && endOfMessage(c, k) === c.input.length;
    const tePersist = headers['transfer-encoding'] === undefined || m.version === '1.1';
    reusable = persists(m.version, headers, llhttp) && !teAndCl && tePersist && nothingAfter;
  }

  return {
    kind: 'response',
    informational,
    status: m.status,
    statusText: m.statusText,
    httpVersion: m.version as '1.0' | '1.1',
    headers,
    body: m.body,
    trailers: m.trailers.length > 0 ? toIncomingHeaders(m.trailers, !llhttp) : undefined,
    bodyEnd,
    reusable,
  };
}

// ---- feeding a case in pieces (shared by the parser-level and socket-level tests) ---------------

/** FNV-1a of the case id: each case gets its own fixed seed. */
export function seedOf(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Up to `count` distinct seeded cut points in 1..length-1, ascending. */
export function randomSplitPoints(length: number, seed: number, count = 20): number[] {
  const rnd = prng(seed);
  const points = new Set<number>();
  for (let i = 0; i < count * 4 && points.size < Math.min(count, length - 1); i++) {
    points.add(1 + Math.floor(rnd() * (length - 1)));
  }
  return [...points].sort((x, y) => x - y);
}

/** Every cut point: one byte per piece. */
export function everyByte(length: number): number[] {
  return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
}

export { prng };
