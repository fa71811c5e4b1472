// `npm run bench:profile -- <client> <path> <C> [--h2] [--h2-server=node] [--seconds=N] [--functions=N]`:
// where one client's time goes in one cell of the bench, per request. The evidence behind a target that
// is not met: compare a client's breakdown with the floor's (`floor`) in the same cell. --h2-server=node
// profiles against the node:http2 server instead of the canned one.
//
//   clients: warmpool | undici | floor; for HTTP/1.1 also fetch (undici's) | node-fetch (Node's own) |
//            warmpool-fetch | fetch-on-warmpool (Node's fetch on WarmpoolDispatcher) | node-http;
//            for HTTP/2 also
//            floor-kept (the floor keeping each body as one buffer)
//   e.g.     npm run bench:profile -- warmpool /64k 64
//            npm run bench:profile -- floor /12 1 --h2
//
// It runs the client against the bench server (its own process) for N seconds (default 3) after a
// warm-up, under V8's sampling profiler (node:inspector, in process), and prints:
// - req/s, the main thread's busy share (event-loop utilisation) and CPU µs per request (all threads);
// - self time per request, grouped: warmpool's modules one by one, node's internals by area
//   (http2/core, streams, events, ...), the garbage collector, and "(idle)": the main thread waiting
//   in epoll, i.e. on the server and the kernel. At C=1 (idle) is the round trip nobody's client code
//   can shorten;
// - with --functions=N, the N functions with the most self time (a native one with its caller).
// The profiler adds its own overhead (about 10-30 % here): compare breakdowns with each other, never
// with the bench's req/s.
import { Session } from 'node:inspector/promises';
import { exitUnlessFlagsValid } from './cli-flags.js';
import { type ClientSpec, nodeHttp, rawSocket, undiciFetchSpec, undiciPool } from './clients.js';
import { startH2Server, startServer } from './common.js';
import { nodeFetch, nodeFetchOnWarmpool, warmpoolFetch } from './fetch-clients.js';
import { rawHttp2, rawHttp2KeepingBody, undiciH2Pool } from './h2-clients.js';
import { undiciDir, undiciVersion } from './undici.js';
import { warmpoolClient, warmpoolH2Client } from './warmpool.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const H1: Record<string, ClientSpec> = {
  warmpool: warmpoolClient,
  undici: undiciPool,
  fetch: undiciFetchSpec,
  'node-fetch': nodeFetch,
  'warmpool-fetch': warmpoolFetch,
  'fetch-on-warmpool': nodeFetchOnWarmpool,
  'node-http': nodeHttp,
  floor: rawSocket,
};
const H2: Record<string, ClientSpec> = {
  warmpool: warmpoolH2Client,
  undici: undiciH2Pool,
  floor: rawHttp2,
  'floor-kept': rawHttp2KeepingBody,
};

/** Which bucket a sampled function's self time goes to. */
function groupOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  const src = url.indexOf('/build/src/');
  if (src !== -1) return `warmpool ${url.slice(src + '/build/src/'.length).replace(/\.js$/, '')}`;
  if (url.includes(undiciDir)) return 'undici';
  if (url.startsWith('node:')) {
    const parts = url
      .slice('node:'.length)
      .replace(/^internal\//, '')
      .split('/');
    return `node ${parts.slice(0, 2).join('/')}`;
  }
  if (url.includes('/build/bench/')) return 'bench harness';
  if (functionName.startsWith('(')) return functionName; // (idle), (garbage collector), (program)
  return url === '' ? 'native' : 'other';
}

function breakdown(profile: Profile, requests: number): Array<[string, number]> {
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const groups = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id);
    if (us === undefined) continue;
    const g = groupOf(node.callFrame);
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  return [...groups].map(([g, us]): [string, number] => [g, us / requests]).sort((a, b) => b[1] - a[1]);
}

