// `npm run bench`: warmpool side by side with undici, node:http and a raw-socket floor, in one run; and
// over HTTP/2 (TLS, bench/h2-server.ts) with undici's allowH2 Pool and a raw node:http2 floor. Its
// options are in USAGE below (`npm run bench -- --help` prints them).
import { exitUnlessFlagsValid } from './cli-flags.js';
import { type ClientSpec, type Runner, nodeHttp, rawSocket, undiciFetchSpec, undiciPool } from './clients.js';
import { type H2ServerKind, type ServerHandle, startH2Server, startServer, withTimeout } from './common.js';
import { nodeFetch, nodeFetchOnWarmpool, warmpoolFetch } from './fetch-clients.js';
import { rawHttp2, rawHttp2KeepingBody, undiciH2Pool } from './h2-clients.js';
import { cpuSnapshot, machineShare } from './machine-load.js';
import { roundOrder } from './order.js';
import {
  type RunMeta,
  Samples,
  type Table,
  loadWarning,
  machineLoadLine,
  machineMeta,
  median,
  textTable,
  writeResults,
} from './report.js';
import { type Scenario, scenarios } from './scenarios/index.js';
import { fetchTargetsTable, targetsTable } from './targets.js';
import { undiciVersion } from './undici.js';
import {
  comparedClients,
  loadWarmpool,
  warmpoolClient,
  warmpoolH2Client,
  warmpoolRequest,
} from './warmpool.js';

const USAGE = `usage: npm run bench -- [--quick] [--only=<text>]... [--no-scenarios] [--h2-server=node|canned]
                       [--compare=<dir>]

  --quick        the whole run in under a minute (short runs, 2 rounds)
  --only=text    only rows whose "<client> <path> c=<C>/" label (e.g. "undici fetch /64k c=16/"; HTTP/2
                 rows: "h2 <client> <path> c=<C>/"), or scenarios whose name, contain text: --only=warmpool,
                 --only=/64k, --only=c=1/, --only=h2, --only=Nagle, --only=scenario (all scenarios, no
                 matrix). The ratio needs the undici Pool row (HTTP/2: the undici Pool allowH2 row).
                 Repeated, a row must contain every text: --only=h2 --only="/12 c=1/" is one cell, all
                 of its clients.
  --no-scenarios the throughput matrix only
  --h2-server=node  the HTTP/2 rows against a node:http2 server (bench/h2-node-server.ts) instead of
                 the canned one (bench/h2-server.ts, the default), which costs less per request
  --compare=dir  also a "warmpool Client B (<dir>)" row per cell: the build in another checkout
                 (its build/src/index.js; run \`npm run compile\` there first), for an A/B of two
                 commits interleaved in one run (git worktree add ../before <commit>)

Numbers from one run on one machine are only comparable with each other: read the ratio column.`;

const args = process.argv.slice(2);
exitUnlessFlagsValid(
  args,
  {
    exact: ['--quick', '--no-scenarios'],
    withValue: ['--only', '--h2-server', '--compare'],
    choices: { '--h2-server': ['node', 'canned'] },
    positional: false,
  },
  USAGE,
);
const quick = args.includes('--quick');
const only = args.filter((a) => a.startsWith('--only=')).map((a) => a.slice('--only='.length));
/** Whether a row's or a scenario's label contains every --only text (true without any). */
const picks = (label: string): boolean => only.every((text) => label.includes(text));
const withScenarios = !args.includes('--no-scenarios');
const h2ServerKind: H2ServerKind = args.includes('--h2-server=node') ? 'node' : 'canned';
const compareDir = args.find((a) => a.startsWith('--compare='))?.slice('--compare='.length);
const compared = compareDir === undefined ? undefined : comparedClients(compareDir);

const config = quick
  ? // A smoke test: 56 s from a fresh clone (compile included) with 250 ms rounds, too close to the
    // minute it must stay under on a slower day.
    { durationMs: 200, warmupMs: 60, rounds: 2 }
  : // Seven short rounds rather than five long ones: on a shared VM a disturbed round is common, and
    // the median of seven is unmoved by up to three of them (the whole matrix takes about 11 minutes).
    { durationMs: 1500, warmupMs: 300, rounds: 7 };
const BODY_PATHS = [
  { path: '/12', label: '12 B' },
  { path: '/64k', label: '64 KiB' },
];
const CONCURRENCY = [1, 16, 64];

/** One protocol's rows: its server, its clients, and the client its ratio column is relative to. */
interface Section {
  /** '' for HTTP/1.1; 'h2' prefixes the body label and the --only key. */
  tag: '' | 'h2';
  server: ServerHandle;
  clients: ClientSpec[];
  baseline: string;
}

