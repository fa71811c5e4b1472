/**
 * h2-server: a node:http2 server on 127.0.0.1:<free port>, over TLS with the test certificate
 * (test/fixtures/localhost-*.pem, valid for localhost / 127.0.0.1 / ::1) or in cleartext (h2c). It
 * counts what an HTTP/2 pool test wants to count: sessions (total, open now, most open at once),
 * streams (total, per session, most open at once), and whether each TLS handshake was a resumed one.
 *
 * Also: an https (HTTP/1.1-only) server with the same certificate, and a TCP proxy that can go silent
 * (stop forwarding in both directions without closing), for liveness tests.
 *
 * close() destroys every session and socket, so a test never waits on an idle client connection.
 */
import fs from 'node:fs';
import type http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';

const fixtures = new URL('../../../test/fixtures/', import.meta.url);
export const TEST_CERT = fs.readFileSync(new URL('localhost-cert.pem', fixtures));
export const TEST_KEY = fs.readFileSync(new URL('localhost-key.pem', fixtures));

export interface H2SessionInfo {
  index: number;
  session: http2.ServerHttp2Session;
  streams: number;
  /** TLS only: the handshake resumed an earlier session. */
  tlsResumed: boolean;
}

export interface H2ServerStats {
  sessionsTotal: number;
  openSessions: number;
  maxOpenSessions: number;
  streamsTotal: number;
  openStreams: number;
  maxOpenStreams: number;
  sessions: H2SessionInfo[];
}

export type H2Handler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  session: H2SessionInfo,
) => void | Promise<void>;

export interface H2ServerOptions {
  /** Default true (TLS with ALPN h2); false: h2c (prior knowledge). */
  secure?: boolean;
  /** SETTINGS the server sends (maxConcurrentStreams, ...). */
  settings?: http2.Settings;
  /** Default: 200 "ok\n". */
  handler?: H2Handler;
  /** More node:http2 server options (say, maxSendHeaderBlockLength, to let it send a huge head). */
  serverOptions?: http2.ServerOptions;
}

export interface TestH2Server {
  url: string;
  port: number;
  server: http2.Http2Server | http2.Http2SecureServer;
  stats: H2ServerStats;
  /** Destroys every TCP socket now: no GOAWAY, no TLS close_notify (a crash, a dropped link). */
  dropConnections(): void;
  close(): Promise<void>;
}

const defaultHandler: H2Handler = (stream) => {
  stream.respond({ ':status': 200, 'content-type': 'text/plain' });
  stream.end('ok\n');
};

export async function startH2Server(options: H2ServerOptions = {}): Promise<TestH2Server> {
  const secure = options.secure ?? true;
  const handler = options.handler ?? defaultHandler;
  const stats: H2ServerStats = {
    sessionsTotal: 0,
    openSessions: 0,
    maxOpenSessions: 0,
    streamsTotal: 0,
    openStreams: 0,
    maxOpenStreams: 0,
    sessions: [],
  };
  const serverOptions: http2.SecureServerOptions = {
    ...options.serverOptions,
    settings: options.settings ?? {},
  };
  const server = secure
    ? http2.createSecureServer({ ...serverOptions, cert: TEST_CERT, key: TEST_KEY })
    : http2.createServer(serverOptions);
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const infos = new WeakMap<http2.ServerHttp2Session, H2SessionInfo>();
  server.on('session', (session: http2.ServerHttp2Session) => {
    const info: H2SessionInfo = {
      index: stats.sessionsTotal,
      session,
      streams: 0,
      // session.socket is a proxy of the TLS socket (no WeakMap key), but it forwards this call.
      tlsResumed: secure ? (session.socket as tls.TLSSocket).isSessionReused() : false,
    };
    infos.set(session, info);
    stats.sessions.push(info);
    stats.sessionsTotal++;
    stats.openSessions++;
    stats.maxOpenSessions = Math.max(stats.maxOpenSessions, stats.openSessions);
    session.on('error', () => {});
    session.once('close', () => stats.openSessions--);
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const info = infos.get(stream.session as http2.ServerHttp2Session)!;
    info.streams++;
    stats.streamsTotal++;
    stats.openStreams++;
    stats.maxOpenStreams = Math.max(stats.maxOpenStreams, stats.openStreams);
    stream.once('close', () => stats.openStreams--);
    stream.on('error', () => {});
    Promise.resolve(handler(stream, headers, info)).catch((err: unknown) => {
      if (stream.destroyed) return;
      if (!stream.headersSent) stream.respond({ ':status': 500 });
      stream.end(String(err));
    });
  });
  await listen(server);
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `${secure ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    server,
    stats,
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: () => {
      for (const info of stats.sessions) if (!info.session.destroyed) info.session.destroy();
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface TestHttpsServer {
  url: string;
  port: number;
  /** Connections accepted, and the ALPN protocol each chose (false: none). */
  connections: Array<string | false>;
  close(): Promise<void>;
}

export interface HttpsServerOptions {
  /** Default: any free port. */
  port?: number;
  /** Default: 200 "ok\n". */
  handler?: http.RequestListener;
}

/** An HTTP/1.1-only https server (its ALPN offers only http/1.1) with the test certificate. */
export async function startHttpsServer(options: HttpsServerOptions = {}): Promise<TestHttpsServer> {
  const connections: Array<string | false> = [];
  const server = https.createServer(
    { cert: TEST_CERT, key: TEST_KEY, ALPNProtocols: ['http/1.1'] },
    options.handler ??
      ((_req, res) => {
        res.end('ok\n');
      }),
  );
  server.on('secureConnection', (socket: tls.TLSSocket) => connections.push(socket.alpnProtocol ?? false));
  await listen(server, options.port ?? 0);
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    connections,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface SilentProxy {
  port: number;
  url: string;
  /** Connections accepted so far. */
  connections: number;
  /** Stop forwarding on every connection open now (bytes are dropped; nothing is closed). */
  silenceAll(): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:`targetPort` whose connections can be made to go silent. */
export async function startSilentProxy(
  targetPort: number,
  scheme: 'https' | 'http' = 'https',
): Promise<SilentProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; silent: boolean }>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, silent: false };
    pairs.add(pair);
    proxy.connections++;
    client.on('data', (d) => {
      if (!pair.silent) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.silent) client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await listen(server);
  const port = (server.address() as net.AddressInfo).port;
  const proxy: SilentProxy = {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    connections: 0,
    silenceAll: () => {
      for (const p of pairs) p.silent = true;
    },
    close: () => {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}

function listen(server: net.Server, port = 0): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}
