/**
 * warmpool under undici's Dispatcher contract: Node's built-in fetch, the undici package (request,
 * stream, fetch) and every SDK built on either call `dispatcher.dispatch(options, handler)`; this
 * answers those calls with warmpool's request(). A thin layer over Client (DESIGN.md, "adapters"):
 * nothing here reaches into the pool. No runtime dependency on undici either: the contract is
 * described by the minimal interfaces below, as undici's lib/dispatcher/dispatcher-base.js,
 * lib/handler/{wrap,unwrap}-handler.js and lib/web/fetch/index.js use it (undici 6.x, bundled by
 * Node 20, and 7.x, bundled by Node 22/24).
 *
 * What it does not do (each refused through the handler's onError with a typed error, as undici
 * itself reports a bad option): protocol upgrades and CONNECT (WebSocket needs them), redirects
 * (`maxRedirections` > 0; fetch follows redirects itself and passes 0). Content decoding is left to
 * the caller, as undici's dispatchers leave it: fetch decodes on its side.
 */
import { EventEmitter } from 'node:events';
import { Client, type RequestInit } from '../client/client.js';
import { AbortedError, AgentClosedError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import type { IncomingHeaders, OutgoingHeaders } from '../headers.js';
import { type Agent, getGlobalAgent } from '../pool/agent.js';
import type { RequestBody } from '../request/body.js';
import type { BodySink, ResponseBody } from '../response/body.js';
import type { Response } from '../response/response.js';

/** The options of undici's `dispatch(options, handler)` that warmpool reads. */
export interface DispatchOptions {
  /** `http(s)://host:port`, a string or a URL. */
  origin?: string | URL;
  /** Starts with '/'; may carry the query. */
  path: string;
  /** Default GET. */
  method?: string;
  /** Appended to `path` as a query string. */
  query?: Record<string, unknown>;
  /** An object (a value may be an array), a flat [name, value, ...] array, or an iterable of pairs. */
  headers?: unknown;
  body?: unknown;
  /** warmpool's own: aborts as the handler's abort() does. */
  signal?: AbortSignal | null;
  headersTimeout?: number | null;
  bodyTimeout?: number | null;
  idempotent?: boolean | null;
  /** Close the connection after this request (sent as `connection: close`). */
  reset?: boolean | null;
  /** Sent as `expect: 100-continue` with a body: the body waits for 100 Continue (see expectContinueTimeout). */
  expectContinue?: boolean | null;
  /** Refused: protocol upgrades are not implemented. */
  upgrade?: string | null;
  /** Only 0 (what fetch passes): this dispatcher does not follow redirects. */
  maxRedirections?: number | null;
  [option: string]: unknown;
}

/**
 * What a handler may implement: undici's classic callbacks, or the controller ones of undici 7
 * (a handler with `onRequestStart` is taken as the controller kind, as undici's WrapHandler does).
 */
export interface DispatchHandler {
  onConnect?(abort: (reason?: unknown) => void, context?: object): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): unknown;
  onData?(chunk: Buffer): unknown;
  onComplete?(rawTrailers: Buffer[] | null): void;
  onError?(err: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: Buffer[], socket: unknown): void;
  onRequestStart?(controller: DispatchController, context: object): void;
  onResponseStart?(
    controller: DispatchController,
    statusCode: number,
    headers: IncomingHeaders,
    statusMessage: string,
  ): void;
  onResponseData?(controller: DispatchController, chunk: Buffer): void;
  onResponseEnd?(controller: DispatchController, trailers: IncomingHeaders): void;
  onResponseError?(controller: DispatchController, err: Error): void;
}

/** The controller a controller-style handler gets: pause, resume or abort its response. */
export interface DispatchController {
  readonly aborted: boolean;
  readonly paused: boolean;
  readonly reason: unknown;
  pause(): void;
  resume(): void;
  abort(reason?: unknown): void;
}

export interface WarmpoolDispatcherOptions {
  /** The pool; default the process-wide getGlobalAgent(). */
  agent?: Agent;
}

type Callback = (err: Error | null, data: null) => void;

const NO_TRAILERS: Buffer[] = [];

/**
 * undici's Dispatcher contract over a warmpool Agent. Pass it as `dispatcher` to Node's fetch or to
 * undici, or make it the global one with installGlobalDispatcher(). Closing or destroying it ends
 * its own requests, not the Agent (which others may share): close the Agent for that.
 */
