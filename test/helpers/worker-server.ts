/**
 * worker-server: a FaultServer (or a raw server) in a worker thread, so it keeps running while the
 * test's own thread is blocked (blockThread in manual-clock.ts).
 *
 * Why: with the server in the test's thread, a blocked thread blocks the server too, and an unblocked
 * one reads every FIN before any test code runs. A server in another thread closes its connections
 * while the client is busy, and the client then issues requests before its event loop has polled the
 * sockets: exactly what a process sees after a freeze, a snapshot restore, or a long synchronous task.
 */
import { Worker } from 'node:worker_threads';
import type { FaultEvent, FaultServerOptions } from './fault-server.js';
import type { RawStep } from './raw-server.js';

export type WorkerServerSpec =
  | { kind: 'fault'; options: Omit<FaultServerOptions, 'handler'> }
  | { kind: 'raw'; script: RawStep[] };

export interface FaultSnapshot {
  log: FaultEvent[];
  writesAfterClose: number;
  connectionsAccepted: number;
  requestsTotal: number;
  requestsPerConnection: [number, number][];
  requestIdCounts: [string, number][];
}

export interface RawSnapshot {
  connections: { index: number; text: string; closed: 'by-client' | 'by-server' | undefined }[];
}

export interface WorkerServer<S> {
  url: string;
  port: number;
  snapshot(): Promise<S>;
  close(): Promise<void>;
}

async function start<S>(spec: WorkerServerSpec): Promise<WorkerServer<S>> {
  const worker = new Worker(new URL('./worker-server-entry.js', import.meta.url), { workerData: spec });
  let nextId = 1;
  const pending = new Map<number, (v: unknown) => void>();
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker server did not start within 5 s')), 5000);
    worker.once('error', reject);
    worker.on('message', (m: { ready?: number; id?: number; result?: unknown }) => {
      if (m.ready !== undefined) {
        clearTimeout(timer);
        resolve(m.ready);
      } else if (m.id !== undefined) {
        pending.get(m.id)?.(m.result);
        pending.delete(m.id);
      }
    });
  });
  const call = (cmd: 'snapshot' | 'close') =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(
        () => reject(new Error(`worker server: no answer to ${cmd} within 5 s`)),
        5000,
      );
      pending.set(id, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
      worker.postMessage({ id, cmd });
    });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    snapshot: () => call('snapshot') as Promise<S>,
    close: async () => {
      await call('close');
      await worker.terminate();
    },
  };
}

export function startWorkerFaultServer(
  options: Omit<FaultServerOptions, 'handler'>,
): Promise<WorkerServer<FaultSnapshot>> {
  return start<FaultSnapshot>({ kind: 'fault', options });
}

export function startWorkerRawServer(script: RawStep[]): Promise<WorkerServer<RawSnapshot>> {
  return start<RawSnapshot>({ kind: 'raw', script });
}
