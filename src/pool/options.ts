import type { LookupFunction } from 'node:net';
import { type Clock, systemClock } from '../clock.js';
import type { TlsOptions } from '../dial/dial.js';
import type { DnsOptions } from '../dial/dns-cache.js';
import { type ProxyOption, ProxyRoutes } from '../dial/proxy-config.js';
import { InvalidArgumentError } from '../errors.js';

export interface AgentOptions {
  /** Open (or opening) connections per origin, at most. Default 64. */
  maxConnectionsPerOrigin?: number;
  /** Open connections across all origins, at most. Default: no limit. */
  maxConnections?: number;
  /** Requests waiting for a connection per origin, at most; past it, QueueFullError at once. Default 10 000. */
  maxQueued?: number;
  /** Longest wait for a connection in the queue, ms; 0 = none. Default 30 000. */
  queueTimeout?: number;
  /** Idle connections close after this many ms. Default 4 000 (under Node's 5 s server default). */
  idleTimeout?: number;
  /** Connections are not reused past this age, ms; 0 = no limit. Default 0. */
  maxConnectionAge?: number;
  /** Connections are not reused after this many requests; 0 = no limit. Default 0. */
  maxRequestsPerConnection?: number;
  /** TCP + TLS connect limit, ms; 0 = none. Default 10 000. */
  connectTimeout?: number;
  /** Offer h2 in TLS ALPN. Default true. */
  allowHttp2?: boolean;
  /** 'prior-knowledge': speak HTTP/2 in cleartext (h2c) to http:// origins. */
  http2?: 'prior-knowledge' | undefined;
  /** TLS options for every connection of this agent (a request's or Client's `tls` merges over them). */
  tls?: TlsOptions;
  /** Connect to this unix domain socket instead of each origin's host and port (a request's own replaces it). */
  socketPath?: string;
  /** Resolves host names (dns.lookup's shape). Default: dns.lookup. */
  lookup?: LookupFunction;
  /** Keep resolved addresses (`ttl` ms) and spread new connections over all of them. Default: off. */
  dns?: DnsOptions;
  /** Happy eyeballs: try a name's other addresses, IPv6 and IPv4 alternating. Default: Node's (on since 20). */
  autoSelectFamily?: boolean;
  /** Happy eyeballs: ms an address has before the next is tried too. Default: Node's (250). */
  autoSelectFamilyAttemptTimeout?: number;
  /** Largest response head, bytes. Default 65 536. */
  maxHeaderSize?: number;
  /** Most header fields in a response head. Default 128. */
  maxHeaderCount?: number;
  /** The clocks idle age is read from; for tests. */
  clock?: Clock;
  /**
   * An HTTP(S) proxy for every origin: `'http://user:pass@proxy:3128'`, `{ url, headers, tunnel, tls }`,
   * or `'env'` (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, read when the Agent is made). Default: none, or
   * `'env'` when NODE_USE_ENV_PROXY=1; null: none even then.
   */
  proxy?: ProxyOption;
}

export interface ResolvedAgentOptions {
  maxConnectionsPerOrigin: number;
  maxConnections: number;
  maxQueued: number;
  queueTimeout: number;
  idleTimeout: number;
  maxConnectionAge: number;
  maxRequestsPerConnection: number;
  connectTimeout: number;
  allowHttp2: boolean;
  http2: 'prior-knowledge' | undefined;
  tls: TlsOptions | undefined;
  socketPath: string | undefined;
  lookup: LookupFunction | undefined;
  dns: { ttl: number; failedAddressTimeout: number | undefined } | undefined;
  autoSelectFamily: boolean | undefined;
  autoSelectFamilyAttemptTimeout: number | undefined;
  maxHeaderSize: number;
  maxHeaderCount: number;
  clock: Clock;
  /** Which proxy each origin goes through; undefined: none. */
  proxy: ProxyRoutes | undefined;
}

export const AGENT_DEFAULTS = {
  maxConnectionsPerOrigin: 64,
  maxConnections: Number.POSITIVE_INFINITY,
  maxQueued: 10_000,
  queueTimeout: 30_000,
  idleTimeout: 4_000,
  maxConnectionAge: 0,
  maxRequestsPerConnection: 0,
  connectTimeout: 10_000,
  maxHeaderSize: 64 * 1024,
  maxHeaderCount: 128,
} as const;