export class WarmpoolDispatcher extends EventEmitter {
  readonly agent: Agent;
  readonly #client: Client;
  /** Requests dispatched and not yet ended, for close() and destroy(). */
  readonly #inFlight = new Set<Dispatch>();
  #closed = false;
  #destroyed = false;
  #closeWaiters: Array<() => void> = [];

  constructor(options: WarmpoolDispatcherOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('WarmpoolDispatcher options must be an object');
    }
    this.agent = options.agent ?? getGlobalAgent();
    this.#client = new Client({ agent: this.agent });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * Starts a request. Returns true when it was taken (warmpool queues what it cannot send yet, so
   * there is never a 'drain' to wait for), false when it was refused: then the handler's onError has
   * already been called (bad options, an upgrade, a closed dispatcher), as undici's DispatcherBase does.
   */
  dispatch(options: DispatchOptions, handler: DispatchHandler): boolean {
    if (typeof handler !== 'object' || handler === null) {
      throw new InvalidArgumentError('handler must be an object');
    }
    const d = new Dispatch(this, handler);
    let url: string;
    let init: RequestInit;
    try {
      if (this.#destroyed) throw new AgentClosedError('the WarmpoolDispatcher was destroyed');
      if (this.#closed) throw new AgentClosedError('the WarmpoolDispatcher is closed');
      if (typeof options !== 'object' || options === null) {
        throw new InvalidArgumentError('dispatch options must be an object');
      }
      url = targetUrl(options);
      init = requestInit(options, d);
    } catch (err) {
      d.refuse(err as Error);
      return false;
    }
    this.#inFlight.add(d);
    d.start();
    if (d.ended) return true;
    const signal = options.signal;
    if (signal != null) {
      d.watch(signal);
      if (d.ended) return true;
    }
    this.#client.request(url, init).then(
      (res) => d.onResponse(res),
      (err: Error) => d.fail(err),
    );
    return true;
  }

  /** @internal A request ended (completed, failed or aborted). */
  ended(d: Dispatch): void {
    this.#inFlight.delete(d);
    if (this.#inFlight.size === 0 && this.#closeWaiters.length > 0) {
      const waiters = this.#closeWaiters;
      this.#closeWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Refuses new requests and resolves (or calls back) once the ones in flight have ended. The Agent
   * stays open.
   */
  close(): Promise<void>;
  close(callback: Callback): void;
  close(callback?: Callback): Promise<void> | undefined {
    this.#closed = true;
    const done = new Promise<void>((resolve) => {
      if (this.#inFlight.size === 0) resolve();
      else this.#closeWaiters.push(resolve);
    });
    if (callback === undefined) return done;
    if (typeof callback !== 'function') throw new InvalidArgumentError('callback must be a function');
    done.then(() => callback(null, null));
    return undefined;
  }

  /**
   * Refuses new requests and ends the ones in flight now, with `err` (an AgentClosedError by
   * default) through their handlers' onError. The Agent stays open.
   */
  destroy(err?: Error | null): Promise<void>;
  destroy(callback: Callback): void;
  destroy(err: Error | null | undefined, callback: Callback): void;
  destroy(errOrCallback?: Error | null | Callback, callback?: Callback): Promise<void> | undefined {
    let err = errOrCallback;
    if (typeof err === 'function') {
      callback = err;
      err = null;
    }
    this.#closed = true;
    this.#destroyed = true;
    const reason = err ?? new AgentClosedError('the WarmpoolDispatcher was destroyed');
    for (const d of [...this.#inFlight]) d.abort(reason);
    const done = this.close();
    if (callback === undefined) return done;
    if (typeof callback !== 'function') throw new InvalidArgumentError('callback must be a function');
    done.then(() => callback(null, null));
    return undefined;
  }

  /**
   * undici's Dispatcher.compose(): a dispatcher whose dispatch() runs through `interceptors` (undici's
   * `interceptors.retry()`, `dump()`, ...), the last one calling this dispatcher's dispatch().
   */
  compose(...args: unknown[]): WarmpoolDispatcher {
    const interceptors = (Array.isArray(args[0]) ? args[0] : args) as unknown[];
    let dispatch = this.dispatch.bind(this) as (o: DispatchOptions, h: DispatchHandler) => boolean;
    for (const interceptor of interceptors) {
      if (interceptor == null) continue;
      if (typeof interceptor !== 'function') {
        throw new InvalidArgumentError(`an interceptor must be a function, got ${typeof interceptor}`);
      }
      dispatch = (interceptor as (next: typeof dispatch) => typeof dispatch)(dispatch);
      if (typeof dispatch !== 'function')
        throw new InvalidArgumentError('an interceptor must return a function');
    }
    return new Proxy(this, {
      get: (target, key) => (key === 'dispatch' ? dispatch : Reflect.get(target, key, target)),
    });
  }
}

/**
 * One dispatched request: the bridge from warmpool's Response to the handler's callbacks, and the
 * controller a controller-style handler gets.
 */
class Dispatch implements DispatchController {
  /** Aborts the warmpool request (queued, sent, or mid-body). */
  readonly controller = new AbortController();
  readonly #owner: WarmpoolDispatcher;
  readonly #handler: DispatchHandler;
  /** The handler speaks undici 7's controller callbacks (as undici decides it: onRequestStart). */
  readonly #controllerStyle: boolean;
  #body: ResponseBody | null = null;
  #paused = false;
  #aborted = false;
  #reason: unknown = null;
  /** A whole body was handed over and the handler paused: its end waits for resume(). */
  #endOnResume = false;
  #trailers: IncomingHeaders | undefined = undefined;
  /** The handler has had its last callback (onComplete or onError). */
  ended = false;

  constructor(owner: WarmpoolDispatcher, handler: DispatchHandler) {
    this.#owner = owner;
    this.#handler = handler;
    this.#controllerStyle = typeof handler.onRequestStart === 'function';
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** The classic handler's abort(reason), given to onConnect. */
  readonly abortRequest = (reason?: unknown): void => this.abort(reason);
  /** The classic handler's resume(), given to onHeaders. */
  readonly resumeRequest = (): void => this.resume();

  pause(): void {
    if (this.#paused || this.ended) return;
    this.#paused = true;
    this.#body?.pauseSink();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#endOnResume) {
      this.#endOnResume = false;
      this.deliverEnd(this.#trailers);
      return;
    }
    this.#body?.resumeSink();
  }

  /** Ends the request now: the warmpool request is aborted (its connection closed if mid-body). */
  abort(reason?: unknown): void {
    if (this.ended) return;
    this.#aborted = true;
    // As undici: the handler's onError gets the reason itself (fetch passes an AbortError DOMException).
    const err = reason ?? new AbortedError('request aborted');
    this.#reason = err;
    this.controller.abort(err);
    const body = this.#body;
    if (body !== null) {
      this.#body = null;
      body.destroy();
    }
    this.fail(err);
  }

  /** The caller's own signal in the options (undici's dispatchers ignore it; fetch aborts through abort()). */
  watch(signal: AbortSignal): void {
    if (signal.aborted) {
      this.abort(signal.reason);
      return;
    }
    const onAbort = (): void => this.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.controller.signal.addEventListener('abort', () => signal.removeEventListener('abort', onAbort), {
      once: true,
    });
  }

  /** onConnect / onRequestStart: the handler gets its abort before anything is sent. */
  start(): void {
    try {
      if (this.#controllerStyle) this.#handler.onRequestStart!(this, {});
      else this.#handler.onConnect?.(this.abortRequest, {});
    } catch (err) {
      this.abort(err);
    }
  }

  /** Refused before it started (as undici's DispatcherBase: onError, or a throw without one). */
  refuse(err: Error): void {
    this.ended = true;
    const h = this.#handler;
    if (this.#controllerStyle) {
      if (typeof h.onResponseError !== 'function') throw err;
      h.onResponseError(this, err);
    } else {
      if (typeof h.onError !== 'function') throw err;
      h.onError(err);
    }
  }

  onResponse(res: Response): void {
    const body = res.body;
    if (this.ended) {
      body.destroy();
      return;
    }
    this.#body = body;
    const h = this.#handler;
    try {
      h.onResponseStarted?.();
      if (this.#controllerStyle) {
        h.onResponseStart?.(this, res.status, res.headers, res.statusText);
      } else if (
        h.onHeaders?.(res.status, rawFields(res.headers), this.resumeRequest, res.statusText) === false
      ) {
        this.pause();
      }
    } catch (err) {
      this.abort(err);
      return;
    }
    if (this.ended) return; // aborted in onHeaders
    // Most bodies have all arrived with their head: handed over in one onData, they skip the
    // Readable's flowing machinery (three listeners, a push and an 'end' tick per response).
    const whole = this.#paused ? null : body.takeWhole();
    if (whole !== null) {
      this.#body = null;
      if (whole.length > 0) this.deliverData(whole);
      if (this.ended) return;
      if (this.#paused) {
        // As undici: a handler that asked for a pause gets its onComplete only after resume().
        this.#endOnResume = true;
        this.#trailers = body.trailers;
      } else this.deliverEnd(body.trailers);
      return;
    }
    // The rest comes straight from the connection, as undici's own dispatchers deliver it: each
    // chunk in the socket read that brought it, no Readable (and its ticks) in between.
    body.sinkTo(new HandlerSink(this), this.#paused);
  }

  onInformation(status: number, statusText: string, headers: IncomingHeaders): void {
    // undici hands 1xx heads to onHeaders too (not 100 Continue, which its parser consumes).
    if (this.ended || status === 100) return;
    const h = this.#handler;
    try {
      if (this.#controllerStyle) h.onResponseStart?.(this, status, headers, statusText);
      else h.onHeaders?.(status, rawFields(headers), this.resumeRequest, statusText);
    } catch (err) {
      this.abort(err);
    }
  }

  /** @internal The next chunk of the body to the handler (onData / onResponseData). */
  deliverData(chunk: Buffer): void {
    if (this.ended) return;
    try {
      if (this.#controllerStyle) this.#handler.onResponseData?.(this, chunk);
      else if (this.#handler.onData?.(chunk) === false) this.pause();
    } catch (err) {
      this.abort(err);
    }
  }

  /** @internal The body's end to the handler (onComplete / onResponseEnd). */
  deliverEnd(trailers: IncomingHeaders | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.#body = null;
    this.#owner.ended(this);
    try {
      if (this.#controllerStyle) this.#handler.onResponseEnd?.(this, trailers ?? {});
      else this.#handler.onComplete?.(trailers === undefined ? NO_TRAILERS : rawFields(trailers));
    } catch (err) {
      // As undici's Request.onComplete: a throw from the last callback goes to onError (undici's
      // retry interceptor reports a failed attempt so).
      this.deliverError(err);
    }
  }

  /** The request failed (a WarmpoolError with its code), or was aborted: the handler's onError, once. */
  fail(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const body = this.#body;
    this.#body = null;
    if (body !== null && !body.destroyed) body.destroy();
    this.#owner.ended(this);
    this.deliverError(err);
  }

  private deliverError(err: unknown): void {
    const h = this.#handler;
    if (this.#controllerStyle) h.onResponseError?.(this, err as Error);
    else h.onError?.(err as Error);
  }
}

/**
 * Where a streamed body goes: the handler, through its Dispatch. A class of its own so the
 * controller handlers get (the Dispatch) does not carry the body's callbacks.
 */
class HandlerSink implements BodySink {
  readonly #d: Dispatch;

  constructor(d: Dispatch) {
    this.#d = d;
  }

  onChunk(chunk: Buffer): boolean {
    this.#d.deliverData(chunk);
    return !this.#d.paused;
  }

  onEnd(trailers: IncomingHeaders | undefined): void {
    this.#d.deliverEnd(trailers);
  }

  onError(err: Error): void {
    this.#d.fail(err);
  }
}

/** origin + path (+ query) as the URL warmpool requests. */
function targetUrl(o: DispatchOptions): string {
  const origin = o.origin;
  let base: string;
  if (typeof origin === 'string') base = origin.endsWith('/') ? origin.slice(0, -1) : origin;
  else if (origin instanceof URL) base = origin.origin;
  else throw new InvalidArgumentError('origin must be a string or a URL');
  const path = o.path;
  if (typeof path !== 'string' || path.charCodeAt(0) !== 0x2f /* '/' */) {
    throw new InvalidArgumentError('path must be a string starting with /');
  }
  if (o.query == null) return base + path;
  const query = new URLSearchParams(o.query as Record<string, string>).toString();
  if (query === '') return base + path;
  return `${base}${path}${path.includes('?') ? '&' : '?'}${query}`;
}

/** undici's dispatch options as warmpool's request init; throws on what it does not do. */
function requestInit(o: DispatchOptions, d: Dispatch): RequestInit {
  if (o.upgrade != null && (o.upgrade as unknown) !== false) {
    throw new UnsupportedError(
      `WarmpoolDispatcher does not do protocol upgrades (upgrade: ${String(o.upgrade)}): WebSocket needs a dispatcher that does`,
    );
  }
  const method = o.method === undefined ? 'GET' : o.method;
  if (method === 'CONNECT') throw new UnsupportedError('WarmpoolDispatcher does not do CONNECT');
  if (o.maxRedirections != null && o.maxRedirections !== 0) {
    throw new InvalidArgumentError('WarmpoolDispatcher does not follow redirects: maxRedirections must be 0');
  }
  let headers = outgoingHeaders(o.headers);
  const body = requestBody(o.body);
  if (body.extra !== null) headers = withMissing(headers, body.extra);
  if (o.reset === true) headers = withMissing(headers, [['connection', 'close']]);
  // As undici: the body waits for the server's 100 Continue (warmpool's Expect handling, which
  // undici's own client does only over HTTP/2).
  if (o.expectContinue === true && body.body != null)
    headers = withMissing(headers, [['expect', '100-continue']]);
  const init: RequestInit = {
    method,
    headers,
    body: body.body,
    signal: d.controller.signal,
    // undici's handlers keep (or copy) each chunk themselves: no gathering on the way, and reads go
    // into buffers that are handed over, as with undici's own dispatchers.
    bodyAsChunks: true,
    onInformation: (info) => d.onInformation(info.status, info.statusText, info.headers),
  };
  if (o.headersTimeout != null) init.headersTimeout = o.headersTimeout;
  if (o.bodyTimeout != null) init.bodyTimeout = o.bodyTimeout;
  if (o.idempotent != null) init.idempotent = o.idempotent;
  return init;
}

/**
 * Headers as warmpool takes them. An object of strings (what fetch passes: its header list's entries)
 * goes as it is; anything else (Buffers, nulls, numbers, a flat array, an iterable of pairs) becomes
 * [name, value] pairs.
 */
function outgoingHeaders(h: unknown): OutgoingHeaders | undefined {
  if (h == null) return undefined;
  if (typeof h !== 'object') throw new InvalidArgumentError('headers must be an object or an array');
  if (Array.isArray(h)) {
    if (h.length % 2 !== 0) throw new InvalidArgumentError('a flat headers array must have an even length');
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < h.length; i += 2) addPairs(pairs, h[i], h[i + 1]);
    return pairs;
  }
  if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const pairs: Array<[string, string]> = [];
    for (const pair of h as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new InvalidArgumentError('headers must be [name, value] pairs');
      }
      addPairs(pairs, pair[0], pair[1]);
    }
    return pairs;
  }
  const rec = h as Record<string, unknown>;
  let plain = true;
  for (const name in rec) {
    const v = rec[name];
    if (typeof v !== 'string' && v !== undefined) {
      plain = false;
      break;
    }
  }
  if (plain) return rec as Record<string, string>;
  const pairs: Array<[string, string]> = [];
  for (const name of Object.keys(rec)) addPairs(pairs, name, rec[name]);
  return pairs;
}

function addPairs(pairs: Array<[string, string]>, name: unknown, value: unknown): void {
  const n = Buffer.isBuffer(name) ? name.toString('latin1') : name;
  if (typeof n !== 'string') throw new InvalidArgumentError('a header name must be a string');
  if (value === undefined) return;
  if (Array.isArray(value)) {
    for (const v of value) pairs.push([n, headerValue(n, v)]);
  } else {
    pairs.push([n, headerValue(n, value)]);
  }
}

function headerValue(name: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null) return '';
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  throw new InvalidArgumentError(`invalid value for header ${JSON.stringify(name)}`);
}

/** `headers` plus each of `extra` whose name it lacks (any case). */
function withMissing(
  headers: OutgoingHeaders | undefined,
  extra: ReadonlyArray<readonly [string, string]>,
): OutgoingHeaders {
  const pairs: Array<[string, string]> = [];
  const seen = new Set<string>();
  if (headers !== undefined) {
    if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [n, v] of headers as Iterable<readonly [string, string]>) {
        pairs.push([n, v]);
        seen.add(n.toLowerCase());
      }
    } else {
      for (const [n, v] of Object.entries(headers as Record<string, unknown>)) {
        addPairs(pairs, n, v);
        seen.add(n.toLowerCase());
      }
    }
  }
  for (const [n, v] of extra) if (!seen.has(n)) pairs.push([n, v]);
  return pairs;
}

interface BlobLike {
  readonly size: number;
  readonly type: string;
  stream(): AsyncIterable<Uint8Array>;
}

/**
 * A request body as warmpool takes it, and the headers it implies (a Blob's type and size, a
 * FormData's multipart boundary). fetch has already made every body an async iterable of bytes
 * (its own FormData, Blob, URLSearchParams included) or null; undici's request() passes them as given.
 */
function requestBody(b: unknown): { body: RequestBody; extra: Array<[string, string]> | null } {
  if (b == null) return { body: undefined, extra: null };
  if (typeof b === 'string' || b instanceof Uint8Array) return { body: b, extra: null };
  if (ArrayBuffer.isView(b))
    return { body: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), extra: null };
  if (b instanceof ArrayBuffer) return { body: new Uint8Array(b), extra: null };
  if (typeof (b as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    return { body: b as AsyncIterable<Uint8Array>, extra: null };
  }
  if (typeof FormData === 'function' && b instanceof FormData) {
    // The standard's multipart encoding, with its boundary, from the global Response.
    const encoded = new globalThis.Response(b);
    const type = encoded.headers.get('content-type');
    return {
      body: encoded.body as unknown as AsyncIterable<Uint8Array>,
      extra: type === null ? [] : [['content-type', type]],
    };
  }
  if (typeof (b as BlobLike).stream === 'function' && typeof (b as BlobLike).size === 'number') {
    const blob = b as BlobLike;
    const extra: Array<[string, string]> = [['content-length', String(blob.size)]];
    if (blob.type !== '') extra.push(['content-type', blob.type]);
    return { body: blob.stream(), extra };
  }
  if (typeof (b as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return { body: fromIterable(b as Iterable<unknown>), extra: null };
  }
  throw new InvalidArgumentError(
    'body must be a string, a Buffer or typed array, an ArrayBuffer, a Readable, an (async) iterable, a Blob or a FormData',
  );
}

async function* fromIterable(it: Iterable<unknown>): AsyncIterable<Uint8Array> {
  for (const chunk of it) {
    if (typeof chunk === 'string') yield Buffer.from(chunk);
    else if (chunk instanceof Uint8Array) yield chunk;
    else throw new InvalidArgumentError('a body iterable must yield strings or Uint8Arrays');
  }
}

/** Header fields as undici's raw list: name, value, name, value, ... as latin1 Buffers. */
function rawFields(fields: IncomingHeaders): Buffer[] {
  const raw: Buffer[] = [];
  for (const name in fields) {
    const v = fields[name]!;
    const n = Buffer.from(name, 'latin1');
    if (typeof v === 'string') raw.push(n, Buffer.from(v, 'latin1'));
    else for (let i = 0; i < v.length; i++) raw.push(n, Buffer.from(v[i]!, 'latin1'));
  }
  return raw;
}

const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');
/** undici 7.x sets both; newer undici reads this one. */
const GLOBAL_DISPATCHER_2 = Symbol.for('undici.globalDispatcher.2');

/**
 * Makes a WarmpoolDispatcher the global dispatcher: the one Node's built-in fetch (each Node's
 * bundled undici) and the undici package use when no `dispatcher` is given. Returns a function that
 * puts the previous one back (unless another has been installed since: that one is left alone).
 */
export function installGlobalDispatcher(options: WarmpoolDispatcherOptions = {}): () => void {
  const dispatcher = new WarmpoolDispatcher(options);
  // Node loads its bundled undici on first use of a fetch global, and it installs its own Agent
  // then unless one is set: load it now, so that what we replace (and put back) is that Agent and
  // not nothing (undici reads a missing one as undefined and fails).
  void (globalThis as { Headers?: unknown }).Headers;
  const g = globalThis as unknown as Record<symbol, unknown>;
  const previous1 = g[GLOBAL_DISPATCHER];
  const previous2 = g[GLOBAL_DISPATCHER_2];
  setGlobal(GLOBAL_DISPATCHER, dispatcher);
  setGlobal(GLOBAL_DISPATCHER_2, dispatcher);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    if (g[GLOBAL_DISPATCHER] === dispatcher) setGlobal(GLOBAL_DISPATCHER, previous1);
    if (g[GLOBAL_DISPATCHER_2] === dispatcher) setGlobal(GLOBAL_DISPATCHER_2, previous2);
  };
}

/** As undici's setGlobalDispatcher defines it (so undici can define it again). */
function setGlobal(key: symbol, value: unknown): void {
  Object.defineProperty(globalThis, key, { value, writable: true, enumerable: false, configurable: false });
}
