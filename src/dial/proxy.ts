/**
 * Dialing through an HTTP(S) proxy: TCP (or TLS) to the proxy, then either
 * - absolute-form (an http:// origin, unless the proxy is set to tunnel): the socket to the proxy is
 *   the connection; each request names its absolute URL on the request line (see Client.send), or
 * - a tunnel: `CONNECT host:port`, and once the proxy answers 2xx the socket is a byte pipe to the
 *   origin: TLS with ALPN over it for https (h2 when the origin offers it), or cleartext.
 * One timer bounds the whole dial (connectTimeout), as for a direct one. A tunnel the proxy or the
 * origin later closes is an ordinary closed connection to the pool (stale safety, safe retry).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Clock } from '../clock.js';
import { ConnectError, ProxyError } from '../errors.js';
import { abortedWhileConnecting, startConnectTimer } from './connect-guard.js';
import type { DialResult, DialTarget } from './dial.js';
import type { ProxyConfig } from './proxy-config.js';
import { ReadRoute } from './read-route.js';
import { tlsConnectOptions } from './tls-connect-options.js';
import type { TlsSessionCache } from './tls-session-cache.js';

/** The longest CONNECT response head read; a proxy that sends more is refused. */
const MAX_CONNECT_HEAD = 16 * 1024;

