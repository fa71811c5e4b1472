import type { TlsOptions } from '../dial/dial.js';
import { AbortedError, InvalidArgumentError } from '../errors.js';
import { Exchange, type InformationalResponse } from '../exchange/exchange.js';
import { BODY_CHUNKED, BODY_NONE, encodeRequestHead } from '../h1/request-head.js';
import type { OutgoingHeaders } from '../headers.js';
import { type Agent, getGlobalAgent } from '../pool/agent.js';
import { numberOption } from '../pool/options.js';
import { BODY_KIND_BYTES, BODY_KIND_STREAM, PreparedBody, type RequestBody } from '../request/body.js';
import type { Response } from '../response/response.js';
import { type ParsedUrl, isSimplePath, parseUrl, resolveAgainst } from './target.js';
import { checkClientOptions, checkRequestInit } from './validate.js';

export interface RequestInit {
  /** Default GET. */
  method?: string;
  headers?: OutgoingHeaders;
  body?: RequestBody;
  signal?: AbortSignal;
  /** Allow a safe retry of a non-idempotent method (say, a POST the server deduplicates). */
  idempotent?: boolean;
  /** Retry once on a new connection when a reused one turns out dead. Default true. */
  retryOnStale?: boolean;
  /** Request sent → response head, ms; 0 = none. Default 30 000. */
  headersTimeout?: number;
  /** Longest silence between body chunks, ms; 0 = none. Default 30 000. */
  bodyTimeout?: number;
  /** Interim 1xx responses (100 Continue, 103 Early Hints). */
  onInformation?: (info: InformationalResponse) => void;
  /**
   * With an `Expect: 100-continue` header and a body: how long the body waits for the server's
   * 100 Continue before it is sent anyway, ms (as curl does); 0 = until the server answers. A final
   * response that comes first means the body is not sent. Default 1000.
   */
  expectContinueTimeout?: number;
  /** TLS options for this request's connection (part of the pool key). */
  tls?: TlsOptions;
  /** Bytes the body stream buffers before the socket is paused. Default 64 KiB. */
  highWaterMark?: number;
}

export interface ClientOptions {
  /** The pool; default the process-wide getGlobalAgent(). */
  agent?: Agent;
  /** Prefix for relative request URLs: `baseUrl + path`. */
  baseUrl?: string;
  /** Sent with every request; request headers of the same name replace them. */
  headers?: OutgoingHeaders;
  headersTimeout?: number;
  bodyTimeout?: number;
  retryOnStale?: boolean;
  tls?: TlsOptions;
}

const DEFAULT_HEADERS_TIMEOUT = 30_000;
const DEFAULT_BODY_TIMEOUT = 30_000;
const DEFAULT_HIGH_WATER_MARK = 64 * 1024;
const DEFAULT_CONTINUE_TIMEOUT = 1000;
/** Methods whose request carries content by definition: an empty body is sent as content-length: 0. */
const CONTENT_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Request defaults on an Agent. Holds no sockets: making one per request, or copying one, costs a
 * few fields and never makes a pool (the SDK failure this project exists for).
 */
export class Client {
  readonly agent: Agent;
  readonly baseUrl: string | undefined;
  readonly headers: OutgoingHeaders | undefined;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly retryOnStale: boolean;
  readonly tls: TlsOptions | undefined;

  /** baseUrl parsed once; a request for a plain '/path' only appends to its path. */
  private readonly base: ParsedUrl | undefined;
  /** baseUrl's path without a trailing '/', the prefix of every relative request path. */
  private readonly basePath: string;
  /** baseUrl without a trailing '/', the prefix of every relative request's res.url. */
  private readonly baseHref: string;

  constructor(options: ClientOptions = {}) {
    checkClientOptions(options);
    this.agent = options.agent ?? getGlobalAgent();
    if (options.baseUrl !== undefined) {
      const base = parseUrl(options.baseUrl); // validates now rather than on the first request
      this.baseUrl =
        options.baseUrl.endsWith('/') && base.path === '/' ? options.baseUrl.slice(0, -1) : options.baseUrl;
      // A base with a query string cannot be a plain prefix: such requests take resolveAgainst().
      this.base = base.path.indexOf('?') === -1 ? base : undefined;
      this.basePath = base.path.endsWith('/') ? base.path.slice(0, -1) : base.path;
      this.baseHref = options.baseUrl.endsWith('/') ? options.baseUrl.slice(0, -1) : options.baseUrl;
    } else {
      this.baseUrl = undefined;
      this.base = undefined;
      this.basePath = '';
      this.baseHref = '';
    }
    this.headers = options.headers;
    this.headersTimeout = numberOption('headersTimeout', options.headersTimeout, DEFAULT_HEADERS_TIMEOUT);
    this.bodyTimeout = numberOption('bodyTimeout', options.bodyTimeout, DEFAULT_BODY_TIMEOUT);
    this.retryOnStale = options.retryOnStale ?? true;
    this.tls = options.tls;
  }

  /** A new Client on the same Agent, with these options changed (headers are merged). */
  with(overrides: Omit<ClientOptions, 'agent'>): Client {
    return new Client({
      agent: this.agent,
      baseUrl: overrides.baseUrl ?? this.baseUrl,
      headers: overrides.headers === undefined ? this.headers : mergeHeaders(this.headers, overrides.headers),
      headersTimeout: overrides.headersTimeout ?? this.headersTimeout,
      bodyTimeout: overrides.bodyTimeout ?? this.bodyTimeout,
      retryOnStale: overrides.retryOnStale ?? this.retryOnStale,
      tls: overrides.tls ?? this.tls,
    });
  }

