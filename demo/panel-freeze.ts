/**
 * Panel 4: a freeze past the server's idle timeout. Each client warms WARM connections to a server of
 * its own (bench/server.ts with `idleCloseMs`, in a child process, so it keeps running), then this
 * process blocks its event loop for FREEZE_MS, well past the server's idle timeout (a VM snapshot
 * restored, a laptop resumed, a long synchronous task). The servers close every idle connection
 * meanwhile; their FINs sit unread in this process's kernel buffers. The moment the loop is free, a
 * burst of BURST GETs per client goes out in the same tick: a pool that hands out a connection it has
 * not checked writes to a dead socket.
 */
import http from 'node:http';
import { Pool } from 'undici';
import { blockFor, startServer } from '../bench/common.js';
import { Agent, Client } from '../src/index.js';
import { errorCode, nodeGet, undiciGet } from './clients.js';
import { CLIENTS, type ClientName, type PanelResult, type Progress } from './output.js';

const WARM = 4;
const BURST = 20;
const IDLE_CLOSE_MS = 300;
const FREEZE_MS = 1000;

interface Pooled {
  get(): Promise<void>;
  close(): Promise<void>;
}

const makers: Record<ClientName, (origin: string) => Pooled> = {
  'node:http': (origin) => {
    const agent = new http.Agent({ keepAlive: true });
    return { get: () => nodeGet(`${origin}/12`, agent), close: async () => agent.destroy() };
  },
  undici: (origin) => {
    const pool = new Pool(origin);
    return { get: () => undiciGet(pool, '/12'), close: () => pool.destroy() };
  },
  warmpool: (origin) => {
    const agent = new Agent();
    const client = new Client({ agent, baseUrl: origin });
    return {
      get: async () => {
        const res = await client.request('/12');
        await res.body.dump();
      },
      close: () => agent.destroy(),
    };
  },
};

interface Outcome {
  failed: number;
  errors: string[];
  /** Connections the server accepted in all (the warm ones included). */
  connections: number;
}

export async function freezePanel(progress: Progress): Promise<PanelResult> {
  progress.update('4. freeze: starting the servers');
  const servers = await Promise.all(CLIENTS.map(() => startServer({ idleCloseMs: IDLE_CLOSE_MS })));
  const pools = CLIENTS.map((c, i) => makers[c](servers[i]!.origin));
  const by = {} as Record<ClientName, Outcome>;
  try {
    progress.update(`4. freeze: warming ${WARM} connections per client`);
    await Promise.all(pools.map((p) => Promise.all(Array.from({ length: WARM }, () => p.get()))));
    progress.update(
      `4. freeze: event loop blocked for ${FREEZE_MS} ms (server idle timeout ${IDLE_CLOSE_MS} ms)`,
    );
    blockFor(FREEZE_MS);
    // All bursts start in this tick, before the event loop can read a FIN.
    const bursts = pools.map((p) =>
      Promise.allSettled(Array.from({ length: BURST }, () => p.get())).then((settled) => {
        const errors = settled
          .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
          .map((s) => errorCode(s.reason));
        return errors;
      }),
    );
    const errors = await Promise.all(bursts);
    for (let i = 0; i < CLIENTS.length; i++) {
      const { accepted } = await servers[i]!.stats();
      by[CLIENTS[i]!] = { failed: errors[i]!.length, errors: [...new Set(errors[i])], connections: accepted };
    }
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(servers.map((s) => s.close()));
  }
  const failed = Object.fromEntries(CLIENTS.map((c) => [c, by[c].failed])) as Record<ClientName, number>;
  return {
    id: 'freeze',
    title: `A freeze past the server's idle timeout (${BURST} GETs per client after it)`,
    setup:
      `Servers that close connections idle for ${IDLE_CLOSE_MS} ms; each client warms ${WARM} ` +
      `connections, then this process's event loop is blocked for ${FREEZE_MS} ms, then a burst.`,
    headline:
      `warmpool: ${failed.warmpool} of ${BURST} failed; undici: ${failed.undici} of ${BURST}; ` +
      `node:http: ${failed['node:http']} of ${BURST}.`,
    table: {
      title: '',
      columns: ['client', 'failed', 'connections', 'errors'],
      rows: CLIENTS.map((c) => [
        c,
        `${by[c].failed} of ${BURST}`,
        by[c].connections,
        by[c].errors.join(', '),
      ]),
    },
    summary: [{ measure: `failed of ${BURST} after the freeze`, values: failed }],
    data: { warm: WARM, burst: BURST, idleCloseMs: IDLE_CLOSE_MS, freezeMs: FREEZE_MS, clients: by },
  };
}
