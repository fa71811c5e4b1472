/**
 * The `proxy` option, read once: which proxy an origin goes through, the headers the proxy is sent,
 * and the proxy's identity in the pool key.
 */
import { hash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import type { TlsOptions } from './dial.js';
import { type ProxyEnv, proxyFromEnv } from './no-proxy.js';

export interface ProxyObjectOption {
  /** `http://[user:pass@]host:port` or `https://…`; the credentials are sent as Proxy-Authorization: Basic. */
  url: string | URL;
  /** More headers for the proxy: on CONNECT, and on each absolute-form request. */
  headers?: Record<string, string>;
  /** Send http:// origins through a CONNECT tunnel too, instead of in absolute-form. */
  tunnel?: boolean;
  /** TLS options for an https:// proxy's own connection (its CA, a client certificate). */
  tls?: TlsOptions;
}

/** `'env'`: HTTPS_PROXY / HTTP_PROXY / NO_PROXY; null: no proxy, even with NODE_USE_ENV_PROXY=1. */
export type ProxyOption = string | URL | ProxyObjectOption | 'env' | null;

/** One proxy, resolved. */
export interface ProxyConfig {
  secure: boolean;
  hostname: string; // bracketless for IPv6
  port: number;
  /** scheme://host:port, without credentials: what errors name. */
  display: string;
  /** Header lines sent to the proxy (Proxy-Authorization first), each ending in CRLF. */
  headLines: string;
  /** The same as pairs, for absolute-form requests. */
  headerPairs: Array<[string, string]>;
  tunnel: boolean;
  tls: TlsOptions | undefined;
  /** The proxy in a pool key: its address, and digests of its credentials, headers and TLS options. */
  key: string;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Parses one proxy; bad input is an InvalidArgumentError. */
export function parseProxy(option: string | URL | ProxyObjectOption): ProxyConfig {
  const o: ProxyObjectOption = typeof option === 'string' || option instanceof URL ? { url: option } : option;
  if (typeof o !== 'object' || o === null || (typeof o.url !== 'string' && !(o.url instanceof URL))) {
    throw new InvalidArgumentError('proxy must be a URL string, a URL, { url, headers? }, "env" or null');
  }
  let url: URL;
  try {
    url = new URL(String(o.url));
  } catch (err) {
    throw new InvalidArgumentError('proxy is not a valid URL', { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`unsupported proxy scheme ${url.protocol} (only http: and https:)`);
  }
  const secure = url.protocol === 'https:';
  const pairs: Array<[string, string]> = [];
  if (url.username !== '' || url.password !== '') {
    let user: string;
    let pass: string;
    try {
      user = decodeURIComponent(url.username);
      pass = decodeURIComponent(url.password);
    } catch (err) {
      throw new InvalidArgumentError('proxy credentials are not valid percent-encoding', { cause: err });
    }
    pairs.push(['Proxy-Authorization', `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`]);
  }
  if (o.headers !== undefined) {
    if (typeof o.headers !== 'object' || o.headers === null) {
      throw new InvalidArgumentError('proxy headers must be an object');
    }
    for (const [name, value] of Object.entries(o.headers)) {
      if (!TOKEN.test(name) || typeof value !== 'string' || !FIELD_VALUE.test(value)) {
        throw new InvalidArgumentError(`invalid proxy header ${JSON.stringify(name)}`);
      }
      pairs.push([name, value]);
    }
  }
  if (o.tls !== undefined && (typeof o.tls !== 'object' || o.tls === null)) {
    throw new InvalidArgumentError('proxy tls must be an object');
  }
  let headLines = '';
  for (const [n, v] of pairs) headLines += `${n}: ${v}\r\n`;
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const display = `${url.protocol}//${url.host}`;
  const t = o.tls;
  const tlsPart =
    t === undefined
      ? ''
      : hash(
          'sha256',
          JSON.stringify([t.servername, t.rejectUnauthorized, [t.ca, t.cert, t.key].map(materialDigest)]),
          'base64',
        );
  // Credentials and headers by digest (the key is visible in no output, but need not hold secrets).
  const key = `proxy(${display}|${headLines === '' ? '' : hash('sha256', headLines, 'base64')}|${
    o.tunnel === true ? 't' : ''
  }|${tlsPart})`;
  return {
    secure,
    hostname,
    port,
    display,
    headLines,
    headerPairs: pairs,
    tunnel: o.tunnel === true,
    tls: t,
    key,
  };
}

function materialDigest(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return hash('sha256', v, 'base64');
  if (ArrayBuffer.isView(v)) {
    return hash('sha256', new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 'base64');
  }
  if (Array.isArray(v)) return `[${v.map(materialDigest).join(',')}]`;
  return hash('sha256', JSON.stringify(v), 'base64');
}

/** Chooses the proxy (or none) for each origin. */
export class ProxyRoutes {
  private readonly fixed: ProxyConfig | undefined;
  private readonly env: ProxyEnv | undefined;
  /** 'env': each proxy URL the environment names, parsed once. */
  private readonly parsed = new Map<string, ProxyConfig>();

  private constructor(fixed: ProxyConfig | undefined, env: ProxyEnv | undefined) {
    this.fixed = fixed;
    this.env = env;
  }

  /**
   * From the Agent option; undefined for no proxy. Without the option, `NODE_USE_ENV_PROXY=1` (as
   * for Node's own clients) means 'env'. The environment is read here, once per Agent.
   */
  static from(option: ProxyOption | undefined, env: ProxyEnv = process.env): ProxyRoutes | undefined {
    if (option === null) return undefined;
    if (option === undefined) {
      if (env.NODE_USE_ENV_PROXY !== '1') return undefined;
      option = 'env';
    }
    if (option === 'env') {
      const snapshot: Record<string, string | undefined> = {};
      for (const name of ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY']) {
        snapshot[name] = env[name];
      }
      return new ProxyRoutes(undefined, snapshot);
    }
    return new ProxyRoutes(parseProxy(option), undefined);
  }

  /** The proxy for an origin, or undefined to reach it directly. */
  route(secure: boolean, hostname: string, port: number): ProxyConfig | undefined {
    if (this.fixed !== undefined) return this.fixed;
    const url = proxyFromEnv(this.env!, secure, hostname, port);
    if (url === undefined) return undefined;
    let config = this.parsed.get(url);
    if (config === undefined) {
      // curl reads a scheme-less value as http://.
      config = parseProxy(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`);
      this.parsed.set(url, config);
    }
    return config;
  }
}
