// The bench's chart: an SVG drawn from a results file's data (the JSON that writeResults writes, rows as
// objects keyed by column). Two panels over the same cells (body size x C, HTTP/1.1 then h2):
//   1. req/s relative to undici (1.0 is undici's Pool in that cell), a bar per client, the floors
//      (the raw clients with no HTTP logic) in grey, and the cell's target as a dashed line;
//   2. p50 (bar) and p99 (whisker) latency per client, log scale.
// Pure: data in, markup out (bench/chart.ts writes files).
import { el, escapeXml, svgDocument, text } from './svg.js';

export type Cell = string | number | null;

export interface ResultsData {
  meta: { date?: string; node?: string; cpu?: string; cores?: number; quick?: boolean; [k: string]: unknown };
  tables: Array<{ title: string; columns: string[]; rows: Array<Record<string, Cell>> }>;
}

interface Bar {
  client: string;
  vsUndici: number;
  reqPerSec: number;
  p50: number;
  p99: number;
}

interface Group {
  label: string; // "12 B" or "h2 64 KiB"
  c: number;
  bars: Bar[];
  target?: number;
}

const BAR = 9;
const GAP = 16;
const LEFT = 56;
const RIGHT = 16;
const PANEL_H = 200;
const MIN_GROUP = 64;

