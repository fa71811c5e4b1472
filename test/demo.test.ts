/**
 * The demo (`npm start`, build/demo/demo.js) run as a user runs it: it completes, every panel ran and
 * reported all three clients, and it shows what each panel's server setup guarantees (never a timing
 * figure: the latencies vary with the machine, the counts do not).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DEMO = fileURLToPath(new URL('../demo/demo.js', import.meta.url));
/**
 * CI runs the suite on three Nodes and the demo once, on the first (.ci/run sets this for the
 * others): the demo takes its ~15 s of servers and clients, and what it shows does not depend on the
 * Node it runs on. Locally it always runs.
 */
const skipDemo =
  process.env.WARMPOOL_SKIP_DEMO === '1' ? 'the demo runs once per CI run, on the first Node' : false;

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

type PerClient<T> = Record<'node:http' | 'undici' | 'warmpool', T>;

interface DemoOutput {
  meta: { node: string; durationMs: number };
  panels: Array<{
    id: string;
    title: string;
    setup: string;
    headline: string;
    table: { columns: string[]; rows: unknown[][] };
    summary: Array<{ measure: string; values: PerClient<number | string> }>;
    data: Record<string, unknown>;
  }>;
  summary: { columns: string[]; rows: unknown[][] };
}

test(
  'npm start -- --json: four panels, each with the three clients; warmpool bounded and without failure where the setup makes the others fail',
  {
    timeout: 120_000,
    skip: skipDemo,
  },
  async () => {
    const { code, stdout, stderr } = await runDemo(['--json']);
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout) as DemoOutput;
    assert.deepEqual(
      out.panels.map((p) => p.id),
      ['new-client', 'bursts', 'nagle', 'freeze'],
    );
    for (const p of out.panels) {
      assert.ok(p.title && p.setup && p.headline, `${p.id}: title, setup and headline`);
      assert.equal(p.table.rows.length, 3, `${p.id}: a row per client`);
      for (const line of p.summary)
        assert.deepEqual(Object.keys(line.values), ['node:http', 'undici', 'warmpool']);
    }
    assert.equal(
      out.summary.rows.length,
      out.panels.reduce((n, p) => n + p.summary.length, 0),
    );
    const [newClient, bursts, nagle, freeze] = out.panels.map((p) => p.data) as Array<Record<string, never>>;

    // 1. A client per operation: a new https.Agent or undici Pool has no connection to reuse, so each
    // operation is a TLS handshake; warmpool's Clients share the global Agent: one handshake in all.
    const operations = newClient!.operations as number;
    assert.deepEqual(newClient!.handshakes, { 'node:http': operations, undici: operations, warmpool: 1 });
    // Two streams per operation with a limit of two per connection: warmpool needs one session, and may
    // open a second while the first one's ALPN is not known yet; a client per operation opens at least one each.
    const sessions = newClient!.sessions as PerClient<number>;
    assert.ok(sessions.warmpool >= 1 && sessions.warmpool <= 2, `warmpool opened ${sessions.warmpool}`);
    const streamOps = newClient!.streamOperations as number;
    assert.ok(sessions.undici >= streamOps && sessions['node:http'] === 2 * streamOps);

    // 2. Bursts through a client per request: one connection per request for the others; warmpool's
    // shared pool opens at most one burst's worth, and nothing fails.
    const burstClients = bursts!.clients as PerClient<{ connections: number; failed: number }>;
    const requests = bursts!.requests as number;
    assert.equal(burstClients['node:http'].connections, requests);
    assert.equal(burstClients.undici.connections, requests);
    assert.ok(burstClients.warmpool.connections <= (bursts!.burst as number));
    assert.equal(burstClients.warmpool.failed, 0);

    // 3. The probe ran and gave a verdict (its value depends on the kernel's delayed ACK).
    const probe = nagle!.probe as { verdict: string; explanation: string };
    assert.ok(['ok', 'nagle-delayed-ack', 'keep-alive-slower', 'not-reusable'].includes(probe.verdict));
    assert.ok(probe.explanation.length > 0);

    // 4. The freeze: the others write to connections the server closed while the loop was blocked;
    // warmpool none. How many of a client's requests land on a closed connection depends on what its
    // socket had read when the burst started (undici failed 0 to 4 of 20 in CI runs, node:http 4), so
    // only this is guaranteed: the failure was reproduced, and warmpool had none.
    const frozen = freeze!.clients as PerClient<{ failed: number }>;
    assert.equal(frozen.warmpool.failed, 0);
    assert.ok(
      frozen['node:http'].failed + frozen.undici.failed > 0,
      'the other clients reused connections the server had closed',
    );
  },
);

test(
  'npm start without a terminal: plain text (no progress line), the four panels and the summary',
  {
    timeout: 120_000,
    skip: skipDemo,
  },
  async () => {
    const { code, stdout, stderr } = await runDemo([]);
    assert.equal(code, 0, stderr);
    assert.ok(!stdout.includes('\r') && !stdout.includes('\x1b['), 'no terminal control in a pipe');
    for (const n of [1, 2, 3, 4]) assert.match(stdout, new RegExp(`^${n}\\. `, 'm'));
    assert.match(stdout, /^Summary$/m);
  },
);

test('npm start -- --nope: the usage and exit code 2, before any server starts', async () => {
  const { code, stderr } = await runDemo(['--nope']);
  assert.equal(code, 2);
  assert.match(stderr, /unknown option --nope/);
});
