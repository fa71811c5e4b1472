import net from 'node:net';
import tls from 'node:tls';
import type { Clock } from '../clock.js';
import { ConnectError } from '../errors.js';
import { abortedWhileConnecting, startConnectTimer } from './connect-guard.js';
import type { DnsCache } from './dns-cache.js';
import type { ProxyConfig } from './proxy-config.js';
import { dialThroughProxy } from './proxy.js';
import { ReadRoute } from './read-route.js';
import { tlsConnectOptions } from './tls-connect-options.js';
import type { TlsSessionCache } from './tls-session-cache.js';

/**
 * The TLS options that change what connection you get; they are part of the pool key, each by its
 * whole content (a digest, computed once per string, Buffer or array). A Buffer or array is read once:
 * changed in place after a request used it, it still names what it held then; pass a new one instead.
 */
export interface TlsOptions {
  servername?: string;
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer | Array<string | Buffer>;
  key?: string | Buffer | Array<string | Buffer | tls.KeyObject>;
  /** A PKCS#12 bundle (client certificate + key), with `passphrase`. */
  pfx?: string | Buffer | Array<string | Buffer | tls.PxfObject>;
  /** Unlocks `key` or `pfx`. */
  passphrase?: string;
  rejectUnauthorized?: boolean;
  /** OpenSSL cipher list (TLS 1.2 and below; TLS 1.3 suites too, by their names). */
  ciphers?: string;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  ecdhCurve?: string;
  sigalgs?: string;
  /**
   * Called with the server's name and certificate after the chain was verified; return an Error to
   * refuse the connection (certificate or public-key pinning). Keyed by identity: pass the same
   * function to share connections.
   */
  checkServerIdentity?: (hostname: string, cert: tls.PeerCertificate) => Error | undefined;
  /** OpenSSL option flags (`crypto.constants.SSL_OP_*`). */
  secureOptions?: number;
}

export interface DialTarget {
  secure: boolean;
  hostname: string; // bracketless for IPv6
  port: number;
  tls: TlsOptions | undefined;
  /** ALPN protocols to offer on TLS, in preference order. */
  alpn: string[];
  /** Key for the TLS session cache (the pool key). */
  sessionKey: string;
  /** Through this proxy (src/dial/proxy.ts); undefined: directly. */
  proxy?: ProxyConfig | undefined;
  /** Connect to this unix domain socket instead of hostname:port (the URL still names the origin). */
  socketPath?: string;
  /** How the hostname is resolved (dns.lookup's shape); a DnsCache's lookup when there is one. */
  lookup?: net.LookupFunction;
  /** Told which addresses failed, after each dial. */
  dnsCache?: DnsCache;
  /** Happy eyeballs (RFC 8305): try the name's other addresses, alternating IPv6 and IPv4. */
  autoSelectFamily?: boolean;
  /** Happy eyeballs: how long an address has before the next one is tried too, ms. */
  autoSelectFamilyAttemptTimeout?: number;
}

export interface DialResult {
  socket: net.Socket;
  /** 'http/1.1', or 'h2' when ALPN chose it. */
  protocol: 'http/1.1' | 'h2';
  dnsMs: number | undefined;
  connectMs: number;
  tlsMs: number | undefined;
  tlsResumed: boolean;
  /** Cleartext HTTP/1.1: the socket reads into the shared scratch buffer, delivered through this. */
  readRoute: ReadRoute | undefined;
}

/**
 * Opens one TCP (and TLS) connection with `noDelay` on, bounded by `connectTimeout` and `signal`.
 * One timer per dial, which is one per connection, never per request.
 */
export function dial(
  target: DialTarget,
  connectTimeout: number,
  clock: Clock,
  sessions: TlsSessionCache,
  signal: AbortSignal | undefined,
  origin: string,
): Promise<DialResult> {
  if (target.proxy !== undefined) {
    return dialThroughProxy(target, target.proxy, connectTimeout, clock, sessions, signal, origin);
  }
  return new Promise<DialResult>((resolve, reject) => {
    const start = clock.monotonicMs();
    let lookupAt = -1;
    let connectAt = -1;
    let done = false;
    const isIp = net.isIP(target.hostname) !== 0;

    // Where the socket goes: a unix socket path, or host:port with its resolver and happy eyeballs.
    const to: net.NetConnectOpts =
      target.socketPath !== undefined
        ? { path: target.socketPath }
        : {
            host: target.hostname,
            port: target.port,
            lookup: target.lookup,
            autoSelectFamily: target.autoSelectFamily,
            autoSelectFamilyAttemptTimeout: target.autoSelectFamilyAttemptTimeout,
          };
    let socket: net.Socket;
    let readRoute: ReadRoute | undefined;
    try {
      if (target.secure) {
        const t = target.tls ?? {};
        const session = sessions.get(target.sessionKey);
        socket = tls.connect({
          ...(to as tls.ConnectionOptions),
          ...tlsConnectOptions(t, target.hostname, target.alpn, session),
        });
        socket.on('session', (s: Buffer) => sessions.set(target.sessionKey, s));
      } else if (target.alpn[0] === 'h2') {
        socket = net.connect(to); // h2c: node's HTTP/2 reads it
      } else {
        readRoute = new ReadRoute();
        socket = net.connect({ ...to, onread: readRoute.onread } as net.NetConnectOpts);
        readRoute.socket = socket;
      }
    } catch (err) {
      // Options node refuses before any socket exists (a pfx the passphrase does not open, an
      // unknown cipher or curve): a connect error, as any other failure to connect.
      reject(
        new ConnectError(`connect to ${origin} failed: ${(err as Error).message}`, { origin, cause: err }),
      );
      return;
    }
    socket.setNoDelay(true);

    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      target.dnsCache?.noteDial(socket, err);
      if (err !== null) {
        socket.destroy();
        reject(err);
        return;
      }
      const now = clock.monotonicMs();
      const tcpDone = connectAt >= 0 ? connectAt : now;
      const dnsMs = !isIp && lookupAt >= 0 ? lookupAt - start : undefined;
      const secure = socket as tls.TLSSocket;
      resolve({
        socket,
        // TLS: what ALPN chose. Cleartext: h2 only by prior knowledge (the target offers only 'h2').
        protocol: (target.secure ? secure.alpnProtocol === 'h2' : target.alpn[0] === 'h2')
          ? 'h2'
          : 'http/1.1',
        dnsMs,
        connectMs: tcpDone - (lookupAt >= 0 ? lookupAt : start),
        tlsMs: target.secure ? now - tcpDone : undefined,
        tlsResumed: target.secure ? secure.isSessionReused() : false,
        readRoute,
      });
    };
    const onError = (err: Error): void => {
      finish(new ConnectError(`connect to ${origin} failed: ${err.message}`, { origin, cause: err }));
    };
    const onAbort = (): void => finish(abortedWhileConnecting(origin, signal));
    const timer = startConnectTimer(connectTimeout, origin, `connect to ${origin}`, finish);

    socket.once('lookup', () => {
      lookupAt = clock.monotonicMs();
    });
    socket.once('connect', () => {
      connectAt = clock.monotonicMs();
      if (!target.secure) finish(null);
    });
    if (target.secure) socket.once('secureConnect', () => finish(null));
    socket.on('error', onError);
    if (signal !== undefined) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}
