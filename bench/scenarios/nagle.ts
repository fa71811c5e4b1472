// A server with Nagle's algorithm on (noDelay false) that writes the response head and body in two
// writes: the body waits until the head is acknowledged, and on a keep-alive connection the client's
// kernel may delay that ACK (Linux: up to 40 ms once a connection leaves quick-ACK mode). A new
// connection per request (`Connection: close`) often dodges this, so keep-alive can lose to close.
// No client can fix the server; the rows show what each one makes of it.
import {
  type ClientSpec,
  type Runner,
  nodeHttp,
  rawSocket,
  undiciFetchSpec,
  undiciPool,
} from '../clients.js';
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
    const failed = new Map<ClientSpec, number>(specs.map((k) => [k, 0]));
    try {
      // Separate pools per mode: a closing request would otherwise take the keep-alive connection
      // with it, and the next keep-alive sample would pay for a connect.
      const keepRunners = new Map<ClientSpec, Runner>();
      const closeRunners = new Map<ClientSpec, Runner>();
      for (const k of specs) {
        const r = await k.create(server.origin, 1);
        await r.request('/12', 0); // open the connection before timing
        keepRunners.set(k, r);
        if (k !== rawSocket) closeRunners.set(k, await k.create(server.origin, 1));
      }
      // One request at a time; clients and modes alternate, sample by sample.
      for (let i = 0; i < n; i++) {
        for (const k of specs) {
          let t0 = performance.now();
          try {
            await keepRunners.get(k)!.request('/12', 0);
            keep.get(k)!.push(performance.now() - t0);
            t0 = performance.now();
            const r = closeRunners.get(k);
            if (r) {
              await r.request('/12', 0, CLOSE);
            } else {
              // The floor keeps one socket per worker: a closing request gets a socket of its own.
              const once = await k.create(server.origin, 1);
              await once.request('/12', 0, CLOSE);
              await once.close();
            }
            close.get(k)!.push(performance.now() - t0);
          } catch {
            failed.set(k, failed.get(k)! + 1);
          }
        }
      }
      for (const r of [...keepRunners.values(), ...closeRunners.values()]) await r.close();
    } finally {
      await server.close();
    }
    return {
      title: 'Nagle server (noDelay false, head and body in two writes), sequential GET of 12 B',
      note:
        `${n} samples per mode. keep-alive: one connection reused; close: \`Connection: close\` on every ` +
        'request, so a new connection each time (its connect is included).',
      columns: ['client', 'keep-alive p50 ms', 'keep-alive p99 ms', 'close p50 ms', 'close p99 ms', 'failed'],
      rows: specs.map((k) => {
        const [k50, k99] = keep.get(k)!.percentiles(50, 99);
        const [c50, c99] = close.get(k)!.percentiles(50, 99);
        return [k.name, k50!, k99!, c50!, c99!, failed.get(k)!];
      }),
    };
  },
};
