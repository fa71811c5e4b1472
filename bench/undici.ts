// The undici the bench compares with: the newest one the running Node can run. undici 8 needs Node
// >= 22.19 (its engines field) and is what undici users install there; Node 20 gets undici 7 (the
// `undici` dev dependency, which the tests use too). undici 8 is the dev dependency `undici8`, an npm
// alias (`npm:undici@8.x`). BENCH_UNDICI=7 picks undici 7 on any Node, for a run beside the other.
//
// Chosen once, at startup, before any client is made: every bench client (bench/clients.ts,
// bench/h2-clients.ts, the scenarios) uses `undici` from here, and the results' meta says which.
import { createRequire } from 'node:module';

export type Undici = typeof import('undici');

/** Whether this Node satisfies undici 8's engines (>= 22.19). */
function runsUndici8(version: string): boolean {
  const [major = 0, minor = 0] = version.slice(1).split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 19);
}

const wanted = process.env.BENCH_UNDICI;
if (wanted !== undefined && wanted !== '7' && wanted !== '8') {
  throw new Error(`BENCH_UNDICI must be 7 or 8, not ${JSON.stringify(wanted)}`);
}
if (wanted === '8' && !runsUndici8(process.version)) {
  throw new Error(`BENCH_UNDICI=8: undici 8 needs Node >= 22.19, this is ${process.version}`);
}
const specifier = (wanted ?? (runsUndici8(process.version) ? '8' : '7')) === '8' ? 'undici8' : 'undici';

// undici 8's API is undici 7's for everything the bench calls (Pool, Agent, request, fetch); one type
// serves both.
export const undici: Undici = (await import(specifier)) as Undici;

/** The version of the undici in use, from its package.json (e.g. '8.13.1'). */
export const undiciVersion: string = (
  createRequire(import.meta.url)(`${specifier}/package.json`) as { version: string }
).version;

/** The folder the undici in use is loaded from, for a profile that attributes time to it. */
export const undiciDir = `/node_modules/${specifier}/`;
