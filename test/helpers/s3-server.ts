/**
 * A real S3-compatible server on loopback: s3rver (the filesystem-backed fake S3 that the AWS SDK's
 * own users test against), in this process, with its data in a temporary directory. Counts the TCP
 * connections it accepts, so a test can tell how many connections a run of SDK operations opened.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

export interface TestS3Server {
  endpoint: string;
  /** TCP connections accepted since start (or since the last resetCount()). */
  readonly connections: number;
  /** TCP connections open now. */
  readonly openConnections: number;
  /** Requests that came with `Expect: 100-continue` (answered 100 Continue, as node:http does). */
  readonly expectContinues: number;
  resetCount(): void;
  /** Destroys every open socket now (as a server that closes idle connections does). */
  dropConnections(): void;
  close(): Promise<void>;
}

/** keepAliveTimeoutMs: how long the server keeps an idle connection (node:http's keepAliveTimeout). */
export async function startS3Server(options: { keepAliveTimeoutMs?: number } = {}): Promise<TestS3Server> {
  const directory = await mkdtemp(path.join(tmpdir(), 'warmpool-s3rver-'));
  const s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = await s3.run();
  if (options.keepAliveTimeoutMs !== undefined) s3.httpServer.keepAliveTimeout = options.keepAliveTimeoutMs;
  let connections = 0;
  const sockets = new Set<Socket>();
  s3.httpServer.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let expectContinues = 0;
  // node:http answers Expect: 100-continue itself unless someone listens: counted here, answered the same.
  s3.httpServer.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    expectContinues++;
    res.writeContinue();
    s3.httpServer.emit('request', req, res);
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    get openConnections() {
      return sockets.size;
    },
    get expectContinues() {
      return expectContinues;
    },
    resetCount: () => {
      connections = 0;
    },
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await s3.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
