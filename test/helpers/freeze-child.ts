/**
 * freeze-child: the client side of test/freeze.test.ts, run as its own process so the test can
 * SIGSTOP it. Usage: node freeze-child.js <origin> <busy|timer>
 *
 * It warms 8 connections, prints {"type":"ready"}, then watches the wall clock: `busy` in a
 * synchronous loop (so the process is most likely stopped, and resumed, in the middle of JavaScript,
 * before its event loop can poll a socket), `timer` from a 20 ms interval. When the clock jumps by more
 * than a second (the process was stopped), it sends 100 GETs at once and prints {"type":"done", ...}.
 * stdout is a pipe, written synchronously on Linux: each line is out before the next statement runs.
 */
import { Agent, Client, type WarmpoolError } from '../../src/index.js';

const out = (msg: object) => process.stdout.write(`${JSON.stringify(msg)}\n`);

async function run(origin: string, mode: 'busy' | 'timer'): Promise<void> {
  const agent = new Agent();
  const client = new Client({ agent, headersTimeout: 5000 });

  const get = async (path: string, id: string) => {
    const res = await client.request(`${origin}${path}`, { headers: { 'x-request-id': id } });
    await res.body.text();
    return res;
  };

  const fireAll = async (gapMs: number): Promise<void> => {
    const all: Promise<Awaited<ReturnType<typeof get>>>[] = [];
    for (let i = 0; i < 100; i++) all.push(get(`/after/${i}`, `after-${i}`));
    const settled = await Promise.allSettled(all);
    const failed = settled
      .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
      .map((s) => (s.reason as WarmpoolError).code ?? String(s.reason));
    const ok = settled.filter((s) => s.status === 'fulfilled').length;
    const stats = agent.originStats(origin);
    out({
      type: 'done',
      ok,
      failed,
      gapMs,
      retried: stats?.retried,
      closed: stats?.closed,
      created: stats?.created,
    });
    await agent.destroy();
  };

  const warm = await Promise.all(Array.from({ length: 8 }, (_, i) => get(`/warm/${i}`, `warm-${i}`)));
  // Read the clock before saying ready: the parent stops us as soon as it reads the line, possibly
  // before the next statement runs.
  let last = Date.now();
  const deadline = last + 10_000;
  out({ type: 'ready', connections: new Set(warm.map((r) => r.connection.id)).size });

  if (mode === 'busy') {
    let gap = 0;
    while (Date.now() < deadline) {
      const now = Date.now();
      if (now - last > 1000) {
        gap = now - last;
        break;
      }
      last = now;
    }
    await fireAll(gap);
  } else {
    const timer = setInterval(() => {
      const now = Date.now();
      if (now - last > 1000 || now > deadline) {
        clearInterval(timer);
        void fireAll(now - last);
      }
      last = now;
    }, 20);
  }
}

const [origin, mode] = process.argv.slice(2);
// Without arguments (the test runner loads every file under test/ as a test file): nothing to do.
if (origin !== undefined && (mode === 'busy' || mode === 'timer')) await run(origin, mode);
