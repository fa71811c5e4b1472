import type { DialTarget, TlsOptions } from '../dial/dial.js';
import { DnsCache, systemLookup } from '../dial/dns-cache.js';
import { type ProxyConfig, type ProxyOption, ProxyRoutes } from '../dial/proxy-config.js';
import { TlsSessionCache } from '../dial/tls-session-cache.js';
import { AgentClosedError, InvalidArgumentError } from '../errors.js';
import type { Exchange } from '../exchange/exchange.js';
import { type Connector, socketConnector } from './dialer.js';
import { type AgentOptions, type ResolvedAgentOptions, resolveAgentOptions } from './options.js';
import { OriginPool } from './origin-pool.js';
import type { OriginStats } from './origin-stats.js';
import { type TlsFields, mergeTls, sameTlsFields, tlsFields, tlsKey } from './tls-key.js';

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
  /** The `dns` option's cache, shared by every origin of this Agent. */
  private readonly dnsCache: DnsCache | undefined;
  private readonly pools = new Map<string, OriginPool>();
  /** The socket path of each pool that has one, for its stats. */
  private readonly socketPaths = new WeakMap<OriginPool, string>();
  private openConnections = 0;
  private connectionIds = 0;
  private closingState: 'open' | 'closing' | 'destroyed' = 'open';
  private closeWaiters: Array<() => void> = [];

  constructor(options: AgentOptions = {}) {
    this.options = resolveAgentOptions(options);
    const o = this.options;
    this.dnsCache =
      o.dns === undefined
        ? undefined
        : new DnsCache(o.lookup ?? systemLookup, o.dns.ttl, o.dns.failedAddressTimeout, o.clock);
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
        socketPath: string | undefined;
        pool: OriginPool;
      }
    | undefined;

  /**
   * @internal The pool for a target; made on first use. `tls` (a request's or Client's) merges over
   * the Agent's; `socketPath` (a request's) replaces the Agent's; `proxyOption` (a request's) replaces
   * the Agent's proxy.
   */
  poolFor(
    target: Target,
    tls: TlsOptions | undefined,
    socketPath?: string,
    proxyOption?: ProxyOption,
  ): OriginPool {
    const effectiveTls = mergeTls(this.options.tls, tls);
    const path = socketPath ?? this.options.socketPath;
    const same = this.lastPoolFor(target, effectiveTls, path, proxyOption);
    if (same !== undefined) return same;
    const originKey =
      effectiveTls === undefined || !target.secure
        ? target.origin
        : `${target.origin}|${tlsKey(effectiveTls)}`;
    // A unix socket is another way to the server than TCP to the origin's host: a pool of its own.
    let key = path === undefined ? originKey : `unix:${path.length}:${path}|${originKey}`;
    // A proxied origin's pool is the proxy's (its address, credentials, headers): a request never
    // rides a connection to another proxy, or a direct one (invariant 8).
    const proxy = this.routeFor(target, proxyOption);
    if (proxy !== undefined) {
      if (path !== undefined) {
        throw new InvalidArgumentError(
          `${target.origin}: a unix socket (socketPath) and a proxy cannot both be the way to it`,
        );
      }
      key = `${proxy.key}>${key}`;
    }
    let pool = this.pools.get(key);
    if (pool === undefined) {
      const dialTarget = this.dialTarget(target, effectiveTls, key, path);
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
      if (path !== undefined) this.socketPaths.set(pool, path);
    }
    this.last = {
      target,
      tls: effectiveTls,
      fields: tlsFields(effectiveTls),
      socketPath: path,
      proxyOption,
      pool,
    };
    return pool;
  }

  /**
   * @internal
   * The pool poolFor() returned last, when this target goes to it too; else undefined, and no pool
   * is made. Lets Client.request see what an origin speaks (no HTTP/1.1 head for h2) while it
   * validates the request, before any pool exists.
   */
  knownPool(
    target: Target,
    tls: TlsOptions | undefined,
    socketPath?: string,
    proxyOption?: ProxyOption,
  ): OriginPool | undefined {
    return this.lastPoolFor(
      target,
      mergeTls(this.options.tls, tls),
      socketPath ?? this.options.socketPath,
      proxyOption,
    );
  }

  private lastPoolFor(
    target: Target,
    effectiveTls: TlsOptions | undefined,
    socketPath: string | undefined,
    proxyOption: ProxyOption | undefined,
  ): OriginPool | undefined {
    const last = this.last;
    if (
      last !== undefined &&
      last.target === target &&
      last.tls === effectiveTls &&
      last.socketPath === socketPath &&
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

  private dialTarget(
    target: Target,
    tls: TlsOptions | undefined,
    key: string,
    socketPath: string | undefined,
  ): DialTarget {
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
      socketPath,
      lookup: this.dnsCache?.lookup ?? o.lookup,
      dnsCache: this.dnsCache,
      autoSelectFamily: o.autoSelectFamily,
      autoSelectFamilyAttemptTimeout: o.autoSelectFamilyAttemptTimeout,
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
    for (const pool of this.pools.values()) origins.push(this.statsOf(pool));
    return { open: this.openConnections, origins };
  }

  /** Stats of one origin (`https://host:port`), or undefined if it has no pool now. */
  originStats(origin: string): OriginStats | undefined {
    for (const pool of this.pools.values()) if (pool.origin === origin) return this.statsOf(pool);
    return undefined;
  }

  private statsOf(pool: OriginPool): OriginStats {
    const s = pool.stats();
    const socketPath = this.socketPaths.get(pool);
    if (socketPath !== undefined) s.socketPath = socketPath;
    return s;
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
