// Shared by the orchestrator, the scenarios and the server: the server's paths, and a handle to a
// server child process.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * The paths the bench servers know, and their body sizes in bytes. The matrix runs /12 and /64k; /1m
 * is for `npm run bench:profile` and one-off comparisons of large bodies.
 */
export const BODIES: Record<string, number> = { '/12': 12, '/64k': 64 * 1024, '/1m': 1024 * 1024 };

/** The body every bench server sends for a path of BODIES: "hello world\n" at 12 bytes, else x's. */
export function cannedBody(size: number): Buffer {
  const body = Buffer.alloc(size, 'x');
  if (size === 12) body.write('hello world\n', 'latin1');
  return body;
}

/**
 * Every client's body must come out whole: a client that drops bytes would look fast. Throws (the
 * request counts as an error in the table) when a known path's body has the wrong length.
 */
export function checkBodyLength(path: string, received: number): void {
  const expected = BODIES[path];
  if (expected !== undefined && received !== expected) {
    throw new Error(`body of ${path}: received ${received} bytes, expected ${expected}`);
  }
}

export interface ServerOptions {
  /** noDelay false, head and body in two writes. */
  nagle?: boolean;
  /** Close a connection after it has been idle this long. */
  idleCloseMs?: number;
  /**
   * The listen backlog (default 2048). With a small one and `acceptDelayMs`, a burst of new
   * connections overflows the accept queue: the kernel drops the extra SYNs and the clients resend
   * them a second later (the demo's bursts panel).
   */
  backlog?: number;
  /** Block the server's event loop this long on every connection it accepts: a slow accept loop. */
  acceptDelayMs?: number;
}

export interface ServerStats {
  accepted: number; // connections accepted since start or the last reset
  requests: number; // request heads seen since start or the last reset
  open: number; // connections open right now
  /** The server process's CPU time (user + system) since it started, µs: set by each stats() answer. */
  cpuMicros?: number;
}

export interface ServerHandle {
  port: number;
  origin: string;
  stats(): Promise<ServerStats>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The server child's side of the IPC protocol: report the port once listening, answer 'stats',
 * 'reset' and 'exit', and leave when the parent dies or closes the channel (never linger).
 */
export function serveParent(server: NetServer, stats: ServerStats, backlog = 2048): void {
  // The memory scenario dials 1 000 connections at once. With node's default backlog (511) a burst
  // can overflow the accept queue: the kernel drops those SYNs and the client resends them a second
  // later, by when a pool that serves its queue on the connections it has may no longer wait for
  // them (run 12 counted 911 warmpool connections; the bench machine's ListenOverflows counter showed
  // 353 overflows since boot). The kernel caps the backlog at net.core.somaxconn (4 096 there).
  server.listen({ port: 0, host: '127.0.0.1', backlog }, () => {
    const addr = server.address() as AddressInfo;
    process.send?.({ port: addr.port });
  });
  process.on('message', (msg: { cmd: string }) => {
    if (msg.cmd === 'stats') {
      const cpu = process.cpuUsage();
      process.send?.({ stats: { ...stats, cpuMicros: cpu.user + cpu.system } });
    } else if (msg.cmd === 'reset') {
      stats.accepted = 0;
      stats.requests = 0;
      process.send?.({ reset: true });
    } else if (msg.cmd === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
}

/** Forks build/bench/server.js (this file's compiled sibling) and waits for its port. */
export function startServer(opts: ServerOptions = {}): Promise<ServerHandle> {
  return forkServer('./server.js', [JSON.stringify(opts)], 'http');
}

/** Which HTTP/2 bench server: our canned one (bench/h2-server.ts), or node:http2 (bench/h2-node-server.ts). */
export type H2ServerKind = 'canned' | 'node';

/** Forks an HTTP/2 bench server: over TLS (ALPN h2) with the test certificate (benchCa()). */
export function startH2Server(kind: H2ServerKind = 'canned'): Promise<ServerHandle> {
  return forkServer(kind === 'node' ? './h2-node-server.js' : './h2-server.js', [], 'https');
}

/** The test certificate and key (test/fixtures, for localhost and 127.0.0.1), read from the repo root. */
export function benchCert(): { cert: Buffer; key: Buffer } {
  const dir = new URL('../../test/fixtures/', import.meta.url); // from build/bench/
  return {
    cert: readFileSync(new URL('localhost-cert.pem', dir)),
    key: readFileSync(new URL('localhost-key.pem', dir)),
  };
}

/** What a client must trust to talk to the HTTP/2 bench server. */
export function benchCa(): Buffer {
  return benchCert().cert;
}

async function forkServer(script: string, args: string[], scheme: 'http' | 'https'): Promise<ServerHandle> {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`bench server exited early (code ${code})`)));
  });
  return {
    port,
    origin: `${scheme}://127.0.0.1:${port}`,
    stats: () => ask<{ stats: ServerStats }>(child, 'stats').then((m) => m.stats),
    reset: () => ask(child, 'reset').then(() => undefined),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.send({ cmd: 'exit' });
      }),
  };
}

function ask<T>(child: ChildProcess, cmd: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m: T) => resolve(m));
    child.send({ cmd });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Blocks the event loop for `ms`, the way a frozen VM or a long synchronous task does. */
export function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin: nothing may run, no socket event may be seen
  }
}

/** `p`, or a rejection after `ms`: no step of the bench may wait forever. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