/** A non-negative number option, or its default; anything else is an InvalidArgumentError. */
export function numberOption(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

export function resolveAgentOptions(o: AgentOptions = {}): ResolvedAgentOptions {
  if (typeof o !== 'object' || o === null) {
    throw new InvalidArgumentError(`Agent options must be an object, got ${o === null ? 'null' : typeof o}`);
  }
  if (o.allowHttp2 !== undefined && typeof o.allowHttp2 !== 'boolean') {
    throw new InvalidArgumentError(`allowHttp2 must be a boolean, got ${typeof o.allowHttp2}`);
  }
  if (o.tls !== undefined && (typeof o.tls !== 'object' || o.tls === null)) {
    throw new InvalidArgumentError(`tls must be an object, got ${o.tls === null ? 'null' : typeof o.tls}`);
  }
  if (
    o.clock !== undefined &&
    (typeof o.clock?.monotonicMs !== 'function' || typeof o.clock?.wallMs !== 'function')
  ) {
    throw new InvalidArgumentError('clock must have monotonicMs() and wallMs()');
  }
  checkNetOptions(o);
  const d = AGENT_DEFAULTS;
  if (o.http2 !== undefined && o.http2 !== 'prior-knowledge') {
    throw new InvalidArgumentError(`http2 must be 'prior-knowledge' or undefined, got ${String(o.http2)}`);
  }
  return {
    maxConnectionsPerOrigin: numberOption(
      'maxConnectionsPerOrigin',
      o.maxConnectionsPerOrigin,
      d.maxConnectionsPerOrigin,
      1,
    ),
    maxConnections: numberOption('maxConnections', o.maxConnections, d.maxConnections, 1),
    maxQueued: numberOption('maxQueued', o.maxQueued, d.maxQueued),
    queueTimeout: numberOption('queueTimeout', o.queueTimeout, d.queueTimeout),
    idleTimeout: numberOption('idleTimeout', o.idleTimeout, d.idleTimeout),
    maxConnectionAge: numberOption('maxConnectionAge', o.maxConnectionAge, d.maxConnectionAge),
    maxRequestsPerConnection: numberOption(
      'maxRequestsPerConnection',
      o.maxRequestsPerConnection,
      d.maxRequestsPerConnection,
    ),
    connectTimeout: numberOption('connectTimeout', o.connectTimeout, d.connectTimeout),
    allowHttp2: o.allowHttp2 ?? true,
    http2: o.http2,
    tls: o.tls,
    socketPath: o.socketPath,
    lookup: o.lookup,
    dns:
      o.dns === undefined
        ? undefined
        : {
            ttl: numberOption('dns.ttl', o.dns.ttl, 0),
            failedAddressTimeout:
              o.dns.failedAddressTimeout === undefined
                ? undefined
                : numberOption('dns.failedAddressTimeout', o.dns.failedAddressTimeout, 0),
          },
    autoSelectFamily: o.autoSelectFamily,
    autoSelectFamilyAttemptTimeout:
      o.autoSelectFamilyAttemptTimeout === undefined
        ? undefined
        : // Node refuses less than 10 ms.
          numberOption('autoSelectFamilyAttemptTimeout', o.autoSelectFamilyAttemptTimeout, 250, 10),
    maxHeaderSize: numberOption('maxHeaderSize', o.maxHeaderSize, d.maxHeaderSize, 1),
    maxHeaderCount: numberOption('maxHeaderCount', o.maxHeaderCount, d.maxHeaderCount, 1),
    clock: o.clock ?? systemClock,
    proxy: ProxyRoutes.from(o.proxy),
  };
}

/** A unix socket path: a non-empty string without NUL (a request's `socketPath` too). */
export function checkSocketPath(value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value === '' || value.includes('\0'))) {
    throw new InvalidArgumentError(
      `socketPath must be a non-empty string, got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`,
    );
  }
}

function checkNetOptions(o: AgentOptions): void {
  checkSocketPath(o.socketPath);
  if (o.lookup !== undefined && typeof o.lookup !== 'function') {
    throw new InvalidArgumentError(`lookup must be a function, got ${typeof o.lookup}`);
  }
  if (o.dns !== undefined && (typeof o.dns !== 'object' || o.dns === null || o.dns.ttl === undefined)) {
    throw new InvalidArgumentError('dns must be an object with a ttl (ms)');
  }
  if (o.autoSelectFamily !== undefined && typeof o.autoSelectFamily !== 'boolean') {
    throw new InvalidArgumentError(`autoSelectFamily must be a boolean, got ${typeof o.autoSelectFamily}`);
  }
}