  /**
   * Sends a request; resolves with the response once its head has arrived. Read, dump() or destroy()
   * the body: until it has been received whole, it holds its connection.
   */
  request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    let ex: Exchange;
    let pool: ReturnType<Agent['poolFor']>;
    try {
      checkRequestInit(init);
      const method = init.method === undefined ? 'GET' : init.method;
      const base = this.base;
      const parsed: ParsedUrl =
        base !== undefined && typeof url === 'string' && isSimplePath(url)
          ? { target: base.target, host: base.host, path: this.basePath + url, href: this.baseHref + url }
          : parseUrl(resolveAgainst(this.baseUrl, url));
      const body = PreparedBody.from(init.body);
      if (body.kind !== 0 && (method === 'GET' || method === 'HEAD') && init.body !== '') {
        // RFC 9110 §9.3.1: content in a GET has no defined meaning and some servers reject it.
        throw new InvalidArgumentError(`a ${method} request cannot have a body`);
      }
      // An empty body ('' or a zero-length buffer) on a method that does not anticipate content is
      // no body at all: no content-length (RFC 9110 §8.6 SHOULD NOT), as for GET and HEAD.
      const framing =
        body.kind === BODY_KIND_BYTES && (body.length > 0 || CONTENT_METHODS.has(method))
          ? body.length
          : body.kind === BODY_KIND_STREAM
            ? BODY_CHUNKED
            : CONTENT_METHODS.has(method)
              ? 0
              : BODY_NONE;
      const headers =
        this.headers === undefined
          ? init.headers
          : init.headers === undefined
            ? this.headers
            : mergeHeaders(this.headers, init.headers);
      const tls = init.tls ?? this.tls;
      // Validated before any pool is made; an origin known to speak h2 needs no HTTP/1.1 head (its
      // connection would encode one, should the origin come back as HTTP/1.1).
      const known = this.agent.knownPool(parsed.target, tls);
      const serialize = known === undefined || known.protocol !== 'h2';
      const encoded = encodeRequestHead(method, parsed.path, parsed.host, headers, framing, serialize);
      pool = known ?? this.agent.poolFor(parsed.target, tls);
      const signal = init.signal;
      if (signal?.aborted) {
        return Promise.reject(
          new AbortedError(`request to ${parsed.target.origin} aborted before it was sent`, {
            origin: parsed.target.origin,
            cause: signal.reason,
          }),
        );
      }
      ex = new Exchange({
        url: parsed.href,
        origin: parsed.target.origin,
        method,
        path: parsed.path,
        authority: parsed.host,
        head: encoded.head,
        bodyFraming: encoded.bodyLength,
        body,
        connectionClose: encoded.connectionClose,
        headers,
        idempotent: init.idempotent,
        retryOnStale: init.retryOnStale ?? this.retryOnStale,
        headersTimeout: numberOption('headersTimeout', init.headersTimeout, this.headersTimeout),
        bodyTimeout: numberOption('bodyTimeout', init.bodyTimeout, this.bodyTimeout),
        highWaterMark: init.highWaterMark ?? DEFAULT_HIGH_WATER_MARK,
        signal,
        onInformation: init.onInformation,
        expectContinue: encoded.expectContinue,
        continueTimeout: encoded.expectContinue
          ? numberOption('expectContinueTimeout', init.expectContinueTimeout, DEFAULT_CONTINUE_TIMEOUT)
          : 0,
      });
    } catch (err) {
      return Promise.reject(err);
    }
    const promise = ex.promise!; // taken before dispatch: the exchange lets go of it once resolved
    this.agent.submit(pool, ex);
    return promise;
  }
}

/** Defaults first, then overrides; a name in both (any case) takes the override's values. */
export function mergeHeaders(
  defaults: OutgoingHeaders | undefined,
  overrides: OutgoingHeaders,
): OutgoingHeaders {
  if (defaults === undefined) return overrides;
  const merged = new Map<string, [string, string[]]>();
  const add = (h: OutgoingHeaders, replace: boolean): void => {
    const seen = new Set<string>();
    for (const [name, value] of entries(h)) {
      const lower = name.toLowerCase();
      const entry = merged.get(lower);
      if (entry === undefined || (replace && !seen.has(lower))) merged.set(lower, [name, [value]]);
      else entry[1].push(value);
      seen.add(lower);
    }
  };
  add(defaults, false);
  add(overrides, true);
  const out: Array<[string, string]> = [];
  for (const [name, values] of merged.values()) for (const v of values) out.push([name, v]);
  return out;
}

function* entries(h: OutgoingHeaders): Iterable<[string, string]> {
  if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [n, v] of h as Iterable<readonly [string, string]>) yield [n, v];
    return;
  }
  const rec = h as Record<string, string | number | readonly string[] | undefined>;
  for (const name of Object.keys(rec)) {
    const v = rec[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) yield [name, String(x)];
    else yield [name, String(v)];
  }
}

let defaultClient: Client | undefined;

/** Sends a request through the process-wide Agent with default options. */
export function request(url: string | URL, init?: RequestInit): Promise<Response> {
  if (defaultClient === undefined || defaultClient.agent !== getGlobalAgent()) defaultClient = new Client();
  return defaultClient.request(url, init);
}
