/**
 * MockAgent's interceptors: what a request must look like to be answered (origin, path, method,
 * headers, body), the answer, and how often. Plain data and matching functions; no sockets.
 */
import { STATUS_CODES } from 'node:http';
import { InvalidArgumentError } from '../errors.js';

/** A value a request part must have: equal to a string, matched by a RegExp, or accepted by a function. */
export type MockMatcher = string | RegExp | ((value: string) => boolean);

export interface MockInterceptOptions {
  /** `http://host:port` (default ports may be left out), or a matcher of the request's origin. */
  origin: MockMatcher;
  /** The path and query as sent (`/items?q=1`). */
  path: MockMatcher;
  /** Default GET. */
  method?: MockMatcher;
  /** Each named header (any case) must be present and match. */
  headers?: Record<string, MockMatcher>;
  /** The request body, as UTF-8 text. */
  body?: MockMatcher;
}

/** The request as the interceptor saw it (after it was written: the headers as sent, host included). */
export interface MockRequest {
  origin: string;
  path: string;
  method: string;
  /** Lowercase names; a repeated field is an array. */
  headers: Record<string, string | string[]>;
  body: string;
}

/** A response body: text, bytes, or a value sent as JSON. */
export type MockBody = string | Uint8Array | Record<string, unknown> | unknown[] | null | undefined;

export interface MockReply {
  status: number;
  body?: MockBody;
  headers?: Record<string, string | readonly string[]>;
}

export type MockReplyFunction = (req: MockRequest) => MockReply | Promise<MockReply>;

/** What an interceptor answers. */
export type MockAnswer =
  | { kind: 'reply'; reply: MockReply }
  | { kind: 'function'; fn: MockReplyFunction }
  | { kind: 'error'; error: Error };

/** One interceptor: a match, an answer, and how many more times it answers. */
export class MockInterceptor {
  answer: MockAnswer | undefined = undefined;
  /** Answers left; Infinity when persistent. */
  remaining = 1;
  persistent = false;
  delayMs = 0;
  used = 0;
  private readonly origin: MockMatcher;

  constructor(readonly options: MockInterceptOptions) {
    checkIntercept(options);
    // A string origin is compared as URL normalizes it (scheme and host lowercased, default port left out).
    this.origin = typeof options.origin === 'string' ? normalizeOrigin(options.origin) : options.origin;
  }

  matches(req: MockRequest): boolean {
    const o = this.options;
    if (this.answer === undefined || this.remaining <= 0) return false;
    if (!test(this.origin, req.origin)) return false;
    if (!test(o.path, req.path)) return false;
    if (!test(o.method ?? 'GET', req.method)) return false;
    if (o.body !== undefined && !test(o.body, req.body)) return false;
    if (o.headers !== undefined) {
      for (const name of Object.keys(o.headers)) {
        const v = req.headers[name.toLowerCase()];
        if (v === undefined) return false;
        if (!test(o.headers[name]!, Array.isArray(v) ? v.join(', ') : v)) return false;
      }
    }
    return true;
  }

  /** One answer taken. */
  take(): void {
    this.used++;
    if (!this.persistent) this.remaining--;
  }

  /** Never answered, or has answers left that are not optional (a persistent one counts once used). */
  get pending(): boolean {
    return this.persistent ? this.used === 0 : this.remaining > 0;
  }

  describe(): string {
    const o = this.options;
    const times = this.persistent ? 'persistent' : `${this.remaining} left`;
    return `${show(o.method ?? 'GET')} ${show(o.origin)}${show(o.path)} (${times}, used ${this.used})`;
  }
}

/** The handle intercept().reply() returns: how often, and how late. */
export class MockScope {
  constructor(private readonly interceptor: MockInterceptor) {}

  /** Answer `n` matching requests (default 1). */
  times(n: number): this {
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`times() needs an integer >= 1, got ${n}`);
    this.interceptor.persistent = false;
    this.interceptor.remaining = n;
    return this;
  }

  /** Answer every matching request. */
  persist(): this {
    this.interceptor.persistent = true;
    this.interceptor.remaining = Number.POSITIVE_INFINITY;
    return this;
  }

  /** Hold the answer back for `ms` (headersTimeout and the abort signal apply meanwhile, as for a server). */
  delay(ms: number): this {
    if (typeof ms !== 'number' || !(ms >= 0))
      throw new InvalidArgumentError(`delay() needs ms >= 0, got ${ms}`);
    this.interceptor.delayMs = ms;
    return this;
  }
}

