import {
  type CreatedRequest,
  bindRequest,
  publishCreatedFailed,
  publishRequestCreate,
  requestCreate,
} from '../diagnostics/channels.js';
import type { TlsOptions } from '../dial/dial.js';
import type { ProxyOption } from '../dial/proxy-config.js';
import { AbortedError, InvalidArgumentError } from '../errors.js';
import { Exchange, type ExchangeInit, type InformationalResponse } from '../exchange/exchange.js';
import { type FetchInit, type FetchInput, fetchThrough } from '../fetch/fetch.js';
import { BODY_CHUNKED, BODY_NONE, encodeRequestHead } from '../h1/request-head.js';
import { type OutgoingHeaders, hasOutgoing, outgoingEntries } from '../headers.js';
import { type Agent, getGlobalAgent } from '../pool/agent.js';
import { numberOption } from '../pool/options.js';
import { mergeTls } from '../pool/tls-key.js';
import { BODY_KIND_BYTES, BODY_KIND_STREAM, PreparedBody, type RequestBody } from '../request/body.js';
import { ACCEPT_ENCODING, decodeResponse } from '../response/decode.js';
import type { Response } from '../response/response.js';
import {
  type Middleware,
  type MiddlewareRequest,
  checkMiddleware,
  middlewareRequest,
  runMiddleware,
} from './middleware.js';
import { type Hop, followRedirects } from './redirect.js';
import { type RetryOptions, type RetryPolicy, mayRetry, resolveRetry, withRetries } from './retry.js';
import { type ParsedUrl, isSimplePath, parseUrl, resolveAgainst } from './target.js';
import { checkClientOptions, checkRequestInit } from './validate.js';

export interface RequestInit {
  /**
   * The pool, for the top-level request() (default the process-wide one); a Client sends through
   * its own Agent and refuses another here.
   */
  agent?: Agent;
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
  /** TLS options for this request's connection (part of the pool key); merged over the Client's and the Agent's. */
  tls?: TlsOptions;
  /**
   * This request's proxy, in place of the Agent's (same forms: a URL, `{ url, headers, tunnel, tls }`,
   * 'env'); null: none. Part of the pool key: it never shares a connection with another route.
   */
  proxy?: ProxyOption;
  /** Connect to this unix domain socket instead of the URL's host and port (part of the pool key). */
  socketPath?: string;
  /** Bytes the body stream buffers before the socket is paused. Default 64 KiB. */
  highWaterMark?: number;
  /**
   * @internal
   * The body will be read chunk by chunk by a reader that keeps the chunks (WarmpoolDispatcher: undici's
   * handlers): it is not gathered into one buffer, and the socket reads into buffers handed over as
   * they are, as node's own reads are. Without it a large body is copied once more on its way.
   */
  bodyAsChunks?: boolean;
  /**
   * Follow up to this many redirects (301, 302, 303, 307, 308), then fail with RedirectError.
   * Default 0: a redirect is handed back as it came. See docs for the rules (method, body, headers).
   */
  maxRedirections?: number;
  /**
   * Undo the response's content-encoding (gzip, x-gzip, deflate, br, and zstd where Node has it) and
   * send `accept-encoding` for them unless the request has one. Default false.
   */
  decompress?: boolean;
  /** Retries of failed or refused attempts (see retry.ts for the defaults); unset fields come from the Client's. */
  retry?: RetryOptions;
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
  /** Default for every request's `maxRedirections`. Default 0. */
  maxRedirections?: number;
  /** Default for every request's `decompress`. Default false. */
  decompress?: boolean;
  /** The retry policy of every request (a request's own `retry` fills its gaps from it). Default none. */
  retry?: RetryOptions;
  /** Functions around every request, the first outermost (see middleware.ts). */
  middleware?: readonly Middleware[];
}

const DEFAULT_HEADERS_TIMEOUT = 30_000;
const DEFAULT_BODY_TIMEOUT = 30_000;
const DEFAULT_HIGH_WATER_MARK = 64 * 1024;
const DEFAULT_CONTINUE_TIMEOUT = 1000;
/**
 * What send() hands the Exchange constructor, filled in place for every request: the constructor
 * copies each field out and keeps nothing of it, and nothing between the filling and the
 * construction can call back into send() (no caller code runs there), so one object serves every
 * request instead of a literal of twenty fields per request.
 */
