/**
 * warmpool as the AWS SDK for JavaScript v3's transport: `new S3Client({ requestHandler: new
 * WarmpoolHttpHandler() })`. The SDK's default handler gives every client (and every client made per
 * request or per invocation) an http.Agent of its own, and an upload with `Expect: 100-continue` a
 * throwaway agent with keep-alive off: each pays TCP (+ TLS) again. Here every handler made without an
 * explicit Agent shares the process-wide one (getGlobalAgent()), so a new client reuses the warm
 * connections of the last.
 *
 * A thin layer over Client (DESIGN.md, "adapters"): nothing here reaches into the pool. No runtime
 * dependency on the SDK either: the contract is described by the structural interfaces below, as
 * @smithy/types' HttpHandler, HttpRequest and HttpResponse have it (the SDK checks a response by its
 * shape, HttpResponse.isInstance, not by its class).
 */
import type { Readable } from 'node:stream';
import { Client, type RequestInit } from '../client/client.js';
import {
  AbortedError,
  BodyTimeoutError,
  ConnectTimeoutError,
  HeadersTimeoutError,
  InvalidArgumentError,
  QueueTimeoutError,
  SocketClosedError,
} from '../errors.js';
import type { IncomingHeaders } from '../headers.js';
import { Agent, getGlobalAgent } from '../pool/agent.js';
import type { RequestBody } from '../request/body.js';

/** The SDK's HttpRequest, as a handler reads it (@smithy/types HttpRequest). */
export interface AwsHttpRequest {
  method: string;
  /** 'https:' or 'http:' (the trailing colon optional). */
  protocol: string;
  /** A name, an IPv4 address, or an IPv6 address with or without its brackets. */
  hostname: string;
  port?: number | undefined;
  /** Already percent-encoded by the SDK. */
  path: string;
  /** A key with a null value is sent bare (`?uploads`); an array repeats the key. */
  query?: Record<string, string | Array<string | null> | null> | undefined;
  fragment?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  headers: Record<string, string>;
  body?: unknown;
}

/** The SDK's HttpResponse (@smithy/types HttpResponse). */
export interface AwsHttpResponse {
  statusCode: number;
  reason?: string | undefined;
  /** Lowercase names; a repeated field's values joined with ", ". */
  headers: Record<string, string>;
  /** A Node Readable (warmpool's ResponseBody). */
  body: Readable;
}

/** What the SDK passes with each request (@smithy/types HttpHandlerOptions). */
export interface AwsHandlerOptions {
  abortSignal?: AbortSignalLike | undefined;
  /** Overrides the handler's requestTimeout for this request. */
  requestTimeout?: number | undefined;
  /** The body is a stream of event-stream frames, the response may come while it is being sent. */
  isEventStream?: boolean | undefined;
}

/** A DOM AbortSignal, or the SDK's older one that only has `onabort`. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  /** A function or null (typed loosely: the DOM's and the SDK's declarations of it differ). */
  onabort?: unknown;
  addEventListener?: (type: 'abort', listener: () => void, options?: { once?: boolean }) => void;
  removeEventListener?: (type: 'abort', listener: () => void) => void;
}

export interface WarmpoolHttpHandlerOptions {
  /**
   * The pool. Default: the process-wide getGlobalAgent(), so every SDK client in the process shares one
   * (or, when connectionTimeout or allowHttp2 differ from its settings, one process-wide Agent per such
   * setting, made once).
   */
  agent?: Agent;
  /**
   * Request sent → response head, and the longest silence between body chunks, ms (warmpool's
   * headersTimeout and bodyTimeout); 0 = none. Default: warmpool's (30 s each).
   */
  requestTimeout?: number;
  /** TCP + TLS connect, ms: the Agent's connectTimeout (so not with `agent`: set it there). */
  connectionTimeout?: number;
  /** Offer HTTP/2 by ALPN: the Agent's allowHttp2 (so not with `agent`: set it there). Default true. */
  allowHttp2?: boolean;
}

