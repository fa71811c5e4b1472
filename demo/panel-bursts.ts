/**
 * Panel 2: a session per request under bursts. Bursts of 9 concurrent GETs, each through a client
 * made for that request (node:http: an Agent; undici: a Pool; warmpool: a Client, which shares the
 * process's pool), against a server with a small accept backlog and a slow accept loop: a burst of
 * new connections overflows its accept queue, the kernel drops the extra SYNs, and those clients
 * resend them a second later (Linux's initial retransmission timeout). A pool that keeps its
 * connections opens them once.
 *
 * Each client has a server of its own (bench/server.ts in a child process: the slow accept loop blocks
 * that process, not this one), so its connection count is its own; the three run at the same time.
 * The first burst opens the connections and is not timed: warmpool's pool, like any long-running
 * process's, is then warm, while a client per request is cold on every burst.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { startServer } from '../bench/common.js';
import { Client } from '../src/index.js';
import { errorCode, nodeGet, undiciGet } from './clients.js';
import {
  CLIENTS,
  type ClientName,
  type PanelResult,
  type Progress,
  ms,
  percentile,
  round,
} from './output.js';

const BURST = 9;
const TIMED_BURSTS = 2;
/**
 * Listen backlog 3: the kernel queues 4 connections for accept (Linux: backlog + 1) while the server
 * sleeps on the first, and drops the other SYNs of a burst of 9; their retransmissions, a second later,
 * fit in the emptied queue. So a burst of new connections costs a second, not more.
 */
const BACKLOG = 3;
const ACCEPT_DELAY_MS = 10;

const perRequest: Record<ClientName, (origin: string) => Promise<void>> = {
  'node:http': async (origin) => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      await nodeGet(`${origin}/12`, agent);
    } finally {
      agent.destroy();
    }
  },
  undici: async (origin) => {
    const pool = new Pool(origin);
    try {
      await undiciGet(pool, '/12');
    } finally {
      await pool.destroy();
    }
  },
  warmpool: async (origin) => {
    const res = await new Client({ baseUrl: origin }).request('/12');
    await res.body.dump();
  },
};

interface Outcome {
  connections: number;
  failed: number;
  firstError: string;
  p50: number;
  p99: number;
}

async function runClient(name: ClientName, progress: Progress, done: Set<ClientName>): Promise<Outcome> {
  const server = await startServer({ backlog: BACKLOG, acceptDelayMs: ACCEPT_DELAY_MS });
  try {
    const latencies: number[] = [];
    let failed = 0;
    let firstError = '';
    for (let b = 0; b <= TIMED_BURSTS; b++) {
      progress.update(
        `2. bursts: ${name} burst ${b + 1}/${TIMED_BURSTS + 1} (done: ${[...done].join(', ')})`,
      );
      await Promise.all(
        Array.from({ length: BURST }, async () => {
          const start = performance.now();
          try {
            await perRequest[name](server.origin);
            if (b > 0) latencies.push(performance.now() - start);
          } catch (err) {
            failed++;
            firstError ||= errorCode(err);
          }
        }),
      );
    }
    const { accepted } = await server.stats();
    done.add(name);
    return {
      connections: accepted,
      failed,
      firstError,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
    };
  } finally {
    await server.close();
  }
}

export async function burstsPanel(progress: Progress): Promise<PanelResult> {
  const done = new Set<ClientName>();
  const outcomes = await Promise.all(CLIENTS.map((c) => runClient(c, progress, done)));
  const by = Object.fromEntries(CLIENTS.map((c, i) => [c, outcomes[i]!])) as Record<ClientName, Outcome>;
  const requests = BURST * (TIMED_BURSTS + 1);
  const pick = (f: (o: Outcome) => number) =>
    Object.fromEntries(CLIENTS.map((c) => [c, f(by[c])])) as Record<ClientName, number>;
  const label: Record<ClientName, string> = {
    'node:http': 'node:http, an Agent per request',
    undici: 'undici, a Pool per request',
    warmpool: 'warmpool, a Client per request',
  };
  const worst = CLIENTS.filter((c) => c !== 'warmpool').sort((a, b) => by[b].p99 - by[a].p99)[0]!;
  return {
    id: 'bursts',
    title: `A session per request under bursts (${TIMED_BURSTS + 1} bursts of ${BURST} concurrent GETs)`,
    setup:
      `Servers with a listen backlog of ${BACKLOG} and an accept loop that stalls ${ACCEPT_DELAY_MS} ms per ` +
      'connection: the SYNs of a burst of new connections overflow the accept queue and are dropped.',
    headline:
      `warmpool: ${by.warmpool.connections} connections for ${requests} requests, ${by.warmpool.failed} ` +
      `failed, p99 ${ms(by.warmpool.p99)} ms; ${worst}: ${by[worst].connections} connections, ` +
      `${by[worst].failed} failed, p99 ${ms(by[worst].p99)} ms.`,
    table: {
      title: '',
      note: `${requests} requests per client; latencies from the ${TIMED_BURSTS} bursts after the first.`,
      columns: ['client', 'connections', 'failed', 'p50 ms', 'p99 ms', 'first error'],
      rows: CLIENTS.map((c) => [
        label[c],
        by[c].connections,
        by[c].failed,
        round(by[c].p50),
        round(by[c].p99),
        by[c].firstError,
      ]),
    },
    summary: [
      { measure: `connections for ${requests} requests`, values: pick((o) => o.connections) },
      { measure: 'failed requests', values: pick((o) => o.failed) },
      { measure: 'p99 ms (warm bursts)', values: pick((o) => round(o.p99)) },
    ],
    data: { burst: BURST, bursts: TIMED_BURSTS + 1, requests, backlog: BACKLOG, clients: by },
  };
}
