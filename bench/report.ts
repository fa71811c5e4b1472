// Statistics and output: latency samples and percentiles, medians over rounds, and tables printed to
// the terminal and written as JSON and markdown to bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchChartSvg } from './chart-svg.js';

/**
 * Latency samples in milliseconds. A growable Float64Array: pushing a number allocates nothing (a
 * plain array of doubles would box or reallocate under us), and a typed array sorts numerically.
 */
export class Samples {
  private data = new Float64Array(1024);
  length = 0;

  push(ms: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = ms;
  }

  /** Percentiles (0..100) by the nearest-rank method on a sorted copy; NaN when empty. */
  percentiles(...ps: number[]): number[] {
    const sorted = this.data.slice(0, this.length).sort();
    return ps.map((p) =>
      sorted.length === 0
        ? Number.NaN
        : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!,
    );
  }
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A table of results: what the terminal, the markdown and the JSON all show. */
export interface Table {
  title: string;
  /** What the numbers mean and how they were taken: printed under the title. */
  note?: string;
  columns: string[];
  rows: (string | number)[][];
}

function cell(v: string | number): string {
  if (typeof v === 'string') return v;
  if (Number.isNaN(v)) return '-';
  if (Number.isInteger(v) || Math.abs(v) < 0.0005) return String(Math.round(v)); // no "-0.000"
  const a = Math.abs(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

const numeric = (t: Table, i: number) => t.rows.some((r) => typeof r[i] === 'number');

export function textTable(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(cell))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (numeric(t, i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const out = [`\n${t.title}`];
  if (t.note) out.push(t.note);
  out.push(line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line));
  return out.join('\n');
}

export function markdownTable(t: Table): string {
  const out = [`## ${t.title}`, ''];
  if (t.note) out.push(t.note, '');
  out.push(`| ${t.columns.join(' | ')} |`);
  out.push(`|${t.columns.map((_, i) => (numeric(t, i) ? ' ---: ' : ' --- ')).join('|')}|`);
  for (const r of t.rows) out.push(`| ${r.map(cell).join(' | ')} |`);
  return out.join('\n');
}

export interface RunMeta {
  date: string;
  node: string;
  /** The undici version the run compared with (bench/undici.ts). */
  undici?: string;
  cpu: string;
  cores: number;
  quick: boolean;
  /** 1-minute load average when the run started. */
  loadavg: number;
  /** Share of all CPUs' time that other processes used during the run (Linux; see machine-load.ts). */
  othersCpu?: number;
  /** Share of all CPUs' time the hypervisor stole during the run (Linux). */
  stealCpu?: number;
  [k: string]: unknown;
}

export function machineMeta(): Pick<RunMeta, 'node' | 'cpu' | 'cores' | 'loadavg'> {
  const cores = os.cpus().length;
  return { node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', cores, loadavg: os.loadavg()[0]! };
}

/** A warning when other processes competed for the cores: the numbers are then mostly noise. */
export function loadWarning(
  meta: Pick<RunMeta, 'cores' | 'loadavg' | 'othersCpu' | 'stealCpu'>,
): string | undefined {
  if (meta.othersCpu !== undefined) {
    // Measured over the run: 10 % of the machine is most of a core's worth of noise on two cores.
    const steal = meta.stealCpu ?? 0;
    if (meta.othersCpu < 0.1 && steal < 0.1) return undefined;
    return (
      `warning: during the run other processes used ${pct(meta.othersCpu)} of the CPU time of the ` +
      `${meta.cores} cores, and the hypervisor stole ${pct(steal)}: they competed with the bench.`
    );
  }
  if (meta.loadavg <= meta.cores * 0.5) return undefined;
  return `warning: load average ${meta.loadavg.toFixed(1)} on ${meta.cores} cores: other processes compete with the bench.`;
}

/** What else the machine did during the run, for the report's header (when it was measured). */
export function machineLoadLine(meta: Pick<RunMeta, 'othersCpu' | 'stealCpu'>): string | undefined {
  if (meta.othersCpu === undefined) return undefined;
  return `During the run other processes used ${pct(meta.othersCpu)} of the CPU time, and the hypervisor stole ${pct(meta.stealCpu ?? 0)}.`;
}

const pct = (share: number) => `${(share * 100).toFixed(1)} %`;

/** Writes bench/results/<timestamp>.json, .md and .svg (the folder is created here; git ignores it). */
export function writeResults(meta: RunMeta, tables: Table[]): { json: string; md: string; svg: string } {
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url)); // from build/bench/
  mkdirSync(dir, { recursive: true });
  const stamp = meta.date.replace(/[:.]/g, '-');
  const json = `${dir}${stamp}.json`;
  const md = `${dir}${stamp}.md`;
  const svg = `${dir}${stamp}.svg`;
  // Rows as objects keyed by column name, for whoever reads the JSON (NaN becomes null).
  const data = tables.map((t) => ({
    ...t,
    rows: t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c, r[i]]))),
  }));
  const text = JSON.stringify({ meta, tables: data }, null, 2);
  writeFileSync(json, `${text}\n`);
  // The chart from the JSON as written (NaN already null), exactly as chart.js draws it from the file.
  writeFileSync(svg, benchChartSvg(JSON.parse(text)));
  const head = [
    `# warmpool bench, ${meta.date}`,
    '',
    `Node ${meta.node}, undici ${meta.undici ?? '?'}, ${meta.cpu} (${meta.cores} cores)${meta.quick ? ', --quick' : ''}.`,
  ];
  if (meta.h2Server === 'node')
    head.push('', 'HTTP/2 rows against the node:http2 server (`--h2-server=node`).');
  const load = machineLoadLine(meta);
  if (load) head.push('', load);
  const warning = loadWarning(meta);
  if (warning) head.push('', `**${warning}**`);
  writeFileSync(md, `${[...head, ...tables.map((t) => `\n${markdownTable(t)}`)].join('\n')}\n`);
  return { json, md, svg };
}