/** What httpHandlerConfigs() returns: the resolved options, plus whatever the SDK set. */
export interface WarmpoolHttpHandlerConfig {
  requestTimeout?: number | undefined;
  connectionTimeout?: number | undefined;
  allowHttp2?: boolean | undefined;
  [key: string]: unknown;
}

/** The Agents made for settings other than the global one's, keyed by `connectTimeout/allowHttp2`. */
const sharedAgents = new Map<string, Agent>();

function agentFor(options: WarmpoolHttpHandlerOptions): Agent {
  const { connectionTimeout, allowHttp2 } = options;
  if (options.agent !== undefined) {
    if (connectionTimeout !== undefined || allowHttp2 !== undefined) {
      throw new InvalidArgumentError(
        'connectionTimeout and allowHttp2 are Agent options: with `agent`, set them on the Agent',
      );
    }
    return options.agent;
  }
  const global = getGlobalAgent();
  const connectTimeout = connectionTimeout ?? global.options.connectTimeout;
  const h2 = allowHttp2 ?? global.options.allowHttp2;
  if (connectTimeout === global.options.connectTimeout && h2 === global.options.allowHttp2) return global;
  const key = `${connectTimeout}/${h2}`;
  let agent = sharedAgents.get(key);
  if (agent === undefined || agent.closing) {
    agent = new Agent({ connectTimeout, allowHttp2: h2 });
    sharedAgents.set(key, agent);
  }
  return agent;
}

/**
 * The SDK's requestHandler on a warmpool Agent. `destroy()` (the SDK calls it from client.destroy())
 * leaves the Agent open: other clients share it. Close the Agent itself for that.
 */
export class WarmpoolHttpHandler {
  /**
   * 'http/1.1' even when a connection turns out to be HTTP/2: the SDK reads 'h2' as "replace Host
   * with an :authority header", and warmpool derives :authority from Host itself, per connection.
   */
  readonly metadata = { handlerProtocol: 'http/1.1' };
  readonly agent: Agent;
  #config: WarmpoolHttpHandlerConfig;
  #client: Client;

  /** Options, or (as the SDK's own handlers accept) a function resolving to them. */
  static create(instanceOrOptions?: WarmpoolHttpHandler | WarmpoolHttpHandlerOptions): WarmpoolHttpHandler {
    if (instanceOrOptions instanceof WarmpoolHttpHandler) return instanceOrOptions;
    return new WarmpoolHttpHandler(instanceOrOptions);
  }

  constructor(options: WarmpoolHttpHandlerOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('WarmpoolHttpHandler options must be an object');
    }
    checkTimeout('requestTimeout', options.requestTimeout);
    checkTimeout('connectionTimeout', options.connectionTimeout);
    if (options.allowHttp2 !== undefined && typeof options.allowHttp2 !== 'boolean') {
      throw new InvalidArgumentError(`allowHttp2 must be a boolean, got ${typeof options.allowHttp2}`);
    }
    this.agent = agentFor(options);
    this.#config = {
      requestTimeout: options.requestTimeout,
      connectionTimeout: options.connectionTimeout ?? this.agent.options.connectTimeout,
      allowHttp2: options.allowHttp2 ?? this.agent.options.allowHttp2,
    };
    this.#client = clientFor(this.agent, options.requestTimeout);
  }

  /** Sends the SDK's request; resolves with `{ response }` once the response head has arrived. */
  async handle(
    request: AwsHttpRequest,
    options: AwsHandlerOptions = {},
  ): Promise<{ response: AwsHttpResponse }> {
    const signal = options.abortSignal;
    if (signal?.aborted)
      throw toSdkError(new AbortedError('request aborted before it was sent', { cause: signal.reason }));
    let init: RequestInit;
    let url: string;
    try {
      url = requestUrl(request);
      init = {
        method: request.method,
        headers: outgoingHeaders(request),
        body: requestBody(request.body),
      };
      const timeout = options.requestTimeout;
      if (timeout !== undefined && timeout !== this.#config.requestTimeout) {
        checkTimeout('requestTimeout', timeout);
        init.headersTimeout = timeout;
        init.bodyTimeout = timeout;
      }
      if (signal !== undefined) init.signal = domSignal(signal);
    } catch (err) {
      throw toSdkError(err);
    }
    let res: Awaited<ReturnType<Client['request']>>;
    try {
      res = await this.#client.request(url, init);
    } catch (err) {
      throw toSdkError(err);
    }
    // The body's own errors (a body timeout, a reset mid-body) reach the SDK through the stream:
    // named as the SDK classifies them before any listener of the SDK's sees them.
    res.body.prependListener('error', nameBodyError);
    return {
      response: {
        statusCode: res.status,
        reason: res.statusText,
        headers: joinHeaders(res.headers),
        body: res.body,
      },
    };
  }

  /** The SDK sets a config key (requestTimeout, or one of its own symbols) through its extensions. */
  updateHttpClientConfig(key: keyof WarmpoolHttpHandlerConfig | symbol, value: unknown): void {
    if (typeof key === 'symbol') return; // the SDK's logger and default socket timeout: not used here
    this.#config = { ...this.#config, [key]: value };
    if (key === 'requestTimeout') {
      checkTimeout('requestTimeout', value);
      this.#client = clientFor(this.agent, value as number | undefined);
    }
  }

  httpHandlerConfigs(): WarmpoolHttpHandlerConfig {
    return this.#config;
  }

  /** Nothing to release: the Agent is shared (close it, not the handler, to close its connections). */
  destroy(): void {}
}

