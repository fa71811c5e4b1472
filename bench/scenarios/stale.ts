// Stale connections: the server closes a connection after 300 ms idle; the client pauses 500 ms
// between requests, so every request after a pause finds its pooled connection closed by the server.
//
// Two ways to pause:
//   idle    the event loop is free (a timer): the client sees the FIN when it arrives and can drop the
//           connection before it is needed again.
//   frozen  the event loop is blocked for the pause, as in a VM snapshot restore, a suspended laptop or
//           a long synchronous task: the FIN sits unread in the kernel, the connection still looks
//           open, and the request is written to a dead socket. A client that wants zero failures
//           must retry (safely: GET, no response byte received, on a new connection).
import type { ClientSpec, Runner } from '../clients.js';
import { nodeHttp, undiciFetchSpec, undiciPool } from '../clients.js';
import { type ServerHandle, blockFor, sleep, startServer } from '../common.js';
import type { Table } from '../report.js';
import { warmpoolClient, warmpoolRequest } from '../warmpool.js';
import type { Scenario } from './index.js';

const IDLE_CLOSE_MS = 300;
const PAUSE_MS = 500;

interface Subject {
  spec: ClientSpec;
  server: ServerHandle; // one server per client, so that its connection count is the client's own
  runner: Runner;
  failed: number;
  firstError: string;
}

export const stale: Scenario = {
  name: 'scenario: snapshot restore (server closes idle connections)',
  async run({ quick, warmpool }) {
    const n = quick ? 4 : 10;
    const specs: ClientSpec[] = [
      ...(warmpool ? [warmpoolRequest, warmpoolClient] : []),
      undiciPool,
      undiciFetchSpec,
      nodeHttp,
    ];
    const rows: Table['rows'] = [];
    for (const mode of ['idle', 'frozen'] as const) {
      const subjects: Subject[] = [];
      try {
        for (const spec of specs) {
          const server = await startServer({ idleCloseMs: IDLE_CLOSE_MS });
          // warmpool's top-level request() uses the global agent, whatever the origin: it is as fresh
          // as the others here because this server (and so this origin) is new.
          subjects.push({
            spec,
            server,
            runner: await spec.create(server.origin, 1),
            failed: 0,
            firstError: '',
          });
        }
        // Every client runs the same schedule at the same time: request, pause, request, ... so one
        // frozen pause hits them all alike.
        const round = () =>
          Promise.all(
            subjects.map((s) =>
              s.runner.request('/12', 0).catch((e: Error & { code?: string }) => {
                s.failed++;
                s.firstError ||= `${e.code ?? e.name}: ${e.message}`;
              }),
            ),
          );
        await round(); // opens each client's connection; not counted
        for (const s of subjects) {
          s.failed = 0;
          s.firstError = '';
        }
        for (let i = 0; i < n; i++) {
          if (mode === 'idle') await sleep(PAUSE_MS);
          else blockFor(PAUSE_MS);
          await round();
        }
        for (const s of subjects) {
          const { accepted } = await s.server.stats();
          rows.push([s.spec.name, mode, n, s.failed, accepted, s.firstError.slice(0, 70)]);
        }
      } finally {
        for (const s of subjects) {
          await s.runner.close();
          await s.server.close();
        }
      }
    }
    return {
      title: `Stale connections: server closes after ${IDLE_CLOSE_MS} ms idle, client pauses ${PAUSE_MS} ms`,
      note:
        `${n} GETs per client, each after a pause; idle = timer, frozen = event loop blocked (snapshot ` +
        'restore). "failed" is requests that rejected; "connections" is what the server accepted in all.',
      columns: ['client', 'pause', 'requests', 'failed', 'connections', 'first error'],
      rows,
    };
  },
};