// Nothing here may run forever: a hung client must not hang `npm run bench`.
const HANG_MS = 15_000;
const SCENARIO_MS = quick ? 40_000 : 180_000;
const warn = (e: Error) => console.warn(`\n  ${e.message}`);
setTimeout(
  () => {
    console.error('bench: overall time limit reached, giving up');
    process.exit(2);
  },
  quick ? 120_000 : 30 * 60_000,
).unref();

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  firstError?: string;
  /** The server's CPU time per request over the run, µs (see timedLoad). */
  serverUs?: number;
}

/**
 * C workers, each sending requests one after another for `ms`: C requests in flight (HTTP/1.1: on C
 * connections; HTTP/2: as C streams).
 * Latency is measured per request, from the call to the end of its body.
 */
async function load(runner: Runner, path: string, c: number, ms: number): Promise<LoadResult> {
  const lat = new Samples();
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const end = t0 + ms;
  const worker = async (w: number) => {
    while (performance.now() < end) {
      const start = performance.now();
      try {
        await runner.request(path, w);
        lat.push(performance.now() - start);
      } catch (e) {
        errors++;
        firstError ??=
          e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e);
      }
    }
  };
  const workers = Promise.all(Array.from({ length: c }, (_, w) => worker(w)));
  await withTimeout(workers, ms + HANG_MS, 'requests still in flight after the run ended');
  const elapsed = performance.now() - t0;
  const [p50, p99] = lat.percentiles(50, 99);
  return { rps: (lat.length / elapsed) * 1000, p50: p50!, p99: p99!, errors, firstError };
}

/**
 * load(), and what the server spent per request meanwhile: its CPU time over the requests it counted.
 * At C=1 a request's round trip is the client's time plus the server's, so this says how much of
 * every client's time was the server's (the same for all clients: if it is not, read the cell with
 * care).
 */
async function timedLoad(server: ServerHandle, runner: Runner, path: string, c: number): Promise<LoadResult> {
  const before = await server.stats();
  const result = await load(runner, path, c, config.durationMs);
  const after = await server.stats();
  const served = after.requests - before.requests;
  if (served > 0 && after.cpuMicros !== undefined && before.cpuMicros !== undefined) {
    result.serverUs = (after.cpuMicros - before.cpuMicros) / served;
  }
  return result;
}

async function matrix({ tag, server, clients, baseline }: Section): Promise<Table['rows']> {
  const origin = server.origin;
  const rows: Table['rows'] = [];
  const prefix = tag === '' ? '' : `${tag} `;
  for (const { path, label: bodyLabel } of BODY_PATHS) {
    const label = prefix + bodyLabel;
    for (const c of CONCURRENCY) {
      const picked = clients.filter((k) => picks(`${prefix}${k.name} ${path} c=${c}/`));
      if (picked.length === 0) continue;
      process.stdout.write(`body ${label}, c=${c}: `);
      const runners = new Map<ClientSpec, Runner | Error>();
      for (const k of picked) runners.set(k, await k.create(origin, c).catch((e: Error) => e));
      const rounds = new Map<ClientSpec, LoadResult[]>(picked.map((k) => [k, []]));
      const failures = new Map<ClientSpec, string>();

      // Rounds are interleaved: round r runs every client once. Drift over the run (CPU frequency and
      // temperature, other processes, the page cache) then lands on all clients alike instead of on
      // whichever ran last; and the order changes from round to round so that every client runs right
      // after every other equally often (bench/order.ts: what runs just before a client moves its
      // numbers).
      for (let r = 0; r < config.rounds; r++) {
        for (const i of roundOrder(picked.length, r)) {
          const k = picked[i]!;
          const runner = runners.get(k)!;
          if (runner instanceof Error || failures.has(k)) continue;
          try {
            // Warm-up each round: connections are open and the JIT has seen this path before timing.
            await load(runner, path, c, config.warmupMs);
            rounds.get(k)!.push(await timedLoad(server, runner, path, c));
          } catch (e) {
            failures.set(k, (e as Error).message);
          }
        }
        process.stdout.write('.');
      }
      process.stdout.write('\n');
      for (const [k, runner] of runners) {
        if (!(runner instanceof Error))
          await withTimeout(runner.close(), HANG_MS, `${k.name} close()`).catch(warn);
      }

      const rpsOf = (k: ClientSpec) => median(rounds.get(k)!.map((x) => x.rps));
      const base = picked.find((k) => k.name === baseline);
      const baseRps = base ? rpsOf(base) : Number.NaN;
      for (const k of picked) {
        const rs = rounds.get(k)!;
        const runner = runners.get(k)!;
        const failed = runner instanceof Error ? runner.message : failures.get(k);
        const rps = rpsOf(k);
        const all = rs.map((x) => x.rps);
        // Half the range of req/s over rounds, relative to the median: how far to trust the row.
        const spread = rs.length > 1 ? ((Math.max(...all) - Math.min(...all)) / 2 / rps) * 100 : Number.NaN;
        const errors = rs.reduce((n, x) => n + x.errors, 0);
        const note = failed ?? rs.find((x) => x.firstError)?.firstError ?? '';
        rows.push([
          label,
          c,
          k.name,
          rps,
          spread,
          median(rs.map((x) => x.p50)),
          median(rs.map((x) => x.p99)),
          rps / baseRps,
          median(rs.flatMap((x) => (x.serverUs === undefined ? [] : [x.serverUs]))),
          errors,
          note.slice(0, 80),
        ]);
      }
    }
  }
  return rows;
}