/** A sampled function as `name (where:line)`; a native one (no url) also names its caller. */
function frameLabel(node: ProfileNode, parentOf: Map<number, ProfileNode>): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') {
    const caller = parentOf.get(node.id);
    return caller === undefined ? name : `${name} <- ${frameLabel(caller, parentOf)}`;
  }
  const short = url.replace(/^.*\/build\//, '').replace(/^node:(internal\/)?/, 'node:');
  return `${name} (${short}:${lineNumber + 1})`;
}

/** The `limit` functions with the most self time per request (`--functions=N`). */
function topFunctions(profile: Profile, requests: number, limit: number): Array<[string, number]> {
  const parentOf = new Map<number, ProfileNode>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  for (const node of profile.nodes) for (const c of node.children ?? []) parentOf.set(c, node);
  const selfUs = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === '(idle)') continue;
    const label = frameLabel(node, parentOf);
    selfUs.set(label, (selfUs.get(label) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  return [...selfUs]
    .map(([f, us]): [string, number] => [f, us / requests])
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit);
}

function usage(): string {
  return [
    'usage: npm run bench:profile -- <client> </12|/64k> <C> [--h2] [--h2-server=node|canned] [--seconds=N] [--functions=N]',
    `  clients, HTTP/1.1: ${Object.keys(H1).join(' | ')}`,
    `  clients, HTTP/2 (--h2): ${Object.keys(H2).join(' | ')}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  exitUnlessFlagsValid(
    args,
    {
      exact: ['--h2'],
      withValue: ['--h2-server', '--seconds', '--functions'],
      choices: { '--h2-server': ['node', 'canned'] },
      positional: true,
    },
    usage(),
  );
  const positional = args.filter((a) => !a.startsWith('-'));
  const h2 = args.includes('--h2');
  const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.slice('--seconds='.length) ?? 3);
  const functions = Number(args.find((a) => a.startsWith('--functions='))?.slice('--functions='.length) ?? 0);
  const [name = 'warmpool', path = '/12', cArg = '1'] = positional;
  const c = Number(cArg);
  const spec = (h2 ? H2 : H1)[name];
  if (spec === undefined || !(c >= 1) || !(seconds > 0) || !(functions >= 0)) {
    console.error(usage());
    process.exit(2);
  }

  const server = h2
    ? await startH2Server(args.includes('--h2-server=node') ? 'node' : 'canned')
    : await startServer();
  const runner = await spec.create(server.origin, c);
  const run = async (ms: number): Promise<number> => {
    let n = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: c }, async (_, w) => {
        while (performance.now() < end) {
          await runner.request(path, w);
          n++;
        }
      }),
    );
    return n;
  };
  await run(500); // warm-up: connections open, the JIT has seen the path

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const requests = await run(seconds * 1000);
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
  session.disconnect();
  await runner.close();
  await server.close();

  console.log(
    `${h2 ? 'h2 ' : ''}${spec.name}, GET ${path}, C=${c}, ${seconds} s under the profiler (Node ${process.version}, undici ${undiciVersion})`,
  );
  console.log(
    `  ${Math.round((requests / elapsed) * 1000)} req/s; main thread busy ${(elu * 100).toFixed(0)} %; ` +
      `CPU per request ${((cpu.user + cpu.system) / requests).toFixed(1)} µs ` +
      `(user ${(cpu.user / requests).toFixed(1)}, system ${(cpu.system / requests).toFixed(1)}; all threads)`,
  );
  console.log('  main thread, self time per request:');
  for (const [group, us] of breakdown(profile, requests).slice(0, 25)) {
    console.log(`  ${us.toFixed(1).padStart(8)} µs  ${group}`);
  }
  if (functions > 0) {
    console.log('  main thread, the functions with the most self time per request:');
    for (const [fn, us] of topFunctions(profile, requests, functions)) {
      console.log(`  ${us.toFixed(2).padStart(8)} µs  ${fn}`);
    }
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
