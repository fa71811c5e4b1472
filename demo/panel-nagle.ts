/**
 * Panel 3: keep-alive slower than close. The server (bench/server.ts with `nagle`, in a child
 * process) has Nagle's algorithm on and writes each response's head and body in two writes: on a
 * reused connection the body waits for the ACK of the head, which the client's kernel delays (Linux:
 * ~40 ms). A new connection does not show it (its first segments are ACKed at once), so keep-alive
 * loses to `Connection: close` with every client: no client can fix the server. What warmpool adds is
 * the diagnosis: probeKeepAlive measures both and names the cause and the fix.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { startServer } from '../bench/common.js';
import { Agent, Client, probeKeepAlive } from '../src/index.js';
import { nodeGet, undiciGet } from './clients.js';
import {
  CLIENTS,
  type ClientName,
  type PanelResult,
  type Progress,
  ms,
  percentile,
  round,
} from './output.js';

const SAMPLES = 8;

/** A client with one connection: get() sends one GET (with `Connection: close` when asked). */
interface OneConnection {
  get(close: boolean): Promise<void>;
  close(): Promise<void>;
}

const CLOSE = { connection: 'close' };

const makers: Record<ClientName, (origin: string) => OneConnection> = {
  'node:http': (origin) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    return {
      get: (close) => nodeGet(`${origin}/12`, agent, close ? CLOSE : undefined),
      close: async () => agent.destroy(),
    };
  },
  undici: (origin) => {
    const pool = new Pool(origin, { connections: 1 });
    return { get: (close) => undiciGet(pool, '/12', close ? CLOSE : undefined), close: () => pool.destroy() };
  },
  warmpool: (origin) => {
    const agent = new Agent({ maxConnectionsPerOrigin: 1 });
    const client = new Client({ agent, baseUrl: origin });
    return {
      get: async (close) => {
        const res = await client.request('/12', close ? { headers: CLOSE } : {});
        await res.body.dump();
      },
      close: () => agent.destroy(),
    };
  },
};

/** `SAMPLES` sequential GETs, each timed from the call to the body's end. */
async function timed(conn: OneConnection, close: boolean, onEach: (i: number) => void): Promise<number> {
  const latencies: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    onEach(i);
    const start = performance.now();
    await conn.get(close);
    latencies.push(performance.now() - start);
  }
  return percentile(latencies, 50);
}

export async function naglePanel(progress: Progress): Promise<PanelResult> {
  const server = await startServer({ nagle: true });
  const keepP50 = {} as Record<ClientName, number>;
  const closeP50 = {} as Record<ClientName, number>;
  let probe: Awaited<ReturnType<typeof probeKeepAlive>>;
  try {
    for (const name of CLIENTS) {
      // One client per mode: a closing request would take the kept-alive connection with it.
      const keep = makers[name](server.origin);
      const fresh = makers[name](server.origin);
      try {
        await keep.get(false); // opens the connection: the keep-alive samples all reuse it
        keepP50[name] = await timed(keep, false, (i) =>
          progress.update(`3. keep-alive vs close: ${name} keep-alive ${i + 1}/${SAMPLES}`),
        );
        closeP50[name] = await timed(fresh, true, (i) =>
          progress.update(`3. keep-alive vs close: ${name} Connection: close ${i + 1}/${SAMPLES}`),
        );
      } finally {
        await keep.close();
        await fresh.close();
      }
    }
    progress.update('3. keep-alive vs close: probeKeepAlive');
    probe = await probeKeepAlive(`${server.origin}/12`, { samples: SAMPLES });
  } finally {
    await server.close();
  }
  const pick = (m: Record<ClientName, number>) =>
    Object.fromEntries(CLIENTS.map((c) => [c, round(m[c])])) as Record<ClientName, number>;
  const verdict = probe.verdict;
  return {
    id: 'nagle',
    title: `Keep-alive slower than close (${SAMPLES} sequential GETs per mode)`,
    setup:
      'A server with Nagle on (no TCP_NODELAY) that writes head and body separately: on a reused ' +
      "connection the body waits for the client's delayed ACK of the head.",
    headline:
      `keep-alive p50 ${ms(keepP50.warmpool)} ms against ${ms(closeP50.warmpool)} ms with Connection: ` +
      `close (warmpool; undici ${ms(keepP50.undici)} / ${ms(closeP50.undici)}, node:http ` +
      `${ms(keepP50['node:http'])} / ${ms(closeP50['node:http'])}). probeKeepAlive: "${verdict}". ` +
      probe.explanation,
    table: {
      title: '',
      columns: ['client', 'keep-alive p50 ms', 'Connection: close p50 ms'],
      rows: CLIENTS.map((c) => [c, round(keepP50[c]), round(closeP50[c])]),
    },
    summary: [
      { measure: 'keep-alive p50 ms', values: pick(keepP50) },
      { measure: 'Connection: close p50 ms', values: pick(closeP50) },
      { measure: 'diagnosis', values: { 'node:http': '-', undici: '-', warmpool: verdict } },
    ],
    data: {
      samples: SAMPLES,
      keepAliveP50Ms: keepP50,
      closeP50Ms: closeP50,
      probe: {
        verdict,
        explanation: probe.explanation,
        keepAliveP50Ms: probe.keepAlive.p50Ms,
        closeP50Ms: probe.close.p50Ms,
      },
    },
  };
}