/** The response bytes for `reply` to `method` (HEAD: the head only; 204 and 304 have no body). */
export function responseBytes(reply: MockReply, method: string): Buffer {
  checkReply(reply);
  let body: Buffer;
  let json = false;
  const b = reply.body;
  if (b === undefined || b === null) body = Buffer.alloc(0);
  else if (typeof b === 'string') body = Buffer.from(b, 'utf8');
  else if (b instanceof Uint8Array) body = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  else {
    body = Buffer.from(JSON.stringify(b), 'utf8');
    json = true;
  }
  const status = reply.status;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  let hasLength = false;
  let chunked = false;
  let hasType = false;
  const headers = reply.headers ?? {};
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding') hasLength = true;
    if (lower === 'content-type') hasType = true;
    const v = headers[name]!;
    if (lower === 'transfer-encoding' && String(v).toLowerCase().includes('chunked')) chunked = true;
    for (const value of typeof v === 'string' ? [v] : v) head += `${name}: ${value}\r\n`;
  }
  const bodiless = status === 204 || status === 304 || (status >= 100 && status < 200);
  if (json && !hasType) head += 'content-type: application/json\r\n';
  if (!hasLength && !bodiless) head += `content-length: ${body.length}\r\n`;
  head += '\r\n';
  const headBytes = Buffer.from(head, 'latin1');
  // A reply that says it is chunked is sent chunked (one chunk), as its header promises.
  if (chunked && !bodiless) {
    const size = body.length === 0 ? '' : `${body.length.toString(16)}\r\n`;
    body = Buffer.concat([
      Buffer.from(size, 'latin1'),
      body,
      Buffer.from(body.length === 0 ? '0\r\n\r\n' : '\r\n0\r\n\r\n', 'latin1'),
    ]);
  }
  return method === 'HEAD' || bodiless ? headBytes : Buffer.concat([headBytes, body]);
}

export function normalizeOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    throw new InvalidArgumentError(
      `intercept() origin must be a URL like http://host:port, got ${show(origin)}`,
    );
  }
}

function test(m: MockMatcher, value: string): boolean {
  if (typeof m === 'string') return m === value;
  if (m instanceof RegExp) {
    m.lastIndex = 0;
    return m.test(value);
  }
  return m(value) === true;
}

function isMatcher(m: unknown): boolean {
  return typeof m === 'string' || m instanceof RegExp || typeof m === 'function';
}

function checkIntercept(o: MockInterceptOptions): void {
  if (typeof o !== 'object' || o === null)
    throw new InvalidArgumentError('intercept() needs { origin, path }');
  if (!isMatcher(o.origin))
    throw new InvalidArgumentError('intercept() origin must be a string, RegExp or function');
  if (!isMatcher(o.path))
    throw new InvalidArgumentError('intercept() path must be a string, RegExp or function');
  if (o.method !== undefined && !isMatcher(o.method)) {
    throw new InvalidArgumentError('intercept() method must be a string, RegExp or function');
  }
  if (o.body !== undefined && !isMatcher(o.body)) {
    throw new InvalidArgumentError('intercept() body must be a string, RegExp or function');
  }
  if (o.headers !== undefined) {
    if (typeof o.headers !== 'object' || o.headers === null) {
      throw new InvalidArgumentError('intercept() headers must be an object of matchers');
    }
    for (const v of Object.values(o.headers)) {
      if (!isMatcher(v)) throw new InvalidArgumentError('intercept() headers must be an object of matchers');
    }
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function checkReply(r: MockReply): void {
  if (typeof r !== 'object' || r === null)
    throw new InvalidArgumentError('a mock reply must be { status, body?, headers? }');
  if (!Number.isInteger(r.status) || r.status < 200 || r.status > 999) {
    throw new InvalidArgumentError(
      `a mock reply's status must be an integer 200-999, got ${String(r.status)}`,
    );
  }
  const h = r.headers;
  if (h === undefined) return;
  if (typeof h !== 'object' || h === null)
    throw new InvalidArgumentError("a mock reply's headers must be an object");
  for (const name of Object.keys(h)) {
    const v = h[name];
    const values = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
    // Checked here, or a CR/LF in a value would split the mocked response into something else.
    if (
      !TOKEN.test(name) ||
      values === undefined ||
      !values.every((x) => typeof x === 'string' && FIELD_VALUE.test(x))
    ) {
      throw new InvalidArgumentError(`a mock reply's header ${show(name)} has an invalid name or value`);
    }
  }
}

function show(m: unknown): string {
  if (typeof m === 'string') return m;
  if (m instanceof RegExp) return String(m);
  return typeof m === 'function' ? '<function>' : String(m);
}