function checkTimeout(name: string, value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && value >= 0 && Number.isFinite(value))) {
    throw new InvalidArgumentError(`${name} must be a number of ms >= 0, got ${String(value)}`);
  }
}

function clientFor(agent: Agent, requestTimeout: number | undefined): Client {
  // retryOnStale stays on: warmpool replays only what is safe (invariant 5), below the SDK's retries.
  return requestTimeout === undefined
    ? new Client({ agent })
    : new Client({ agent, headersTimeout: requestTimeout, bodyTimeout: requestTimeout });
}

/**
 * `protocol//hostname:port path ?query #fragment`. The query is written as the SDK's own handlers
 * write it (keys sorted, RFC 3986 escaping, a null value as a bare key, an array as repeated keys):
 * SigV4 signed exactly that canonical form. The fragment is kept in the URL (res.url) but, as a
 * fragment is, not sent.
 */
export function requestUrl(request: AwsHttpRequest): string {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError('the request must be an object');
  }
  const protocol = request.protocol.endsWith(':') ? request.protocol : `${request.protocol}:`;
  let host = request.hostname;
  if (typeof host !== 'string' || host === '') throw new InvalidArgumentError('the request has no hostname');
  if (host.indexOf(':') !== -1 && host.charCodeAt(0) !== 0x5b) host = `[${host}]`;
  let url = `${protocol}//${host}`;
  if (request.port !== undefined && request.port !== null) url += `:${request.port}`;
  const path = request.path === undefined || request.path === '' ? '/' : request.path;
  url += path.charCodeAt(0) === 0x2f ? path : `/${path}`;
  const query = request.query;
  if (query !== undefined && query !== null) {
    const qs = queryString(query);
    if (qs !== '') url += `?${qs}`;
  }
  if (request.fragment) url += `#${request.fragment}`;
  return url;
}

function queryString(query: NonNullable<AwsHttpRequest['query']>): string {
  let out = '';
  for (const rawKey of Object.keys(query).sort()) {
    const value = query[rawKey];
    const key = escapeUri(rawKey);
    if (Array.isArray(value)) {
      for (const v of value) out += `${out === '' ? '' : '&'}${key}=${escapeUri(v ?? '')}`;
    } else {
      out += out === '' ? key : `&${key}`;
      if (value || typeof value === 'string') out += `=${escapeUri(value)}`;
    }
  }
  return out;
}

/** RFC 3986 unreserved characters stay; encodeURIComponent leaves !'()* too, which SigV4 encodes. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The SDK's headers as warmpool takes them. Dropped: pseudo-headers (an SDK set up for HTTP/2 adds
 * :authority; warmpool derives it from Host per connection) and `transfer-encoding: chunked` (the SDK
 * sets it on a body of unknown length, which is what warmpool sends chunked anyway; over HTTP/2 there is
 * no such header). Userinfo becomes Basic authorization, as node:http's `auth` option makes it.
 * The SDK's object is copied only when something must change.
 */