function matrixTable(rows: Table['rows']): Table {
  return {
    title:
      'Throughput and latency, GET with C requests in flight: HTTP/1.1 keep-alive on C connections; ' +
      '"h2" rows: HTTP/2 over TLS, C streams (one session per client)',
    note:
      `Median over ${config.rounds} interleaved rounds of ${config.durationMs} ms each (after ${config.warmupMs} ms ` +
      'of warm-up per round); every body fully read. ±% is half the range of req/s over rounds. ' +
      '"server µs/req" is the server process\'s CPU time per request (user + system). ' +
      `"vs undici" is req/s relative to ${undiciPool.name} in the same cell (h2 rows: ${undiciH2Pool.name}), ` +
      `undici ${undiciVersion}.`,
    columns: [
      'body',
      'C',
      'client',
      'req/s',
      '±%',
      'p50 ms',
      'p99 ms',
      'vs undici',
      'server µs/req',
      'errors',
      'note',
    ],
    rows,
  };
}

async function main(): Promise<void> {
  // Taken before the bench loads the machine itself.
  const meta: RunMeta = {
    date: new Date().toISOString(),
    quick,
    ...config,
    h2Server: h2ServerKind,
    ...machineMeta(),
    undici: undiciVersion,
  };
  // Which Node and which undici this run compares: the ratios hold for that pair only.
  console.log(`Node ${meta.node}, undici ${undiciVersion} (bench/undici.ts)`);
  const cpuAtStart = cpuSnapshot();
  const wp = await loadWarmpool();
  if (wp instanceof Error) console.log(`warmpool not available, its rows are skipped: ${wp.message}`);
  const clients: ClientSpec[] = [
    ...(wp instanceof Error ? [] : [warmpoolRequest, warmpoolClient]),
    ...(compared === undefined ? [] : [compared.h1]),
    undiciPool,
    undiciFetchSpec,
    ...(wp instanceof Error ? [] : [warmpoolFetch]),
    nodeFetch,
    ...(wp instanceof Error ? [] : [nodeFetchOnWarmpool]),
    nodeHttp,
    rawSocket,
  ];

  const h2Clients: ClientSpec[] = [
    ...(wp instanceof Error ? [] : [warmpoolH2Client]),
    ...(compared === undefined ? [] : [compared.h2]),
    undiciH2Pool,
    rawHttp2,
    rawHttp2KeepingBody,
  ];

  const tables: Table[] = [];
  const rows: Table['rows'] = [];
  const server = await startServer();
  try {
    rows.push(...(await matrix({ tag: '', server, clients, baseline: undiciPool.name })));
  } finally {
    await server.close();
  }
  const h2Server = await startH2Server(h2ServerKind);
  try {
    rows.push(
      ...(await matrix({
        tag: 'h2',
        server: h2Server,
        clients: h2Clients,
        baseline: undiciH2Pool.name,
      })),
    );
  } finally {
    await h2Server.close();
  }
  if (rows.length > 0) {
    const t = matrixTable(rows);
    tables.push(t);
    console.log(textTable(t));
    for (const targets of [targetsTable(rows), fetchTargetsTable(rows)]) {
      if (targets === undefined) continue;
      tables.push(targets);
      console.log(textTable(targets));
    }
  }

  if (withScenarios) {
    const picked = scenarios.filter((s: Scenario) => picks(s.name));
    for (const s of picked) {
      process.stdout.write(`\n${s.name} ...`);
      const t = await withTimeout(
        s.run({ quick, warmpool: wp instanceof Error ? null : wp }),
        SCENARIO_MS,
        s.name,
      ).catch((e: Error): Table => ({ title: s.name, note: `failed: ${e.stack}`, columns: [], rows: [] }));
      tables.push(t);
      console.log(textTable(t));
    }
  }

  // Every child (servers, scenario processes) has exited and been waited for: its CPU time is ours.
  const cpuAtEnd = cpuSnapshot();
  if (cpuAtStart !== undefined && cpuAtEnd !== undefined) {
    const share = machineShare(cpuAtStart, cpuAtEnd);
    meta.othersCpu = share.others;
    meta.stealCpu = share.steal;
    console.log(`\n${machineLoadLine(meta)}`);
  }
  const warning = loadWarning(meta);
  if (warning) console.log(`\n${warning}`);
  const files = writeResults(meta, tables);
  console.log(`\nwrote ${files.json}\n      ${files.md}\n      ${files.svg}`);
}

main().then(
  () => process.exit(0), // pools that keep sockets open must not keep the bench alive
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
