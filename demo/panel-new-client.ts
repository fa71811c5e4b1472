/**
 * Panel 1: a client per operation, over TLS + HTTP/2. Code that copies or rebuilds its client per
 * call (a helper, a per-request SDK object) pays a TLS handshake per operation with node:https (an
 * Agent per client) and undici (a Pool per client); warmpool's Clients hold no connection (they share
 * the process's Agent), so the 50 operations cost one handshake. Then 2 concurrent streams per
 * operation against a server that allows 2 streams per connection: the connections (HTTP/2 sessions)
 * each client opened for them.
 *
 * The server is node:http2 over TLS with allowHTTP1 (node:https speaks HTTP/1.1 to it) in this
 * process; it counts TLS handshakes (secureConnection), which is what each client made it do.
 */
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { benchCert } from '../bench/common.js';
import { Client } from '../src/index.js';
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

const OPERATIONS = 50;
const STREAMS_PER_SESSION = 2;
const STREAM_OPERATIONS = 20;
// (The streams part runs the same operations with 2 GETs at once: a pool that respects the server's
// stream limit needs one session for them; a client per operation needs one or two per operation.)

interface TlsServer {
  url: string;
  handshakes(): number;
  close(): Promise<void>;
}

async function startServer(): Promise<TlsServer> {
  const { cert, key } = benchCert();
  const server = http2.createSecureServer({
    cert,
    key,
    allowHTTP1: true,
    settings: { maxConcurrentStreams: STREAMS_PER_SESSION },
  });
  let handshakes = 0;
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  server.on('secureConnection', (socket: Socket) => {
    handshakes++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('error', () => {});
    s.once('close', () => sessions.delete(s));
  });
  server.on('request', (_req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    handshakes: () => handshakes,
    close: () => {
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One operation through a client made for it: `streams` concurrent GETs, then the client is dropped. */
type Operation = (url: string, streams: number) => Promise<void>;

function operations(ca: Buffer): Record<ClientName, Operation> {
  const fanOut = (streams: number, get: () => Promise<void>) =>
    Promise.all(Array.from({ length: streams }, get)).then(() => undefined);
  return {
    'node:http': async (url, streams) => {
      const agent = new https.Agent({ keepAlive: true, ca });
      try {
        await fanOut(streams, () => nodeGet(`${url}/item`, agent));
      } finally {
        agent.destroy();
      }
    },
    undici: async (url, streams) => {
      const pool = new Pool(url, { allowH2: true, connect: { ca } });
      try {
        await fanOut(streams, () => undiciGet(pool, '/item'));
      } finally {
        await pool.destroy();
      }
    },
    warmpool: async (url, streams) => {
      // No agent given: the Client uses the process's global Agent, as every Client does by default.
      const client = new Client({ baseUrl: url, tls: { ca } });
      await fanOut(streams, async () => {
        const res = await client.request('/item');
        await res.body.dump();
      });
    },
  };
}

export async function newClientPanel(progress: Progress): Promise<PanelResult> {
  // A second server for the streams part: an origin no pool has seen, so warmpool opens what it needs.
  const server = await startServer();
  const streamsServer = await startServer();
  const ca = benchCert().cert;
  const ops = operations(ca);
  const handshakes = {} as Record<ClientName, number>;
  const p50 = {} as Record<ClientName, number>;
  const sessions = {} as Record<ClientName, number>;
  try {
    for (const name of CLIENTS) {
      const before = server.handshakes();
      const latencies: number[] = [];
      for (let i = 0; i < OPERATIONS; i++) {
        progress.update(`1. a client per operation: ${name} ${i + 1}/${OPERATIONS}`);
        const start = performance.now();
        await ops[name](server.url, 1);
        latencies.push(performance.now() - start);
      }
      handshakes[name] = server.handshakes() - before;
      p50[name] = percentile(latencies, 50);
    }
    for (const name of CLIENTS) {
      const before = streamsServer.handshakes();
      for (let i = 0; i < STREAM_OPERATIONS; i++) {
        progress.update(
          `1. ${STREAMS_PER_SESSION} streams per operation: ${name} ${i + 1}/${STREAM_OPERATIONS}`,
        );
        await ops[name](streamsServer.url, STREAMS_PER_SESSION);
      }
      sessions[name] = streamsServer.handshakes() - before;
    }
  } finally {
    await server.close();
    await streamsServer.close();
  }
  const label: Record<ClientName, string> = {
    'node:http': 'node:https, an Agent per client',
    undici: 'undici, a Pool (allowH2) per client',
    warmpool: 'warmpool, a Client per operation',
  };
  return {
    id: 'new-client',
    title: `A client per operation, over TLS + HTTP/2 (${OPERATIONS} operations)`,
    setup:
      'A node:http2 TLS server in this process (HTTP/1.1 allowed for node:https) that allows ' +
      `${STREAMS_PER_SESSION} streams per connection; it counts the TLS handshakes it performs.`,
    headline:
      `TLS handshakes for ${OPERATIONS} operations: warmpool ${handshakes.warmpool} (p50 ` +
      `${ms(p50.warmpool)} ms), undici ${handshakes.undici} (p50 ${ms(p50.undici)} ms), node:https ` +
      `${handshakes['node:http']} (p50 ${ms(p50['node:http'])} ms); with ${STREAMS_PER_SESSION} streams ` +
      `per operation (${STREAM_OPERATIONS} operations): warmpool ${sessions.warmpool} connection(s), undici ${sessions.undici}, node:https ` +
      `${sessions['node:http']}.`,
    table: {
      title: '',
      columns: [
        'client',
        'TLS handshakes',
        'p50 ms / operation',
        `connections, ${STREAM_OPERATIONS} ops x ${STREAMS_PER_SESSION} streams`,
      ],
      rows: CLIENTS.map((c) => [label[c], handshakes[c], round(p50[c]), sessions[c]]),
    },
    summary: [
      { measure: `TLS handshakes for ${OPERATIONS} operations`, values: handshakes },
      {
        measure: 'p50 ms per operation',
        values: Object.fromEntries(CLIENTS.map((c) => [c, round(p50[c])])) as Record<ClientName, number>,
      },
      { measure: `connections, ${STREAM_OPERATIONS} ops x ${STREAMS_PER_SESSION} streams`, values: sessions },
    ],
    data: {
      operations: OPERATIONS,
      streamOperations: STREAM_OPERATIONS,
      streamsPerSession: STREAMS_PER_SESSION,
      handshakes,
      p50Ms: p50,
      sessions,
    },
  };
}