function outgoingHeaders(request: AwsHttpRequest): Record<string, string> {
  const headers = request.headers;
  let copy: Record<string, string> | undefined;
  let hasAuthorization = false;
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    if (name.charCodeAt(0) === 0x3a) {
      copy ??= { ...headers };
      delete copy[name];
      continue;
    }
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      const value = String(headers[name]).trim().toLowerCase();
      if (value !== 'chunked') {
        throw new InvalidArgumentError(`transfer-encoding ${JSON.stringify(headers[name])} is not supported`);
      }
      copy ??= { ...headers };
      delete copy[name];
    } else if (name.length === 13 && name.toLowerCase() === 'authorization') {
      hasAuthorization = true;
    }
  }
  if ((request.username != null || request.password != null) && !hasAuthorization) {
    copy ??= { ...headers };
    const credentials = `${request.username ?? ''}:${request.password ?? ''}`;
    copy.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  return copy ?? headers;
}

/** The SDK's body: undefined, a string, a Buffer or other view, a Readable, or an async iterable. */
function requestBody(body: unknown): RequestBody | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    return body as RequestBody;
  }
  throw new InvalidArgumentError(`unsupported request body type ${typeof body}`);
}

/** A DOM AbortSignal as is; the SDK's older signal (only `onabort`) bridged to one. */
function domSignal(signal: AbortSignalLike): AbortSignal {
  if (typeof signal.addEventListener === 'function' && typeof signal.removeEventListener === 'function') {
    return signal as unknown as AbortSignal;
  }
  const controller = new AbortController();
  const legacy = signal as { onabort?: ((this: unknown, ev: unknown) => unknown) | null };
  const previous = legacy.onabort;
  legacy.onabort = function (this: unknown, ev: unknown) {
    controller.abort(signal.reason);
    return previous?.call(this, ev);
  };
  return controller.signal;
}

/** Lowercase names (warmpool's already are); a repeated field's values joined with ", ". */
function joinHeaders(headers: IncomingHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const v = headers[name]!;
    out[name] = typeof v === 'string' ? v : v.join(', ');
  }
  return out;
}

/**
 * Names an error as the SDK's retry strategy classifies errors (@smithy/service-error-classification):
 * by `name` ('TimeoutError' is transient, 'AbortError' never retried) and by a Node socket code
 * (ECONNRESET, EPIPE, ECONNREFUSED, ETIMEDOUT) on the error or down its `cause` chain. The warmpool
 * error itself is kept (its `code`, class and `cause` stay), only its name is set: a socket error
 * that carried Node's code already has it in `cause`; a connection closed without one gets the
 * ECONNRESET node:http reports for it ("socket hang up"). An HTTP/2 REFUSED_STREAM keeps node:http2's
 * ERR_HTTP2_STREAM_ERROR as its cause, which the SDK recognises.
 */
export function toSdkError(err: unknown): unknown {
  if (err instanceof AbortedError) setName(err, 'AbortError');
  else if (
    err instanceof HeadersTimeoutError ||
    err instanceof BodyTimeoutError ||
    err instanceof ConnectTimeoutError ||
    err instanceof QueueTimeoutError
  ) {
    setName(err, 'TimeoutError');
  } else if (err instanceof SocketClosedError && !hasCode(err.cause)) {
    Object.defineProperty(err, 'cause', {
      value: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  return err;
}

function setName(err: Error, name: string): void {
  Object.defineProperty(err, 'name', { value: name, writable: true, configurable: true, enumerable: false });
}

function hasCode(cause: unknown): boolean {
  for (let c = cause, depth = 0; c instanceof Error && depth < 10; c = c.cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('WARMPOOL_')) return true;
  }
  return false;
}

/** An 'error' listener shared by every body (no closure per request). */
function nameBodyError(err: unknown): void {
  toSdkError(err);
}
