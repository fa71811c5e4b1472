// `npm run bench:cpu-ab -- --b=<dir> [--a=<dir>] [--c=16,64] [--path=/12] [--rounds=N] [--ms=N] [--floor]`:
// an A/B of two warmpool builds by the client process's CPU time per request, which a busy machine
// disturbs far less than req/s (another process taking a core slows a round down, but the CPU the
// client spends per request stays about the same).
//
// A is this checkout's build (or --a=<dir>), B the build in another checkout (its build/src/index.js;
// `git worktree add ../base <commit> && (cd ../base && npx tsc -p tsconfig.json)`). Both run in this
// one process against one bench server (bench/server.ts, a process of its own), in alternating rounds
// (A B, B A, A B, ...): each round is a warm-up, then `ms` of C workers sending GETs one after another,
// timed by process.cpuUsage() (user + system, all threads). It prints per C the median µs/request of
// each build with every round's value, and the median of the per-round differences B - A with their
// range: a change counts when that range stays on one side of zero. --floor adds the raw-socket floor
// as a third client (what Node and the kernel cost per request; the gap to it is warmpool's).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { exitUnlessFlagsValid } from './cli-flags.js';
import { type ClientSpec, type Runner, rawSocket } from './clients.js';
import { checkBodyLength, startServer } from './common.js';
import { median } from './report.js';
import type { Warmpool } from './warmpool.js';

const USAGE =
  'usage: npm run bench:cpu-ab -- --b=<dir> [--a=<dir>] [--c=16,64] [--path=/12] [--rounds=N] [--ms=N] [--floor]';
const args = process.argv.slice(2);
exitUnlessFlagsValid(
  args,
  {
    exact: ['--floor'],
    withValue: ['--a', '--b', '--c', '--path', '--rounds', '--ms'],
    choices: {},
    positional: false,
  },
  USAGE,
);
const arg = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const bDir = arg('b');
if (bDir === undefined) {
  console.error(USAGE);
  process.exit(2);
}
const aDir = arg('a') ?? new URL('../../', import.meta.url).pathname; // from build/bench/
const concurrency = (arg('c') ?? '16,64').split(',').map(Number);
const path = arg('path') ?? '/12';
const rounds = Number(arg('rounds') ?? 9);
const ms = Number(arg('ms') ?? 1000);

function build(name: string, dir: string): ClientSpec {
  const url = pathToFileURL(resolve(dir, 'build/src/index.js')).href;
  return {
    name,
    async create(origin, connections) {
      const { Agent, Client } = (await import(url)) as Warmpool;
      const agent = new Agent({ maxConnectionsPerOrigin: connections });
      const client = new Client({ agent, baseUrl: origin });
      return {
        async request(p) {
          const res = await client.request(p);
          checkBodyLength(p, (await res.body.bytes()).length);
        },
        close: () => agent.close(),
      };
    },
  };
}

/** C workers for `forMs` (or `maxN` requests); the number of requests done and the CPU µs they took. */
async function run(
  runner: Runner,
  c: number,
  forMs: number,
  maxN = Number.POSITIVE_INFINITY,
): Promise<{ n: number; cpuUs: number; userUs: number }> {
  let n = 0;
  let started = 0;
  const end = performance.now() + forMs;
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: c }, async (_, w) => {
      while (performance.now() < end && started++ < maxN) {
        await runner.request(path, w);
        n++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { n, cpuUs: cpu.user + cpu.system, userUs: cpu.user };
}

const fmt = (x: number) => x.toFixed(2);
/** --expose-gc (npm run bench:cpu-ab passes it): a full GC before each window, and the heap count. */
const gc = (globalThis as { gc?: () => void }).gc;
/** Requests in the heap window: few enough that their garbage fits in the young generation. */
const HEAP_WINDOW = 2000;

async function main(): Promise<void> {
  const specs = [build(`A ${aDir}`, aDir), build(`B ${bDir}`, bDir!)];
  if (args.includes('--floor')) specs.push(rawSocket);
  const server = await startServer();
  console.log(`Node ${process.version}, GET ${path}, ${rounds} rounds of ${ms} ms per client and C`);
  try {
    for (const c of concurrency) {
      const runners: Runner[] = [];
      for (const s of specs) runners.push(await s.create(server.origin, c));
      const us: number[][] = specs.map(() => []);
      const userUs: number[][] = specs.map(() => []);
      const serverUs: number[][] = specs.map(() => []);
      const heap: number[][] = specs.map(() => []);
      for (let r = 0; r < rounds; r++) {
        // Alternating order: whichever runs second in a round ran first in the one before.
        const order = specs.map((_, i) => i);
        if (r % 2) order.reverse();
        for (const i of order) {
          await run(runners[i]!, c, ms / 4); // warm-up: connections open, the JIT has seen the path
          gc?.();
          const s0 = await server.stats();
          const { n, cpuUs, userUs: u } = await run(runners[i]!, c, ms);
          const s1 = await server.stats();
          us[i]!.push(cpuUs / n);
          userUs[i]!.push(u / n);
          serverUs[i]!.push((s1.cpuMicros! - s0.cpuMicros!) / (s1.requests - s0.requests));
          if (gc !== undefined) {
            // Heap bytes per request: a count that other processes cannot disturb. With a young
            // generation larger than the window allocates (--min-semi-space-size), no scavenge runs
            // inside it, and the growth of the used heap is what the requests allocated.
            gc();
            const h0 = getHeapStatistics().used_heap_size;
            const { n: m } = await run(runners[i]!, c, 10_000, HEAP_WINDOW);
            heap[i]!.push((getHeapStatistics().used_heap_size - h0) / m);
          }
        }
      }
      for (const r of runners) await r.close();
      console.log(`\nC=${c}: client CPU µs/request, user + system (median; every round)`);
      specs.forEach((s, i) => {
        console.log(
          `  ${fmt(median(us[i]!)).padStart(7)}  [${us[i]!.map(fmt).join(' ')}]  user ${fmt(median(userUs[i]!))}` +
            `  server ${fmt(median(serverUs[i]!))}  heap B/req ${heap[i]!.length ? median(heap[i]!).toFixed(0) : '-'}` +
            `  ${s.name}`,
        );
      });
      // System time is the noisier half on a shared machine (the kernel's work for other processes'
      // packets is charged to whoever it interrupts): both are compared.
      for (const [label, xs] of [
        ['user + system', us],
        ['user', userUs],
      ] as const) {
        const diffs = xs[1]!.map((b, r) => b - xs[0]![r]!);
        console.log(
          `  B - A per round, ${label}: median ${fmt(median(diffs))} µs (${fmt((median(diffs) / median(xs[1]!)) * 100)} % of B), ` +
            `range ${fmt(Math.min(...diffs))} .. ${fmt(Math.max(...diffs))}, ` +
            `B above A in ${diffs.filter((d) => d > 0).length} of ${diffs.length} rounds`,
        );
      }
    }
  } finally {
    await server.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
