// Cold start vs warm reuse: what the first request on a fresh pool costs (a TCP connect on loopback,
// plus whatever the client sets up lazily) against a request on a connection that is already open.
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

export const coldStart: Scenario = {
  name: 'scenario: cold start vs warm reuse',
  async run({ quick, warmpool }) {
    const n = quick ? 30 : 200;
    const specs: ClientSpec[] = [
      ...(warmpool ? [warmpoolClient] : []),
      undiciPool,
      undiciFetchSpec,
      nodeHttp,
      rawSocket,
    ];
    const server = await startServer();
    const cold = new Map<ClientSpec, Samples>(specs.map((k) => [k, new Samples()]));
    const warm = new Map<ClientSpec, Samples>(specs.map((k) => [k, new Samples()]));
    try {
      // Cold: a new pool for every request, so every request opens its connection. The time includes
      // making the pool (for the raw socket, that is where the connect happens).
      for (let i = 0; i < n; i++) {
        for (const k of specs) {
          const t0 = performance.now();
          const r = await k.create(server.origin, 1);
          await r.request('/12', 0);
          cold.get(k)!.push(performance.now() - t0);
          await r.close();
        }
      }
      // Warm: one pool each, one request to open its connection, then n requests that reuse it.
      // Interleaved, like the cold samples, so that no client gets a quieter stretch of time.
      const runners = new Map<ClientSpec, Runner>();
      for (const k of specs) {
        const r = await k.create(server.origin, 1);
        await r.request('/12', 0);
        runners.set(k, r);
      }
      await server.reset();
      for (let i = 0; i < n; i++) {
        for (const k of specs) {
          const t0 = performance.now();
          await runners.get(k)!.request('/12', 0);
          warm.get(k)!.push(performance.now() - t0);
        }
      }
      const reconnects = (await server.stats()).accepted;
      for (const r of runners.values()) await r.close();

      return {
        title: 'Cold start vs warm reuse, sequential GET of 12 B',
        note:
          `${n} samples per column. Cold: a new pool (Agent, Pool, http.Agent, socket) per request, timed from ` +
          `creating it to the end of the body. Warm: the same pool and connection; ${reconnects} ` +
          'connections were opened during the warm samples (0 means every warm request reused its connection).',
        columns: ['client', 'cold p50 ms', 'cold p99 ms', 'warm p50 ms', 'warm p99 ms', 'cold/warm p50'],
        rows: specs.map((k) => {
          const [c50, c99] = cold.get(k)!.percentiles(50, 99);
          const [w50, w99] = warm.get(k)!.percentiles(50, 99);
          return [k.name, c50!, c99!, w50!, w99!, c50! / w50!];
        }),
      };
    } finally {
      await server.close();
    }
  },
};
