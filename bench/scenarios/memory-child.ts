// One client in a process of its own (forked by memory.ts with --expose-gc), so that no other client's
// heap, sockets or JIT code is counted. It opens n connections to `origin`, leaves them idle, and
// reports memory before and after; then it waits for the parent (which checks the server's count of
// open connections) to say exit.
import http from 'node:http';
import net from 'node:net';
import { undici } from '../undici.js';
import { loadWarmpool } from '../warmpool.js';

export interface MemoryReport {
  before: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
  error?: string;
}

interface Pooled {
  /** One GET of /12, body read to the end. */
  get(): Promise<void>;
}

const [kind, origin, nArg] = process.argv.slice(2) as [string, string, string];
const n = Number(nArg);
const gc = (globalThis as { gc?: () => void }).gc;

async function make(): Promise<Pooled> {
  const url = `${origin}/12`;
  switch (kind) {
    case 'warmpool': {
      const wp = await loadWarmpool();
      if (wp instanceof Error) throw wp;
      const client = new wp.Client({ agent: new wp.Agent({ maxConnectionsPerOrigin: n }), baseUrl: origin });
      return { get: () => client.request('/12').then((r) => r.body.bytes().then(() => {})) };
    }
    case 'undici': {
      const pool = new undici.Pool(origin, { connections: n });
      return {
        get: () =>
          pool.request({ path: '/12', method: 'GET' }).then((r) => r.body.arrayBuffer().then(() => {})),
      };
    }
    case 'node:http': {
      // maxFreeSockets defaults to 256: without raising it most idle sockets would be closed.
      const agent = new http.Agent({ keepAlive: true, maxSockets: n, maxFreeSockets: n });
      return {
        get: () =>
          new Promise((resolve, reject) => {
            http
              .get(url, { agent }, (res) => {
                res.on('data', () => {});
                res.on('end', resolve);
              })
              .on('error', reject);
          }),
      };
    }
    default: {
      // The floor: a plain socket per "request", kept open, response not parsed (it is small enough
      // to arrive in one read).
      const sockets: net.Socket[] = [];
      const { hostname, port } = new URL(origin);
      const req = Buffer.from(`GET /12 HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`);
      return {
        get: () =>
          new Promise((resolve, reject) => {
            const s = net.connect({ host: hostname, port: Number(port), noDelay: true }, () => s.write(req));
            s.once('data', () => resolve());
            s.once('error', reject);
            sockets.push(s);
          }),
      };
    }
  }
}

function settle(): NodeJS.MemoryUsage {
  for (let i = 0; i < 4; i++) gc?.();
  return process.memoryUsage();
}

async function main(): Promise<MemoryReport> {
  const pooled = await make();
  await pooled.get(); // the code paths have run once and one connection is open
  const before = settle();
  // n at once: each pool opens a connection per request in flight, up to n, and keeps them idle after.
  await Promise.all(Array.from({ length: n }, () => pooled.get()));
  await new Promise((resolve) => setTimeout(resolve, 100)); // let responses' leftovers become garbage
  return { before, after: settle() };
}

main().then(
  (report) => process.send?.(report),
  (e: Error) => process.send?.({ error: e.message }),
);
process.on('message', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
