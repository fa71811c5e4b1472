// `npm run bench:write-batching -- [--think=µs] [--c=N] [--rounds=N]`: the experiment behind
// src/h1/write-turn.ts, with no HTTP client in it. A raw-socket client keeps C requests in flight
// against the bench server (its own process) and spends `think` µs of CPU per response (standing for
// a client's JavaScript: fetch's objects, an SDK's middleware), then writes the next request:
//   now    each request written as soon as it is made (what every client does);
//   batch  all requests of a loop turn queued and written back to back in its check phase;
//   first  the first of a turn written at once, the rest as in batch;
//   groups the first at once, the rest in groups of four or at the end of the turn (what warmpool does).
// It prints, per mode, the median req/s and the client's kernel (system) CPU per request: on loopback
// the writer's syscall does the receiver's work too, and wakes it when it sleeps. The more a client
// thinks between writes, the more the server sleeps in between, and the more each write costs, unless
// the writes of one turn go out together.
import net from 'node:net';
import { exitUnlessFlagsValid } from './cli-flags.js';
import { blockFor, startServer } from './common.js';

const USAGE =
  'usage: npm run bench:write-batching -- [--think=µs (default 50)] [--c=N (64)] [--rounds=N (5)]';
const args = process.argv.slice(2);
exitUnlessFlagsValid(
  args,
  { exact: [], withValue: ['--think', '--c', '--rounds'], positional: false },
  USAGE,
);
const flag = (name: string, fallback: number): number =>
  Number(args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const think = flag('think', 50);
const connections = flag('c', 64);
const rounds = flag('rounds', 5);
if (
  !(think >= 0) ||
  !Number.isInteger(connections) ||
  connections < 1 ||
  !Number.isInteger(rounds) ||
  rounds < 1
) {
  console.error(USAGE);
  process.exit(2);
}
const ROUND_MS = 1500;
const HEAD = 'GET /12 HTTP/1.1\r\nhost: bench\r\n\r\n';
type Mode = 'now' | 'batch' | 'first' | 'groups';

/** One round of one mode: req/s and the process's system CPU µs per request. */
async function round(port: number, mode: Mode): Promise<{ rps: number; sysUs: number }> {
  const sockets = await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  const queued: net.Socket[] = [];
  let turnOpen = false;
  const writeQueued = (): void => {
    for (const s of queued) s.write(HEAD, 'latin1');
    queued.length = 0;
  };
  const flush = (): void => {
    turnOpen = false;
    writeQueued();
  };
  const send = (s: net.Socket): void => {
    if (mode === 'now') {
      s.write(HEAD, 'latin1');
      return;
    }
    if (!turnOpen) {
      turnOpen = true;
      setImmediate(flush);
      if (mode !== 'batch') {
        s.write(HEAD, 'latin1');
        return;
      }
    }
    queued.push(s);
    if (mode === 'groups' && queued.length === 4) writeQueued();
  };
  let responses = 0;
  let stopping = false;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((done) => {
    let live = connections;
    for (const s of sockets) {
      // The canned 12-byte response arrives in one read; one 'data' is one response.
      s.on('data', () => {
        responses++;
        blockFor(think / 1000);
        if (!stopping) send(s);
        else if (--live === 0) done();
      });
      send(s);
    }
    setTimeout(() => {
      stopping = true;
    }, ROUND_MS);
  });
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const s of sockets) s.destroy();
  return { rps: (responses / elapsed) * 1000, sysUs: cpu.system / responses };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const server = await startServer();
const port = Number(new URL(server.origin).port);
const modes: Mode[] = ['now', 'batch', 'first', 'groups'];
const results = new Map<Mode, Array<{ rps: number; sysUs: number }>>(modes.map((m) => [m, []]));
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? modes : [...modes].reverse())
    results.get(mode)!.push(await round(port, mode));
}
await server.close();
console.log(
  `Node ${process.version}, C=${connections}, ${think} µs of CPU per response, ${rounds} rounds of ${ROUND_MS} ms`,
);
for (const mode of modes) {
  const rs = results.get(mode)!;
  const rps = rs.map((x) => x.rps);
  console.log(
    `${mode.padEnd(6)} ${Math.round(median(rps)).toString().padStart(7)} req/s (${Math.round(Math.min(...rps))}-${Math.round(Math.max(...rps))}), ` +
      `system CPU ${median(rs.map((x) => x.sysUs)).toFixed(1)} µs per request`,
  );
}
process.exit(0);
