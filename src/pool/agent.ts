import { hash } from 'node:crypto';
import type { DialTarget, TlsOptions } from '../dial/dial.js';
import { type ProxyConfig, type ProxyOption, ProxyRoutes } from '../dial/proxy-config.js';
import { TlsSessionCache } from '../dial/tls-session-cache.js';
import { AgentClosedError, InvalidArgumentError } from '../errors.js';
import type { Exchange } from '../exchange/exchange.js';
import { type Connector, socketConnector } from './dialer.js';
import { type AgentOptions, type ResolvedAgentOptions, resolveAgentOptions } from './options.js';
import { OriginPool } from './origin-pool.js';
import type { OriginStats } from './origin-stats.js';

/** Where a request goes: the parts of a URL that choose a connection. */
export interface Target {
  secure: boolean;
  hostname: string; // without IPv6 brackets
  port: number;
  /** scheme://host:port as written in errors and stats. */
  origin: string;
}

export interface AgentStats {
  /** Open connections across all origins. */
  open: number;
  origins: OriginStats[];
}

/** Origins with nothing open are forgotten only past this many pools (their counters go with them). */
const MAX_EMPTY_POOLS_KEPT = 1024;

/**
 * What names a piece of TLS material (ca, cert, key) in a pool key: a SHA-256 digest of its whole
 * content, so two values share a key only when they are equal (every PEM starts alike: a length and a
 * prefix once let one client certificate, or one CA, stand for another). A string or Buffer is hashed
 * as its bytes (a PEM as a string and as a Buffer make the same connection); an array, as the digests
 * of its elements in order, marked as an array; any other object (a `{ pem, passphrase }` entry), by
 * its identity. Computed once per distinct value: by value for strings (a bounded map), by object for
 * Buffers and arrays, so a Buffer or array changed in place after its first use keeps the digest of
 * what it held then (pass a new one instead).
 */
const objectDigests = new WeakMap<object, string>();
const stringDigests = new Map<string, string>();
const MAX_STRING_DIGESTS = 256;
let nextObjectId = 1;
function digestOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') {
    let d = stringDigests.get(value);
    if (d === undefined) {
      d = hash('sha256', value, 'base64');
      if (stringDigests.size >= MAX_STRING_DIGESTS) stringDigests.clear();
      stringDigests.set(value, d);
    }
    return d;
  }
  if (typeof value !== 'object') return `(${typeof value} ${String(value)})`; // node's TLS will refuse it
  let d = objectDigests.get(value);
  if (d === undefined) {
    if (ArrayBuffer.isView(value)) {
      d = hash('sha256', new Uint8Array(value.buffer, value.byteOffset, value.byteLength), 'base64');
    } else if (Array.isArray(value)) {
      let parts = '';
      for (let i = 0; i < value.length; i++) parts += `${digestOf(value[i])},`;
      d = `[${hash('sha256', parts, 'base64')}]`;
    } else {
      d = `#${nextObjectId++}`;
    }
    objectDigests.set(value, d);
  }
  return d;
}

/** The pool key of a TLS origin: its origin and every TLS option that changes its connections. */
function tlsKey(origin: string, t: TlsOptions): string {
  const name = t.servername === undefined ? '-' : `${String(t.servername).length}:${t.servername}`;
  return `${origin}|${name}|${digestOf(t.ca)}|${digestOf(t.cert)}|${digestOf(t.key)}|${
    t.rejectUnauthorized === false ? 0 : 1
  }`;
}

/** The parts of TlsOptions a pool key is made of, as they were when the key was made. */
type TlsFields = [servername: unknown, ca: unknown, cert: unknown, key: unknown, rejectUnauthorized: unknown];
function tlsFields(t: TlsOptions | undefined): TlsFields {
  return t === undefined
    ? [undefined, undefined, undefined, undefined, undefined]
    : [t.servername, t.ca, t.cert, t.key, t.rejectUnauthorized];
}
/** Same key parts (an options object changed in place makes another key). */
function sameTlsFields(t: TlsOptions, f: TlsFields): boolean {
  return (
    t.servername === f[0] &&
    t.ca === f[1] &&
    t.cert === f[2] &&
    t.key === f[3] &&
    t.rejectUnauthorized === f[4]
  );
}

