/**
 * warmpool demo (`npm start`): the four failures warmpool exists for, each made to happen by a local
 * server's setup and measured with node:http(s), undici and warmpool, then one summary table.
 *
 *   1. a client per operation over TLS + HTTP/2 (handshakes)      demo/panel-new-client.ts
 *   2. a session per request under bursts (dropped SYNs)          demo/panel-bursts.ts
 *   3. keep-alive slower than close (Nagle + delayed ACK)         demo/panel-nagle.ts
 *   4. a freeze past the server's idle timeout (stale sockets)    demo/panel-freeze.ts
 *
 * Loopback only; every server is started here and stopped at the end. On a terminal a progress line
 * shows what runs; `--json` prints one JSON document instead of the text.
 *
 * Run: npm start [-- --json]
 */
import { performance } from 'node:perf_hooks';
import { exitUnlessFlagsValid } from '../bench/cli-flags.js';
import { textTable } from '../bench/report.js';
import { getGlobalAgent } from '../src/index.js';
import { type PanelResult, Progress, panelText, summaryTable } from './output.js';
import { burstsPanel } from './panel-bursts.js';
import { freezePanel } from './panel-freeze.js';
import { naglePanel } from './panel-nagle.js';
import { newClientPanel } from './panel-new-client.js';

const USAGE = `usage: npm start [-- --json]

The four failures warmpool exists for, reproduced against local servers with node:http(s), undici
and warmpool (about 15 s).
  --json    one JSON document on stdout (no progress line, no text)`;

/** No step may hang the demo: past this, it stops with an error. */
const LIMIT_MS = 60_000;

const PANELS: Array<(progress: Progress) => Promise<PanelResult>> = [
  newClientPanel,
  burstsPanel,
  naglePanel,
  freezePanel,
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  exitUnlessFlagsValid(args, { exact: ['--json'], withValue: [], positional: false }, USAGE);
  const json = args.includes('--json');
  const progress = new Progress(!json && process.stdout.isTTY === true);
  const say = (text: string) => {
    if (json) return;
    progress.clear();
    console.log(text);
  };
  const watchdog = setTimeout(() => {
    progress.clear();
    console.error(`demo: not finished after ${LIMIT_MS / 1000} s; stopping`);
    process.exit(1);
  }, LIMIT_MS);
  watchdog.unref();

  say('warmpool demo: four ways HTTP clients fail, each reproduced by a local server (loopback only).');
  const start = performance.now();
  const panels: PanelResult[] = [];
  for (const [i, run] of PANELS.entries()) {
    const t0 = performance.now();
    const result = await run(progress);
    result.data.durationMs = Math.round(performance.now() - t0);
    panels.push(result);
    say(panelText(i + 1, result));
  }
  await getGlobalAgent().close();
  const summary = summaryTable(panels);
  const durationMs = Math.round(performance.now() - start);
  if (json) {
    const meta = { node: process.version, platform: process.platform, durationMs };
    process.stdout.write(`${JSON.stringify({ meta, panels, summary }, null, 2)}\n`);
  } else {
    say(textTable(summary));
    say(`\n(${(durationMs / 1000).toFixed(1)} s; every number above was measured in this run)`);
  }
}

main().then(
  // Pools made per request and dropped (panels 1 and 2, as such code does) may still hold sockets.
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
