/**
 * What every panel shares: the clients' names, the shape of a panel's result (what the terminal and
 * `--json` show), the live progress line, and small statistics.
 */
import { type Table, textTable } from '../bench/report.js';

export type { Table };

/** The three clients every panel compares, in the order the tables show them. */
export const CLIENTS = ['node:http', 'undici', 'warmpool'] as const;
export type ClientName = (typeof CLIENTS)[number];

/** One line of the summary table: one measure of a panel, per client. */
export interface SummaryLine {
  measure: string;
  values: Record<ClientName, number | string>;
}

export interface PanelResult {
  /** Stable, for machines: 'new-client', 'bursts', 'nagle', 'freeze'. */
  id: string;
  title: string;
  /** What the servers do to make the failure happen. */
  setup: string;
  /** One sentence with the numbers that matter. */
  headline: string;
  /** The panel's own table, printed under it. */
  table: Table;
  summary: SummaryLine[];
  /** The measurements per client, for `--json` (and the demo's test). */
  data: Record<string, unknown>;
}

/**
 * The live progress line: redrawn in place on a terminal, silent otherwise (a pipe or a file gets the
 * finished output only). clear() before printing anything else.
 */
export class Progress {
  private shown = false;
  constructor(private readonly live: boolean) {}

  update(text: string): void {
    if (!this.live) return;
    // One line, or the next \r would not erase all of it; a terminal of unknown width says 0 columns.
    const columns = process.stdout.columns || 80;
    process.stdout.write(`\r\x1b[2K${text.slice(0, Math.max(columns - 1, 20))}`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    process.stdout.write('\r\x1b[2K');
    this.shown = false;
  }
}

/** Percentile (0..100) by nearest rank; NaN when there is no sample. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Milliseconds as people read them: 0.42, 3.1, 1012. */
export function ms(value: number): string {
  if (Number.isNaN(value)) return '-';
  return value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2);
}

/** A panel's text: title, setup, its table, then the headline. */
export function panelText(n: number, p: PanelResult): string {
  const table = textTable(p.table).replace(/^\n[^\n]*\n/, ''); // its title is the panel's
  return `\n${n}. ${p.title}\n   ${p.setup}\n\n${table}\n\n=> ${p.headline}`;
}

/** The summary table: one line per measure of every panel, a column per client. */
export function summaryTable(panels: readonly PanelResult[]): Table {
  const rows: (string | number)[][] = [];
  panels.forEach((p, i) => {
    for (const line of p.summary) {
      rows.push([`${i + 1}. ${p.id}`, line.measure, ...CLIENTS.map((c) => line.values[c])]);
    }
  });
  // node:https in panel 1: same module family, one column.
  return { title: 'Summary', columns: ['panel', 'measure', 'node:http(s)', 'undici', 'warmpool'], rows };
}

/** Milliseconds rounded as the tables show them: `--json` keeps the figure the screen shows. */
export function round(value: number): number {
  return Number.isNaN(value) ? value : Number(ms(value));
}