// The members whose doc comment starts with the internal tag are the pool's own (its OriginPools
// call them as their PoolParent, a Client hands them its requests): the published type declarations
// leave them out (stripInternal), so they are neither in a user's completions nor part of the
// contract. (That tag anywhere in a comment right above a declaration drops the declaration.) The
// class does not declare `implements PoolParent`, which the declarations would keep without the
// members; `new OriginPool(..., this)` checks that an Agent is one.

/**
 * The pool: one OriginPool per origin plus the TLS options that change a connection. Two requests
 * share a connection only when they would have made identical connections. Cheap to keep one per
 * process (getGlobalAgent()); Clients are views on an Agent and hold no sockets.
 */
export class Agent {
  readonly options: ResolvedAgentOptions;
  /** @internal */
  readonly sessions = new TlsSessionCache();
  private readonly pools = new Map<string, OriginPool>();
  private openConnections = 0;
  private connectionIds = 0;
  private closingState: 'open' | 'closing' | 'destroyed' = 'open';
  private closeWaiters: Array<() => void> = [];

  constructor(options: AgentOptions = {}) {
    this.options = resolveAgentOptions(options);
  }

  /** @internal */
  get closing(): boolean {
    return this.closingState !== 'open';
  }

  /**
   * The pool poolFor() returned last, and what it was asked for then: most requests go where the one
   * before went (target objects are shared per authority), and building the key (a string, with
   * ids for the TLS objects) costs more than comparing what it is built from.
   */
  private last:
    | {
        target: Target;
        tls: TlsOptions | undefined;
        fields: TlsFields;
        proxyOption: ProxyOption | undefined;
        pool: OriginPool;
      }
    | undefined;