const isNum = (v: Cell | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** The cells of the throughput table, in its order, with their targets from the targets table. */
export function chartGroups(data: ResultsData): Group[] {
  const main = data.tables.find((t) =>
    ['client', 'vs undici', 'p50 ms', 'p99 ms'].every((c) => t.columns.includes(c)),
  );
  if (main === undefined) return [];
  const targets = data.tables.find((t) => t.columns.includes('target') && t.columns.includes('C'));
  const groups = new Map<string, Group>();
  for (const row of main.rows) {
    const vs = row['vs undici'];
    if (!isNum(vs)) continue;
    const label = String(row.body);
    const c = Number(row.C);
    const key = `${label}\u0000${c}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { label, c, bars: [] };
      const t = targets?.rows.find((r) => String(r.body) === label && Number(r.C) === c)?.target;
      if (isNum(t)) g.target = t;
      groups.set(key, g);
    }
    g.bars.push({
      client: String(row.client),
      vsUndici: vs,
      reqPerSec: Number(row['req/s']),
      p50: Number(row['p50 ms']),
      p99: Number(row['p99 ms']),
    });
  }
  return [...groups.values()];
}

/** A color per client, alike in every chart: warmpool green, undici orange, node:http blue, floors grey. */
export function clientColor(client: string, index: number): string {
  if (/floor/.test(client)) return /kept/.test(client) ? '#ced4da' : '#a5acb3';
  if (/^warmpool/.test(client)) return /request\(\)/.test(client) ? '#69db7c' : '#2b8a3e';
  if (/^undici/.test(client)) return /fetch/.test(client) ? '#ffc078' : '#e8590c';
  if (/^node:http/.test(client)) return '#1c7ed6';
  return ['#7048e8', '#c2255c', '#0c8599', '#5c940d'][index % 4]!;
}

function niceMax(v: number): number {
  const steps = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
  return steps.find((s) => s >= v) ?? Math.ceil(v);
}

/** The chart as an SVG document (a short note in place of the panels when there is nothing to draw). */
export function benchChartSvg(data: ResultsData): string {
  const groups = chartGroups(data);
  const clients: string[] = [];
  for (const g of groups) for (const b of g.bars) if (!clients.includes(b.client)) clients.push(b.client);
  const color = (client: string) => clientColor(client, clients.indexOf(client));
  // Wide enough for its label ("h2 64 KiB") when a cell has few bars.
  const groupWidth = (g: Group) => Math.max(g.bars.length * BAR + GAP, MIN_GROUP);
  const firstBar: number[] = [];
  for (let gx = LEFT, i = 0; i < groups.length; gx += groupWidth(groups[i]!), i++) {
    firstBar.push(gx + (groupWidth(groups[i]!) - groups[i]!.bars.length * BAR) / 2);
  }
  const width = Math.max(560, LEFT + RIGHT + groups.reduce((w, g) => w + groupWidth(g), 0));
  const m = data.meta;
  const subtitle = [
    m.date,
    m.node && `Node ${m.node}`,
    m.cpu && `${m.cpu} (${m.cores} cores)`,
    m.quick && '--quick',
  ]
    .filter(Boolean)
    .join(', ');
  const parts: string[] = [
    text({ x: 12, y: 20, 'font-size': 14, 'font-weight': 'bold' }, 'warmpool bench'),
    text({ x: 12, y: 36, fill: '#555' }, subtitle),
  ];
  // Legend: a swatch and a name per client, wrapped to the chart's width.
  let lx = 12;
  let ly = 54;
  for (const c of clients) {
    const w = 18 + c.length * 6.2;
    if (lx + w > width - 12) {
      lx = 12;
      ly += 16;
    }
    parts.push(
      el('rect', { x: lx, y: ly - 9, width: 10, height: 10, fill: color(c) }),
      text({ x: lx + 14, y: ly }, c),
    );
    lx += w + 12;
  }
  let top = ly + 28;
  if (groups.length === 0) {
    parts.push(text({ x: 12, y: top }, 'no throughput table with a "vs undici" column in these results'));
    return svgDocument(width, top + 20, ...parts);
  }

  // Panel 1: req/s relative to undici.
  const maxVs = niceMax(
    Math.max(...groups.flatMap((g) => [...g.bars.map((b) => b.vsUndici), g.target ?? 0])),
  );
  const y1 = (v: number) => top + 18 + PANEL_H - (v / maxVs) * PANEL_H;
  parts.push(
    text(
      { x: 12, y: top, 'font-weight': 'bold' },
      'req/s relative to undici (1x: its Pool in the same cell; dashed: the target)',
    ),
  );
  const step = maxVs <= 2 ? 0.25 : maxVs <= 5 ? 0.5 : 1;
  for (let v = 0; v <= maxVs + 1e-9; v += step) {
    parts.push(
      el('line', {
        x1: LEFT,
        x2: width - RIGHT,
        y1: y1(v),
        y2: y1(v),
        stroke: v === 1 ? '#e8590c' : '#e9ecef',
        'stroke-width': v === 1 ? 1.5 : 1,
      }),
      text({ x: LEFT - 6, y: y1(v) + 4, 'text-anchor': 'end', fill: '#555' }, `${v}x`),
    );
  }
  let x = 0;
  for (const [i, g] of groups.entries()) {
    x = firstBar[i]!;
    for (const b of g.bars) {
      parts.push(
        el(
          'rect',
          {
            class: 'bar',
            x,
            y: y1(b.vsUndici),
            width: BAR - 1,
            height: y1(0) - y1(b.vsUndici),
            fill: color(b.client),
          },
          el(
            'title',
            {},
            escapeXml(
              `${b.client}, ${g.label} C=${g.c}: ${b.vsUndici.toFixed(2)}x undici (${Math.round(b.reqPerSec)} req/s)`,
            ),
          ),
        ),
      );
      x += BAR;
    }
    if (g.target !== undefined) {
      const w = g.bars.length * BAR;
      parts.push(
        el('line', {
          class: 'target',
          x1: x - w - 2,
          x2: x + 1,
          y1: y1(g.target),
          y2: y1(g.target),
          stroke: '#212529',
          'stroke-dasharray': '3 2',
        }),
      );
    }
  }
  top = y1(0);
  top = groupLabels(parts, groups, groupWidth, top + 14);

  // Panel 2: latency, log scale from the decade under the smallest p50 to the one over the largest p99.
  top += 24;
  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.p50, b.p99])).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const y2 = (v: number) =>
    top + 18 + PANEL_H - (Math.log10(Math.max(v, lo) / lo) / Math.log10(hi / lo)) * PANEL_H;
  parts.push(text({ x: 12, y: top, 'font-weight': 'bold' }, 'latency, ms (log scale): p50 bar, p99 whisker'));
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    parts.push(
      el('line', { x1: LEFT, x2: width - RIGHT, y1: y2(v), y2: y2(v), stroke: '#e9ecef' }),
      text(
        { x: LEFT - 6, y: y2(v) + 4, 'text-anchor': 'end', fill: '#555' },
        String(Number(v.toPrecision(1))),
      ),
    );
  }
  for (const [i, g] of groups.entries()) {
    x = firstBar[i]!;
    for (const b of g.bars) {
      const mid = x + (BAR - 1) / 2;
      parts.push(
        el(
          'rect',
          {
            class: 'latency',
            x,
            y: y2(b.p50),
            width: BAR - 1,
            height: y2(lo) - y2(b.p50),
            fill: color(b.client),
          },
          el(
            'title',
            {},
            escapeXml(
              `${b.client}, ${g.label} C=${g.c}: p50 ${b.p50.toFixed(3)} ms, p99 ${b.p99.toFixed(3)} ms`,
            ),
          ),
        ),
        el('line', { x1: mid, x2: mid, y1: y2(b.p50), y2: y2(b.p99), stroke: '#343a40' }),
        el('line', { x1: x + 1, x2: x + BAR - 2, y1: y2(b.p99), y2: y2(b.p99), stroke: '#343a40' }),
      );
      x += BAR;
    }
  }
  top = groupLabels(parts, groups, groupWidth, y2(lo) + 14);
  return svgDocument(width, top + 10, ...parts);
}

/** The cell's name under each group ("12 B" over "C=16"); returns the y under them. */
function groupLabels(parts: string[], groups: Group[], groupWidth: (g: Group) => number, y: number): number {
  let x = LEFT;
  for (const g of groups) {
    const mid = x + groupWidth(g) / 2;
    parts.push(
      text({ x: mid, y, 'text-anchor': 'middle' }, g.label),
      text({ x: mid, y: y + 13, 'text-anchor': 'middle', fill: '#555' }, `C=${g.c}`),
    );
    x += groupWidth(g);
  }
  return y + 13;
}