const exchangeInit: ExchangeInit = {
  url: '',
  origin: '',
  method: 'GET',
  path: '/',
  authority: '',
  head: '',
  bodyFraming: BODY_NONE,
  body: PreparedBody.NONE,
  connectionClose: false,
  headers: undefined,
  idempotent: undefined,
  retryOnStale: true,
  headersTimeout: 0,
  bodyTimeout: 0,
  highWaterMark: 0,
  bodyAsChunks: false,
  signal: undefined,
  onInformation: undefined,
  attempt: 1,
  expectContinue: false,
  continueTimeout: 0,
};
/** The options of a request made without any: one object, never written to, for all of them. */
const NO_INIT: RequestInit = Object.freeze({});
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
  readonly maxRedirections: number;
  readonly decompress: boolean;
  readonly retry: RetryOptions | undefined;
  readonly middleware: readonly Middleware[];

  /** `retry` checked and resolved; undefined: no retries. */
  private readonly retryPolicy: RetryPolicy | undefined;
  /** Where middleware sends a request: this Client's core, minus its baseUrl and headers (applied before). */
  private readonly below: Client | undefined;
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
    this.maxRedirections = options.maxRedirections ?? 0;
    this.decompress = options.decompress ?? false;
    this.retry = options.retry;
    this.retryPolicy = resolveRetry(options.retry, undefined);
    this.middleware = options.middleware === undefined ? [] : checkMiddleware(options.middleware);
    this.below =
      this.middleware.length === 0
        ? undefined
        : new Client({ ...this.optionsWith({}), baseUrl: undefined, headers: undefined, middleware: [] });
  }

  /** A new Client on the same Agent, with these options changed (headers are merged). */
  with(overrides: Omit<ClientOptions, 'agent'>): Client {
    return new Client(this.optionsWith(overrides));
  }

  /** A new Client on the same Agent with `mw` added as the innermost middleware. */
  use(mw: Middleware): Client {
    return new Client(this.optionsWith({ middleware: [...this.middleware, ...checkMiddleware([mw])] }));
  }

  private optionsWith(overrides: Omit<ClientOptions, 'agent'>): ClientOptions {
    return {
      agent: this.agent,
      baseUrl: overrides.baseUrl ?? this.baseUrl,
      headers: overrides.headers === undefined ? this.headers : mergeHeaders(this.headers, overrides.headers),
      headersTimeout: overrides.headersTimeout ?? this.headersTimeout,
      bodyTimeout: overrides.bodyTimeout ?? this.bodyTimeout,
      retryOnStale: overrides.retryOnStale ?? this.retryOnStale,
      tls: mergeTls(this.tls, overrides.tls),
      maxRedirections: overrides.maxRedirections ?? this.maxRedirections,
      decompress: overrides.decompress ?? this.decompress,
      retry: overrides.retry ?? this.retry,
      middleware: overrides.middleware ?? this.middleware,
    };
  }

  /**
   * Sends a request; resolves with the response once its head has arrived. Read, dump() or destroy()
   * the body: until it has been received whole, it holds its connection.
   */
  request(url: string | URL, init: RequestInit = NO_INIT): Promise<Response> {
    if (this.below !== undefined) return this.throughMiddleware(url, init);
    return this.core(url, init);
  }

  /**
   * The WHATWG fetch() on this Client's agent and defaults (baseUrl, headers, timeouts, tls): resolves
   * with a global Response. Redirects are followed and content codings undone, as Node's fetch does.
   */
  fetch(input: FetchInput, init?: FetchInit): Promise<globalThis.Response> {
    return fetchThrough(this, input, init);
  }

  /** The plain request object through the middleware; the last `next` is the core of `below`. */
  private throughMiddleware(url: string | URL, init: RequestInit): Promise<Response> {
    let req: MiddlewareRequest;
    try {
      checkRequestInit(init);
      const href = parseUrl(resolveAgainst(this.baseUrl, url)).href;
      const headers =
        this.headers === undefined || init.headers === undefined
          ? (init.headers ?? this.headers)
          : mergeHeaders(this.headers, init.headers);
      req = middlewareRequest(href, init, headers);
    } catch (err) {
      return Promise.reject(err);
    }
    const below = this.below!;
    return runMiddleware(this.middleware, 0, req, (r) => below.core(r.url, r));
  }

  /**
   * Below the middleware: redirects and decoding, when asked for, around the retried sends. The
   * Client's headers are merged here, once: a cross-origin redirect must lose the Client's
   * credentials too, not get them merged back in on the next hop.
   */
  private core(url: string | URL, init: RequestInit): Promise<Response> {
    try {
      checkRequestInit(init);
      if (init.agent !== undefined && init.agent !== this.agent) {
        throw new InvalidArgumentError(
          'a Client sends through its own Agent: make a Client with { agent }, or pass agent to the top-level request()',
        );
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const headers =
      this.headers === undefined
        ? init.headers
        : init.headers === undefined
          ? this.headers
          : mergeHeaders(this.headers, init.headers);
    const maxRedirections = init.maxRedirections ?? this.maxRedirections;
    const decompress = init.decompress ?? this.decompress;
    if (maxRedirections === 0 && !decompress) return this.attempts(url, init, headers);
    return this.sendFollowing(url, init, headers, maxRedirections, decompress);
  }

  /** request() with redirects followed and/or the body decoded; each hop under the retry policy. */
  private async sendFollowing(
    url: string | URL,
    init: RequestInit,
    merged: OutgoingHeaders | undefined,
    maxRedirections: number,
    decompress: boolean,
  ): Promise<Response> {
    const method = init.method ?? 'GET';
    let headers = merged;
    if (decompress && !hasOutgoing(headers, 'accept-encoding')) {
      headers = [
        ...(headers === undefined ? [] : outgoingEntries(headers)),
        ['accept-encoding', ACCEPT_ENCODING],
      ];
    }
    let response: Response;
    if (maxRedirections === 0) {
      response = await this.attempts(url, init, headers);
    } else {
      const sendHop = (hop: Hop): Promise<Response> =>
        this.attempts(hop.url, { ...init, method: hop.method, body: hop.body }, hop.headers);
      const first: Hop = { url: typeof url === 'string' ? url : url.href, method, headers, body: init.body };
      response = (await followRedirects(sendHop, first, maxRedirections)).response;
    }
    // A HEAD stays a HEAD across redirects (only POST and non-HEAD 303s become GETs): `method` still says
    // whether the final response can have content.
    return decompress ? decodeResponse(response, method) : response;
  }

  /** One request under the retry policy: a single send when there is none. */
  private attempts(
    url: string | URL,
    init: RequestInit,
    headers: OutgoingHeaders | undefined,
  ): Promise<Response> {
    if (this.retryPolicy === undefined && init.retry === undefined) return this.send(url, init, headers, 1);
    let policy: RetryPolicy | undefined;
    try {
      policy = resolveRetry(init.retry, this.retryPolicy);
      const method = init.method ?? 'GET';
      if (
        policy === undefined ||
        !mayRetry(policy, method, init.idempotent, PreparedBody.from(init.body).replayable)
      ) {
        return this.send(url, init, headers, 1);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return withRetries(policy, init.signal, (attempt) => this.send(url, init, headers, attempt));
  }

  /**
   * Sends the request once (attempt number `attempt` of the retry policy). `headers` are the final
   * ones (merged with the Client's).
   */
  private send(
    url: string | URL,
    init: RequestInit,
    merged: OutgoingHeaders | undefined,
    attempt: number,
  ): Promise<Response> {
    let headers = merged;
    let ex: Exchange;
    let pool: ReturnType<Agent['poolFor']>;
    let created: CreatedRequest | undefined;
    try {
      const method = init.method === undefined ? 'GET' : init.method;
      // A plain '/path' under the baseUrl needs no parse, and no object for its parts either.
      const base = this.base;
      const parsed: ParsedUrl | undefined =
        base !== undefined && typeof url === 'string' && isSimplePath(url)
          ? undefined
          : parseUrl(resolveAgainst(this.baseUrl, url));
      const target = parsed === undefined ? base!.target : parsed.target;
      const host = parsed === undefined ? base!.host : parsed.host;
      const path = parsed === undefined ? this.basePath + (url as string) : parsed.path;
      const href = parsed === undefined ? this.baseHref + (url as string) : parsed.href;
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
      // diagnostics_channel: a subscriber may add headers (trace context) before the head is encoded.
      if (requestCreate.hasSubscribers) {
        created = publishRequestCreate(method, href, target.origin, path, headers);
        headers = created.headers;
      }
      const tls = mergeTls(this.tls, init.tls);
      const socketPath = init.socketPath;
      // Validated before any pool is made; an origin known to speak h2 needs no HTTP/1.1 head (its
      // connection would encode one, should the origin come back as HTTP/1.1).
      const proxy = init.proxy;
      const known = this.agent.knownPool(target, tls, socketPath, proxy);
      const serialize = known === undefined || known.protocol !== 'h2';
      // Through a proxy in absolute-form, the request line names the whole URL and the proxy's own
      // headers (credentials) go with the request; no proxy costs one field read.
      const viaProxy = this.agent.absoluteFormProxy(target, proxy);
      const encoded =
        viaProxy === undefined
          ? encodeRequestHead(method, path, host, headers, framing, serialize)
          : encodeRequestHead(
              method,
              target.origin + path,
              host,
              withProxyHeaders(headers, viaProxy.headerPairs),
              framing,
              serialize,
            );
      pool = known ?? this.agent.poolFor(target, tls, socketPath, proxy);
      const signal = init.signal;
      if (signal?.aborted) {
        throw new AbortedError(`request to ${target.origin} aborted before it was sent`, {
          origin: target.origin,
          cause: signal.reason,
        });
      }
      // Checked before the shared object takes anything of the caller's: a bad timeout throws here,
      // and the object must not be left holding this request's body until the next request.
      const headersTimeout = numberOption('headersTimeout', init.headersTimeout, this.headersTimeout);
      const bodyTimeout = numberOption('bodyTimeout', init.bodyTimeout, this.bodyTimeout);
      const continueTimeout = encoded.expectContinue
        ? numberOption('expectContinueTimeout', init.expectContinueTimeout, DEFAULT_CONTINUE_TIMEOUT)
        : 0;
      const fields = exchangeInit;
      fields.url = href;
      fields.origin = target.origin;
      fields.method = method;
      fields.path = path;
      fields.authority = host;
      fields.head = encoded.head;
      fields.bodyFraming = encoded.bodyLength;
      fields.body = body;
      fields.connectionClose = encoded.connectionClose;
      fields.headers = headers;
      fields.idempotent = init.idempotent;
      fields.retryOnStale = init.retryOnStale ?? this.retryOnStale;
      fields.headersTimeout = headersTimeout;
      fields.bodyTimeout = bodyTimeout;
      fields.highWaterMark = init.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
      fields.bodyAsChunks = init.bodyAsChunks === true;
      fields.signal = signal;
      fields.onInformation = init.onInformation;
      fields.attempt = attempt;
      fields.expectContinue = encoded.expectContinue;
      fields.continueTimeout = continueTimeout;
      ex = new Exchange(fields);
      fields.body = PreparedBody.NONE; // hold nothing of this request past its construction
      fields.headers = undefined;
      fields.signal = undefined;
      fields.onInformation = undefined;
      if (created !== undefined) bindRequest(ex, created);
    } catch (err) {
      if (created !== undefined) publishCreatedFailed(created, err as Error);
      return Promise.reject(err);
    }
    const promise = ex.promise!; // taken before dispatch: the exchange lets go of it once resolved
    this.agent.submit(pool, ex);
    return promise;
  }
}

/** The request's headers and then a proxy's (absolute-form requests only). */
function withProxyHeaders(
  headers: OutgoingHeaders | undefined,
  proxyPairs: Array<[string, string]>,
): OutgoingHeaders | undefined {
  if (proxyPairs.length === 0) return headers;
  return headers === undefined ? proxyPairs : [...outgoingEntries(headers), ...proxyPairs];
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
    for (const [name, value] of outgoingEntries(h)) {
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

let defaultClient: Client | undefined;

/** Sends a request with default options through the process-wide Agent, or `init.agent`. */
export function request(url: string | URL, init?: RequestInit): Promise<Response> {
  const agent = init?.agent;
  if (agent === undefined) return globalClient().request(url, init);
  let client: Client;
  try {
    client = clientFor(agent);
  } catch (err) {
    return Promise.reject(err);
  }
  return client.request(url, init);
}

function globalClient(): Client {
  if (defaultClient === undefined || defaultClient.agent !== getGlobalAgent()) defaultClient = new Client();
  return defaultClient;
}

/** A default Client per Agent passed to request() or fetch() as `agent`; forgotten with the Agent. */
const agentClients = new WeakMap<Agent, Client>();

function clientFor(agent: Agent): Client {
  let client = agentClients.get(agent);
  if (client === undefined) {
    client = new Client({ agent }); // checks that it is an Agent
    agentClients.set(agent, client);
  }
  return client;
}

/**
 * The WHATWG fetch(), as Node's built-in fetch behaves, on warmpool's pool: the process-wide Agent,
 * or `init.agent`. Resolves with a real global Response; see fetchDetails() for the connection facts.
 */
export function fetch(input: FetchInput, init?: FetchInit): Promise<globalThis.Response> {
  const agent = init?.agent;
  if (agent === undefined) return fetchThrough(globalClient(), input, init);
  let client: Client;
  try {
    client = clientFor(agent);
  } catch (err) {
    return Promise.reject(new TypeError((err as Error).message, { cause: err }));
  }
  return fetchThrough(client, input, init);
}