export function dialThroughProxy(
  target: DialTarget,
  proxy: ProxyConfig,
  connectTimeout: number,
  clock: Clock,
  sessions: TlsSessionCache,
  signal: AbortSignal | undefined,
  origin: string,
): Promise<DialResult> {
  return new Promise<DialResult>((resolve, reject) => {
    const start = clock.monotonicMs();
    let lookupAt = -1;
    let connectAt = -1;
    let tunnelAt = -1;
    let done = false;
    // http:// origins in absolute-form, unless tunnelled by request or spoken as h2c (a proxy
    // forwards HTTP/1.1 messages, not an HTTP/2 connection).
    const tunnel = target.secure || proxy.tunnel || target.alpn[0] === 'h2';
    const via = `proxy ${proxy.display}`;

    let readRoute: ReadRoute | undefined;
    let raw: net.Socket;
    if (proxy.secure) {
      const t = proxy.tls ?? {};
      raw = tls.connect({
        host: proxy.hostname,
        port: proxy.port,
        ...tlsConnectOptions(t, proxy.hostname, ['http/1.1'], undefined),
      });
    } else if (!tunnel && target.alpn[0] !== 'h2') {
      // Absolute-form over cleartext: the connection reads the proxy's responses as it would a server's.
      readRoute = new ReadRoute();
      raw = net.connect({ host: proxy.hostname, port: proxy.port, onread: readRoute.onread });
      readRoute.socket = raw;
    } else {
      raw = net.connect({ host: proxy.hostname, port: proxy.port });
    }
    raw.setNoDelay(true);
    let socket: net.Socket = raw; // what the connection gets: `raw`, or TLS to the origin over it
    let stage: 'proxy' | 'connect' | 'tls' = 'proxy';
    let head = '';

    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      raw.removeListener('error', onError);
      raw.removeListener('readable', onConnectReadable);
      raw.removeListener('end', onConnectEnd);
      if (socket !== raw) socket.removeListener('error', onError);
      if (err !== null) {
        socket.destroy();
        raw.destroy();
        reject(err);
        return;
      }
      if (socket !== raw) {
        // The tunnel's own socket fails under the TLS socket: the connection sees it as its socket's error.
        raw.on('error', (e: Error) => socket.destroy(e));
      }
      const now = clock.monotonicMs();
      const secure = socket as tls.TLSSocket;
      const tcpDone = tunnelAt >= 0 ? tunnelAt : connectAt >= 0 ? connectAt : now;
      resolve({
        socket,
        protocol: (target.secure ? secure.alpnProtocol === 'h2' : target.alpn[0] === 'h2')
          ? 'h2'
          : 'http/1.1',
        dnsMs: net.isIP(proxy.hostname) === 0 && lookupAt >= 0 ? lookupAt - start : undefined,
        connectMs: tcpDone - (lookupAt >= 0 ? lookupAt : start),
        tlsMs: target.secure ? now - tcpDone : undefined,
        tlsResumed: target.secure ? secure.isSessionReused() : false,
        readRoute,
      });
    };
    const onError = (err: Error): void => {
      if (stage === 'tls') {
        finish(
          new ConnectError(`connect to ${origin} through ${via} failed: ${err.message}`, {
            origin,
            cause: err,
          }),
        );
      } else {
        finish(
          new ConnectError(`connect to ${via} (for ${origin}) failed: ${err.message}`, {
            origin,
            cause: err,
          }),
        );
      }
    };
    const onAbort = (): void => finish(abortedWhileConnecting(origin, signal));
    const timer = startConnectTimer(connectTimeout, origin, `connect to ${origin} through ${via}`, finish);

    const onConnectEnd = (): void => {
      finish(
        new ConnectError(`${via} closed the connection before answering CONNECT for ${origin}`, { origin }),
      );
    };
    // The CONNECT answer is read in paused mode ('readable' and read()), so that bytes past its head
    // stay in the socket's buffer (unshifted) and nothing flows until the connection that takes the
    // socket attaches its own reader: with the 'readable' listener gone and no 'data' listener, the
    // stream waits (flowing null); a 'data' listener, or node's HTTP/2 session, takes them from there.
    const onConnectReadable = (): void => {
      while (!done) {
        const chunk = raw.read() as Buffer | null;
        if (chunk === null || onConnectChunk(chunk)) return;
      }
    };
    /** True once the head is whole (the tunnel is up, or the dial failed). */
    const onConnectChunk = (chunk: Buffer): boolean => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_CONNECT_HEAD) {
          finish(new ProxyError(`${via} sent an oversized answer to CONNECT`, 0, proxy.display, { origin }));
          return true;
        }
        return false;
      }
      const m = /^HTTP\/1\.[01] ([0-9]{3})(?: ([^\r\n]*))?\r\n/.exec(head);
      if (m === null) {
        finish(
          new ProxyError(`${via} answered CONNECT with something that is not HTTP`, 0, proxy.display, {
            origin,
          }),
        );
        return true;
      }
      const status = Number(m[1]);
      if (status < 200 || status > 299) {
        const why = status === 407 ? ' (proxy authentication required: check the proxy credentials)' : '';
        finish(
          new ProxyError(
            `${via} refused the tunnel to ${origin}: ${status} ${m[2] ?? ''}`.trimEnd() + why,
            status,
            proxy.display,
            { origin },
          ),
        );
        return true;
      }
      raw.removeListener('readable', onConnectReadable);
      raw.removeListener('end', onConnectEnd);
      // Bytes past the head are the origin's already (none for TLS, which waits for our hello; an
      // h2c server's SETTINGS may come at once).
      const rest = head.length - end - 4;
      if (rest > 0) raw.unshift(chunk.subarray(chunk.length - rest));
      head = '';
      tunnelAt = clock.monotonicMs();
      established();
      return true;
    };

    const established = (): void => {
      if (!target.secure) {
        finish(null);
        return;
      }
      stage = 'tls';
      const t = target.tls ?? {};
      const tlsSocket = tls.connect({
        socket: raw,
        ...tlsConnectOptions(t, target.hostname, target.alpn, sessions.get(target.sessionKey)),
      });
      tlsSocket.on('session', (s: Buffer) => sessions.set(target.sessionKey, s));
      socket = tlsSocket;
      tlsSocket.on('error', onError);
      tlsSocket.once('secureConnect', () => finish(null));
    };

    const onProxyReady = (): void => {
      if (!tunnel) {
        finish(null);
        return;
      }
      stage = 'connect';
      const authority = net.isIPv6(target.hostname)
        ? `[${target.hostname}]:${target.port}`
        : `${target.hostname}:${target.port}`;
      raw.on('readable', onConnectReadable);
      raw.on('end', onConnectEnd);
      raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${proxy.headLines}\r\n`, 'latin1');
    };

    raw.once('lookup', () => {
      lookupAt = clock.monotonicMs();
    });
    raw.once('connect', () => {
      connectAt = clock.monotonicMs();
      if (!proxy.secure) onProxyReady();
    });
    if (proxy.secure) raw.once('secureConnect', onProxyReady);
    raw.on('error', onError);
    if (signal !== undefined) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}
