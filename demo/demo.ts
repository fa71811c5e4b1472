/**
 * warmpool demo: the burst scenario three ways against an embedded local server.
 *
 * 20 bursts of 9 concurrent GETs (think: a request handler that fans out to an API), made
 *   1. with a new connection per request (node:http, agent: false),
 *   2. with a new warmpool Client per request (the usual SDK pattern; Clients share the global pool),
 *   3. with one warmpool Client.
 * Printed: connections the server accepted, and p50 / p99 request latency.
 *
 * Run: npm start
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, Client, getGlobalAgent } from '../src/index.js';

const BURSTS = 20;
const PER_BURST = 9;
const HANDLER_DELAY_MS = 2;

/** A keep-alive server that answers after a short delay and counts the connections it accepts. */
async function startServer(): Promise<{
  url: string;
  connections: () => number;
  close: () => Promise<void>;
}> {
  let connections = 0;
  const server = http.createServer((_req, res) => {
    setTimeout(() => res.end('{"ok":true}'), HANDLER_DELAY_MS);
  });
  server.keepAliveTimeout = 5_000;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/items`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** One GET with node:http on a fresh socket (no agent: Connection: close). */
function nodeHttpGet(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** Runs the bursts with `get` and returns each request's latency in ms. */
async function bursts(get: () => Promise<void>): Promise<number[]> {
  const latencies: number[] = [];
  const timed = async () => {
    const start = performance.now();
    await get();
    latencies.push(performance.now() - start);
  };
  for (let b = 0; b < BURSTS; b++) await Promise.all(Array.from({ length: PER_BURST }, timed));
  return latencies;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const server = await startServer();
  const oneClient = new Client({ agent: new Agent() });
  const ways: Array<[string, () => Promise<void>]> = [
    ['new connection per request (node:http)', () => nodeHttpGet(server.url)],
    [
      'new Client per request (warmpool)',
      async () => {
        const res = await new Client().request(server.url);
        await res.body.text();
      },
    ],
    [
      'one Client (warmpool)',
      async () => {
        const res = await oneClient.request(server.url);
        await res.body.text();
      },
    ],
  ];

  console.log(
    `warmpool demo: ${BURSTS} bursts of ${PER_BURST} concurrent GETs to a local server (${HANDLER_DELAY_MS} ms handler)\n`,
  );
  const width = Math.max(...ways.map(([name]) => name.length));
  console.log(`${''.padEnd(width)}  connections  p50 ms  p99 ms`);
  for (const [name, get] of ways) {
    const before = server.connections();
    const latencies = await bursts(get);
    const opened = server.connections() - before;
    console.log(
      `${name.padEnd(width)}  ${String(opened).padStart(11)}  ${percentile(latencies, 50).toFixed(1).padStart(6)}  ${percentile(latencies, 99).toFixed(1).padStart(6)}`,
    );
  }
  console.log('\nA Client holds no sockets: making one per request still reuses the pool (one per process).');

  await Promise.all([getGlobalAgent().close(), oneClient.agent.close()]);
  await server.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
