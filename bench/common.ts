// Shared by the orchestrator, the scenarios and the server: the server's paths, and a handle to a
// server child process.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The paths the bench server knows, and their body sizes in bytes. */
export const BODIES: Record<string, number> = { '/12': 12, '/64k': 64 * 1024 };

export interface ServerOptions {
  /** noDelay false, head and body in two writes. */
  nagle?: boolean;
  /** Close a connection after it has been idle this long. */
  idleCloseMs?: number;
}

export interface ServerStats {
  accepted: number; // connections accepted since start or the last reset
  requests: number; // request heads seen since start or the last reset
  open: number; // connections open right now
}

export interface ServerHandle {
  port: number;
  origin: string;
  stats(): Promise<ServerStats>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Forks build/bench/server.js (this file's compiled sibling) and waits for its port. */
export async function startServer(opts: ServerOptions = {}): Promise<ServerHandle> {
  const file = fileURLToPath(new URL('./server.js', import.meta.url));
  const child = fork(file, [JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`bench server exited early (code ${code})`)));
  });
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
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