  /** @internal The pool for a target; made on first use. */
  poolFor(target: Target, tls: TlsOptions | undefined, proxyOption?: ProxyOption): OriginPool {
    const effectiveTls = tls ?? this.options.tls;
    const same = this.lastPoolFor(target, effectiveTls, proxyOption);
    if (same !== undefined) return same;
    let key =
      effectiveTls === undefined || !target.secure ? target.origin : tlsKey(target.origin, effectiveTls);
    // A proxied origin's pool is the proxy's (its address, credentials, headers): a request never
    // rides a connection to another proxy, or a direct one (invariant 8).
    const proxy = this.routeFor(target, proxyOption);
    if (proxy !== undefined) key = `${proxy.key}>${key}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      const dialTarget = this.dialTarget(target, effectiveTls, key);
      dialTarget.proxy = proxy;
      // A TLS origin that offers h2 speaks whatever ALPN chooses; otherwise the dial decides nothing.
      const expected =
        target.secure && dialTarget.alpn.includes('h2')
          ? 'unknown'
          : dialTarget.alpn.includes('h2')
            ? 'h2'
            : 'http/1.1';
      const connect = this.connector(dialTarget, target.origin);
      pool = new OriginPool(key, target.origin, expected, connect, this.options, this);
      this.pools.set(key, pool);
    }
    this.last = { target, tls: effectiveTls, fields: tlsFields(effectiveTls), proxyOption, pool };
    return pool;
  }

  /**
   * @internal
   * The pool poolFor() returned last, when this target goes to it too; else undefined, and no pool
   * is made. Lets Client.request see what an origin speaks (no HTTP/1.1 head for h2) while it
   * validates the request, before any pool exists.
   */
  knownPool(target: Target, tls: TlsOptions | undefined, proxyOption?: ProxyOption): OriginPool | undefined {
    return this.lastPoolFor(target, tls ?? this.options.tls, proxyOption);
  }

  private lastPoolFor(
    target: Target,
    effectiveTls: TlsOptions | undefined,
    proxyOption: ProxyOption | undefined,
  ): OriginPool | undefined {
    const last = this.last;
    if (
      last !== undefined &&
      last.target === target &&
      last.tls === effectiveTls &&
      // A per-request proxy given as a string compares by value; as an object, by identity (read once).
      last.proxyOption === proxyOption &&
      !last.pool.removed &&
      (effectiveTls === undefined || sameTlsFields(effectiveTls, last.fields))
    ) {
      return last.pool;
    }
    return undefined;
  }

  /** Each target's proxy (null: direct), looked up once per target object (they are shared per authority). */
  private readonly proxyRoutes = new WeakMap<Target, ProxyConfig | null>();

  /** @internal The proxy a target goes through, or undefined. */
  proxyFor(target: Target): ProxyConfig | undefined {
    const routes = this.options.proxy;
    if (routes === undefined) return undefined;
    let p = this.proxyRoutes.get(target);
    if (p === undefined) {
      p = routes.route(target.secure, target.hostname, target.port) ?? null;
      this.proxyRoutes.set(target, p);
    }
    return p ?? undefined;
  }

  /** Per-request proxy options, each read once: strings by value (a bounded map), objects by identity. */
  private readonly requestProxyStrings = new Map<string, ProxyRoutes | undefined>();
  private readonly requestProxyObjects = new WeakMap<object, ProxyRoutes | undefined>();

  /**
   * @internal The proxy for a target under a request's own `proxy` option (undefined: the Agent's;
   * null: none), or undefined to go directly. A bad option is an InvalidArgumentError.
   */
  routeFor(target: Target, option: ProxyOption | undefined): ProxyConfig | undefined {
    if (option === undefined) return this.proxyFor(target);
    if (option === null) return undefined;
    let routes: ProxyRoutes | undefined;
    if (typeof option === 'string') {
      if (this.requestProxyStrings.has(option)) routes = this.requestProxyStrings.get(option);
      else {
        routes = ProxyRoutes.from(option);
        if (this.requestProxyStrings.size >= 64) this.requestProxyStrings.clear();
        this.requestProxyStrings.set(option, routes);
      }
    } else if (typeof option === 'object') {
      if (this.requestProxyObjects.has(option)) routes = this.requestProxyObjects.get(option);
      else {
        routes = ProxyRoutes.from(option);
        this.requestProxyObjects.set(option, routes);
      }
    } else {
      routes = ProxyRoutes.from(option); // throws: not a proxy option
    }
    return routes?.route(target.secure, target.hostname, target.port);
  }

  /**
   * @internal The proxy an http:// target is sent to in absolute-form (the request line names the
   * whole URL, and the proxy's headers go with every request), or undefined: direct, or a tunnel.
   * One field read for an Agent without a proxy and a request without one.
   */
  absoluteFormProxy(target: Target, option: ProxyOption | undefined): ProxyConfig | undefined {
    if (
      (option === undefined && this.options.proxy === undefined) ||
      target.secure ||
      this.options.http2 === 'prior-knowledge'
    ) {
      return undefined;
    }
    const p = this.routeFor(target, option);
    return p === undefined || p.tunnel ? undefined : p;
  }

  /**
   * @internal How this Agent opens connections to an origin: dials it. MockAgent (warmpool/testing)
   * answers from interceptors instead, under the same pool.
   */
  protected connector(target: DialTarget, origin: string): Connector {
    return socketConnector(target, this.options, this.sessions, origin);
  }

  private dialTarget(target: Target, tls: TlsOptions | undefined, key: string): DialTarget {
    const o = this.options;
    let alpn: string[];
    if (target.secure) alpn = o.allowHttp2 ? ['h2', 'http/1.1'] : ['http/1.1'];
    else alpn = o.http2 === 'prior-knowledge' ? ['h2'] : [];
    return {
      secure: target.secure,
      hostname: target.hostname,
      port: target.port,
      tls: target.secure ? tls : undefined,
      alpn,
      sessionKey: key,
    };
  }

  /**
   * @internal Queues or sends an exchange. Not named `dispatch`: that name belongs to undici's
   * Dispatcher contract, which an Agent does not implement (see dispatch() below).
   */
  submit(pool: OriginPool, ex: Exchange): void {
    if (pool.removed) pool = this.readopt(pool);
    pool.dispatch(ex);
  }

  private readopt(pool: OriginPool): OriginPool {
    const again = this.pools.get(pool.key);
    if (again !== undefined) return again;
    pool.removed = false;
    this.pools.set(pool.key, pool);
    return pool;
  }

  // ---- PoolParent -------------------------------------------------------------------------------

  /** @internal */
  reserveConnection(requester: OriginPool): boolean {
    if (this.openConnections < this.options.maxConnections) {
      this.openConnections++;
      return true;
    }
    // At the total cap: close the least recently used idle connection of another origin, if any.
    // Its close will call releaseConnection(); the requester gets the room on its next try.
    for (const pool of this.pools.values()) {
      if (pool !== requester && pool.closeOneIdle('agent-close')) {
        if (this.openConnections < this.options.maxConnections) {
          this.openConnections++;
          return true;
        }
      }
    }
    return false;
  }

  /** @internal */
  releaseConnection(): void {
    this.openConnections--;
    if (this.openConnections < this.options.maxConnections && Number.isFinite(this.options.maxConnections)) {
      for (const pool of this.pools.values()) pool.openAsNeeded();
    }
  }

  /** @internal */
  roomWanted(requester: OriginPool): boolean {
    if (this.openConnections < this.options.maxConnections) return false;
    for (const pool of this.pools.values()) if (pool !== requester && pool.waitingForRoom) return true;
    return false;
  }

  /** @internal */
  onPoolEmpty(pool: OriginPool): void {
    // Forget origins with nothing open once there are many, so a process that talks to thousands of
    // hosts does not keep a pool (and its counters) for each forever. A Client that still holds such
    // a pool re-registers it on its next request.
    if (this.pools.size > MAX_EMPTY_POOLS_KEPT && this.pools.get(pool.key) === pool) {
      this.pools.delete(pool.key);
      pool.removed = true;
    }
    if (this.closing && this.allEmpty()) {
      const waiters = this.closeWaiters;
      this.closeWaiters = [];
      for (const w of waiters) w();
    }
  }

  private allEmpty(): boolean {
    for (const pool of this.pools.values()) if (!pool.isEmpty) return false;
    return true;
  }

  /** @internal */
  nextConnectionId(): number {
    return ++this.connectionIds;
  }

  // ---- public -----------------------------------------------------------------------------------

  /**
   * @internal A guard, not an API: an Agent is not an undici Dispatcher. Passed as `dispatcher` to
   * Node's fetch or to undici it is called here, and fails with an error that says what to pass
   * instead (`new WarmpoolDispatcher({ agent })`): through the handler's onError when it has one (fetch
   * rejects with TypeError('fetch failed') and this as the cause), else thrown. Out of the published
   * types, so nobody calls it on purpose.
   */
  dispatch(_options: unknown, handler?: unknown): boolean {
    const err = new InvalidArgumentError(
      'a warmpool Agent is not an undici Dispatcher: pass `new WarmpoolDispatcher({ agent })` as the dispatcher',
    );
    const onError = (handler as { onError?: unknown } | null | undefined)?.onError;
    if (typeof onError !== 'function') throw err;
    onError.call(handler, err);
    return false;
  }

  /** Per-origin gauges and counters. */
  stats(): AgentStats {
    const origins: OriginStats[] = [];
    for (const pool of this.pools.values()) origins.push(pool.stats());
    return { open: this.openConnections, origins };
  }

  /** Stats of one origin (`https://host:port`), or undefined if it has no pool now. */
  originStats(origin: string): OriginStats | undefined {
    for (const pool of this.pools.values()) if (pool.origin === origin) return pool.stats();
    return undefined;
  }

  /**
   * Refuses new requests, closes idle connections now, and resolves once every request in flight
   * (queued ones included) has finished and its connection closed.
   */
  close(): Promise<void> {
    if (this.closingState === 'open') this.closingState = 'closing';
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    for (const pool of [...this.pools.values()]) pool.closeGracefully();
    if (this.allEmpty()) this.onPoolEmpty({ key: '' } as OriginPool);
    return done;
  }

  /** Ends everything now: queued and in-flight requests fail with `err` (an AgentClosedError by default). */
  destroy(err?: Error): Promise<void> {
    this.closingState = 'destroyed';
    const reason = err ?? new AgentClosedError('the agent was destroyed');
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    for (const pool of [...this.pools.values()]) pool.destroyAll(reason);
    if (this.allEmpty()) this.onPoolEmpty({ key: '' } as OriginPool);
    return done;
  }
}

let globalAgent: Agent | undefined;

/** The process-wide Agent, made on first use. Every Client without an explicit agent uses it. */
export function getGlobalAgent(): Agent {
  if (globalAgent === undefined) globalAgent = new Agent();
  return globalAgent;
}

/** Replaces the process-wide Agent (the old one is returned, not closed). */
export function setGlobalAgent(agent: Agent): Agent | undefined {
  const old = globalAgent;
  globalAgent = agent;
  return old;
}
