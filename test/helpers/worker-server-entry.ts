/**
 * worker-server-entry: runs a FaultServer or a raw server in a worker thread (see worker-server.ts).
 * Messages in: { id, cmd: 'snapshot' | 'close' }. Messages out: { ready: port } once listening, then
 * { id, result } per command.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { type FaultServer, startFaultServer } from './fault-server.js';
import { type RawServer, startRawServer } from './raw-server.js';
import type { WorkerServerSpec } from './worker-server.js';

// Outside a worker (the test runner loads every file under test/ as a test file): nothing to do.
if (parentPort !== null) await serve(parentPort, workerData as WorkerServerSpec);

async function serve(port: MessagePort, spec: WorkerServerSpec): Promise<void> {
  let fault: FaultServer | undefined;
  let raw: RawServer | undefined;
  if (spec.kind === 'fault') fault = await startFaultServer(spec.options);
  else raw = await startRawServer(spec.script);

  port.on('message', async (msg: { id: number; cmd: 'snapshot' | 'close' }) => {
    if (msg.cmd === 'close') {
      await (fault ?? raw)!.close();
      port.postMessage({ id: msg.id, result: null });
      port.close();
      return;
    }
    if (fault !== undefined) {
      port.postMessage({
        id: msg.id,
        result: {
          log: fault.log,
          writesAfterClose: fault.stats.writesAfterClose,
          connectionsAccepted: fault.stats.connectionsAccepted,
          requestsTotal: fault.stats.requestsTotal,
          requestsPerConnection: [...fault.stats.requestsPerConnection],
          requestIdCounts: [...fault.requestIdCounts],
        },
      });
    } else {
      port.postMessage({
        id: msg.id,
        result: {
          connections: raw!.connections.map((c) => ({ index: c.index, text: c.text(), closed: c.closed })),
        },
      });
    }
  });
  port.postMessage({ ready: (fault ?? raw)!.port });
}
