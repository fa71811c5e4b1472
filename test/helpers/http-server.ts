/**
 * http-server: a node:http server on 127.0.0.1:<free port> that counts what a pool test wants to
 * count: connections (total, open now, most open at once) and requests (total, per connection).
 *
 * The handler is a plain (req, res) function. close() stops listening and destroys keep-alive
 * sockets too (closeAllConnections), so a test never waits on an idle client connection.
 */
import http from 'node:http';
import type net from 'node:net';

export interface HttpServerStats {
  connectionsTotal: number;
  openConnections: number;
  maxOpenConnections: number;
  requestsTotal: number;
  /** Remote port of the client socket -> requests on that connection (stable per connection). */
  requestsPerConnection: Map<number, number>;
}

export interface TestHttpServer {
  url: string;
  port: number;
  server: http.Server;
  stats: HttpServerStats;
  close(): Promise<void>;
}

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  keepAliveTimeout?: number;
  /** Default: 200 "ok\n". */
  handler?: HttpHandler;
}

const defaultHandler: HttpHandler = (_req, res) => {
  res.end('ok\n');
};

export async function startHttpServer(
  handlerOrOptions: HttpHandler | HttpServerOptions = {},
): Promise<TestHttpServer> {
  const opts = typeof handlerOrOptions === 'function' ? { handler: handlerOrOptions } : handlerOrOptions;
  const handler = opts.handler ?? defaultHandler;
  const stats: HttpServerStats = {
    connectionsTotal: 0,
    openConnections: 0,
    maxOpenConnections: 0,
    requestsTotal: 0,
    requestsPerConnection: new Map(),
  };
  const server = http.createServer((req, res) => {
    stats.requestsTotal++;
    const key = req.socket.remotePort ?? 0;
    stats.requestsPerConnection.set(key, (stats.requestsPerConnection.get(key) ?? 0) + 1);
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    stats.connectionsTotal++;
    stats.openConnections++;
    stats.maxOpenConnections = Math.max(stats.maxOpenConnections, stats.openConnections);
    socket.once('close', () => {
      sockets.delete(socket);
      stats.openConnections--;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    stats,
    // Resolves once the listener and every socket have closed (so stats.openConnections is 0).
    close: async () => {
      const socketsClosed = [...sockets].map((s) => new Promise((r) => s.once('close', r)));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([closed, ...socketsClosed]);
    },
  };
}
