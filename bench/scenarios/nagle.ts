// A server with Nagle's algorithm on (noDelay false) that writes the response head and body in two
// writes: the body waits until the head is acknowledged, and on a keep-alive connection the client's
// kernel may delay that ACK (Linux: up to 40 ms once a connection leaves quick-ACK mode). A new
// connection per request (`Connection: close`) often dodges this, so keep-alive can lose to close.
// No client can fix the server; the rows show what each one makes of it.
import { type ClientSpec, nodeHttp, rawSocket, undiciFetchSpec, undiciPool } from '../clients.js';
import { startServer } from '../common.js';
import { Samples } from '../report.js';
import { warmpoolClient } from '../warmpool.js';
import type { Scenario } from './index.js';

const CLOSE = { connection: 'close' };

export const nagle: Scenario = {
  name: 'scenario: Nagle server, keep-alive vs Connection: close',
  async run({ quick, warmpool }) {
    const n = quick ? 15 : 100;
    const specs: ClientSpec[] = [
      ...(warmpool ? [warmpoolClient] : []),
      undiciPool,
      undiciFetchSpec,
      nodeHttp,
      rawSocket,
    ];
    const server = await startServer({ nagle: true });
    const keep = new Map<ClientSpec, Samples>(specs.map((k) => [k, new Samples()]));
    const close = new Map<ClientSpec, Samples>(specs.map((k) => [k, new Samples()]));
    const failed = new Map<ClientSpec, string>();
    try {
      // Each client alone, one request at a time: an application with one connection. Interleaving
      // the clients (as the other tables do) changes what is measured here: with other connections'
      // traffic in between, only one of the interleaved connections kept hitting the delayed ACK.
      for (const k of specs) {
        // Separate pools per mode: a closing request would otherwise take the keep-alive connection
        // with it, and the next keep-alive sample would pay for a connect.
        const keepRunner = await k.create(server.origin, 1);
        const closeRunner = k === rawSocket ? null : await k.create(server.origin, 1);
        try {
          await keepRunner.request('/12', 0); // open the connection before timing
          for (let i = 0; i < n; i++) {
            const t0 = performance.now();
            await keepRunner.request('/12', 0);
            keep.get(k)!.push(performance.now() - t0);
          }
          for (let i = 0; i < n; i++) {
            const t0 = performance.now();
            if (closeRunner) {
              await closeRunner.request('/12', 0, CLOSE);
            } else {
              // The floor keeps one socket per worker: a closing request gets a socket of its own.
              const once = await k.create(server.origin, 1);
              await once.request('/12', 0, CLOSE);
              await once.close();
            }
            close.get(k)!.push(performance.now() - t0);
          }
        } catch (e) {
          failed.set(k, (e as Error).message);
        } finally {
          await keepRunner.close();
          await closeRunner?.close();
        }
      }
    } finally {
      await server.close();
    }
    return {
      title: 'Nagle server (noDelay false, head and body in two writes), sequential GET of 12 B',
      note:
        `${n} samples per mode, each client alone. keep-alive: one connection reused; close: ` +
        '`Connection: close` on every request, so a new connection each time (its connect is included).',
      columns: ['client', 'keep-alive p50 ms', 'keep-alive p99 ms', 'close p50 ms', 'close p99 ms', 'error'],
      rows: specs.map((k) => {
        const [k50, k99] = keep.get(k)!.percentiles(50, 99);
        const [c50, c99] = close.get(k)!.percentiles(50, 99);
        return [k.name, k50!, k99!, c50!, c99!, failed.get(k) ?? ''];
      }),
    };
  },
};
