// Bursts through a client made per request: the common way code ends up written (a helper that makes
// its client on every call). warmpool's Clients without an explicit Agent share the global pool
// (design invariant 1), so a new Client costs no connection; a new undici Pool or http.Agent per
// request opens a connection per request. The server counts the connections it accepts.
import http from 'node:http';
import { startServer } from '../common.js';
import { Samples } from '../report.js';
import { undici } from '../undici.js';
import type { Scenario } from './index.js';

interface PerRequest {
  name: string;
  /** One GET that makes whatever client it uses itself, and reads the body to the end. */
  once(origin: string, path: string): Promise<void>;
}

const BURST = 9;

export const bursts: Scenario = {
  name: 'scenario: bursts through a new client per request',
  async run({ quick, warmpool }) {
    const count = quick ? 10 : 40;
    const kinds: PerRequest[] = [];
    if (warmpool) {
      const { Client } = warmpool;
      kinds.push({
        name: 'warmpool new Client()',
        async once(origin, path) {
          const res = await new Client({ baseUrl: origin }).request(path);
          await res.body.bytes();
        },
      });
    }
    kinds.push(
      {
        name: 'undici new Pool()',
        async once(origin, path) {
          const pool = new undici.Pool(origin);
          const { body } = await pool.request({ path, method: 'GET' });
          await body.arrayBuffer();
          // Closed after use so the bench does not pile up sockets; left open, they would linger for
          // undici's keep-alive timeout, unused.
          void pool.close();
        },
      },
      {
        name: 'node:http new Agent()',
        once(origin, path) {
          const agent = new http.Agent({ keepAlive: true });
          return new Promise<void>((resolve, reject) => {
            http
              .get(`${origin}${path}`, { agent }, (res) => {
                res.on('data', () => {});
                res.on('end', () => {
                  agent.destroy();
                  resolve();
                });
                res.on('error', reject);
              })
              .on('error', reject);
          });
        },
      },
      {
        // Not a new client per request: the usual way to call fetch, shown for reference.
        name: 'undici fetch() (global dispatcher)',
        async once(origin, path) {
          const res = await undici.fetch(origin + path);
          await res.arrayBuffer();
        },
      },
    );

    const server = await startServer();
    const rows: (string | number)[][] = [];
    try {
      for (const k of kinds) {
        await server.reset();
        const lat = new Samples();
        let failed = 0;
        for (let b = 0; b < count; b++) {
          await Promise.all(
            Array.from({ length: BURST }, async () => {
              const t0 = performance.now();
              try {
                await k.once(server.origin, '/12');
                lat.push(performance.now() - t0);
              } catch {
                failed++;
              }
            }),
          );
        }
        const { accepted } = await server.stats();
        const [p50, p99] = lat.percentiles(50, 99);
        rows.push([k.name, count * BURST, failed, accepted, accepted / (count * BURST), p50!, p99!]);
      }
    } finally {
      await server.close();
    }
    return {
      title: `Bursts of ${BURST} concurrent GETs, a new client per request`,
      note: `${count} bursts, one after another. "connections" is what the server accepted.`,
      columns: ['client', 'requests', 'failed', 'connections', 'conns/request', 'p50 ms', 'p99 ms'],
      rows,
    };
  },
};
