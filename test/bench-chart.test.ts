/**
 * The bench chart (bench/chart-svg.ts over bench/svg.ts): well-formed XML, one bar per client and
 * cell, a target line per cell that has one, names escaped; and the reference results draw.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type ResultsData, benchChartSvg, chartGroups } from '../bench/chart-svg.js';
import { el, escapeXml, text } from '../bench/svg.js';

/**
 * Throws unless `xml` is one well-formed element: tags nest and close, attribute values are quoted,
 * and text and attributes hold no raw '<' or an '&' that starts no entity. (Enough for what svg.ts
 * writes: no comments, CDATA, doctype or processing instructions.)
 */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const entity = /&(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi;
  const checkText = (s: string, where: string) => {
    const bare = s.replace(entity, '');
    assert.ok(
      !bare.includes('&') && !bare.includes('<'),
      `unescaped character in ${where}: ${s.slice(0, 80)}`,
    );
  };
  let roots = 0;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt === -1) {
      assert.equal(xml.slice(i).trim(), '', 'text after the root element');
      break;
    }
    const between = xml.slice(i, lt);
    if (stack.length === 0) assert.equal(between.trim(), '', 'text outside the root element');
    else checkText(between, `<${stack.at(-1)}>`);
    const gt = xml.indexOf('>', lt);
    assert.ok(gt !== -1, 'a tag is not closed');
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      assert.equal(tag.slice(1), stack.pop(), 'closing tag matches the open one');
    } else {
      const m = /^([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)$/.exec(tag);
      assert.ok(m, `malformed tag <${tag.slice(0, 80)}>`);
      for (const a of m[2]!.matchAll(/="([^"]*)"/g)) checkText(a[1]!, `an attribute of <${m[1]}>`);
      if (stack.length === 0) roots++;
      if (m[3] !== '/') stack.push(m[1]!);
    }
    i = gt + 1;
  }
  assert.deepEqual(stack, [], 'every element closed');
  assert.equal(roots, 1, 'one root element');
}

function results(
  rows: Array<[string, number, string, number]>,
  targets: Array<[string, number, number]> = [],
): ResultsData {
  return {
    meta: { date: '2026-01-01T00:00:00.000Z', node: 'v20.0.0', cpu: 'a <fast> & "cheap" cpu', cores: 2 },
    tables: [
      {
        title: 'Throughput',
        columns: ['body', 'C', 'client', 'req/s', 'p50 ms', 'p99 ms', 'vs undici'],
        rows: rows.map(([body, c, client, vs]) => ({
          body,
          C: c,
          client,
          'req/s': 1000 * vs,
          'p50 ms': 0.2 / vs,
          'p99 ms': 1 / vs,
          'vs undici': vs,
        })),
      },
      {
        title: 'Targets',
        columns: ['body', 'C', 'target'],
        rows: targets.map(([body, c, target]) => ({ body, C: c, target })),
      },
    ],
  };
}

const count = (svg: string, needle: string) => svg.split(needle).length - 1;

test('svg.ts escapes text and attribute values, and writes empty elements self-closed', () => {
  assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  assert.equal(el('rect', { x: 1.23456, y: undefined, fill: 'a"b' }), '<rect x="1.23" fill="a&quot;b"/>');
  assert.equal(text({ x: 0 }, 'p50 < p99 & more'), '<text x="0">p50 &lt; p99 &amp; more</text>');
});

test('the chart has one bar (and one latency bar) per client and cell, and a target line per cell that has one', () => {
  const data = results(
    [
      ['12 B', 1, 'warmpool Client', 1.2],
      ['12 B', 1, 'undici Pool.request', 1],
      ['12 B', 1, 'raw socket (floor)', 1.3],
      ['12 B', 16, 'warmpool Client', 2.1],
      ['12 B', 16, 'undici Pool.request', 1],
      ['h2 12 B', 1, 'warmpool Client', 1.22],
      ['h2 12 B', 1, 'undici Pool allowH2', 1],
    ],
    [
      ['12 B', 1, 1.5],
      ['12 B', 16, 1.5],
    ],
  );
  const svg = benchChartSvg(data);
  assertWellFormed(svg);
  assert.equal(count(svg, 'class="bar"'), 7);
  assert.equal(count(svg, 'class="latency"'), 7);
  assert.equal(count(svg, 'class="target"'), 2);
  assert.deepEqual(
    chartGroups(data).map((g) => [g.label, g.c, g.bars.length]),
    [
      ['12 B', 1, 3],
      ['12 B', 16, 2],
      ['h2 12 B', 1, 2],
    ],
  );
});

test('client names and the machine description are escaped: the document stays well-formed', () => {
  const svg = benchChartSvg(results([['12 B', 1, 'a <client> & "friends"', 1]]));
  assertWellFormed(svg);
  assert.ok(svg.includes('a &lt;client&gt; &amp; &quot;friends&quot;'));
  assert.equal(count(svg, 'class="bar"'), 1);
});

test('rows without a "vs undici" number (a failed client: null in the JSON) draw no bar; no table draws a note', () => {
  const data = results([['12 B', 1, 'warmpool Client', 1.2]]);
  data.tables[0]!.rows.push({ body: '12 B', C: 1, client: 'broken', 'vs undici': null });
  const svg = benchChartSvg(data);
  assertWellFormed(svg);
  assert.equal(count(svg, 'class="bar"'), 1);
  const empty = benchChartSvg({ meta: {}, tables: [] });
  assertWellFormed(empty);
  assert.equal(count(empty, 'class="bar"'), 0);
  assert.match(empty, /no throughput table/);
});

test('the reference results draw: a bar per row of the throughput table', () => {
  const data = JSON.parse(
    readFileSync(new URL('../../bench/results/reference.json', import.meta.url), 'utf8'),
  ) as ResultsData;
  const svg = benchChartSvg(data);
  assertWellFormed(svg);
  const rows = data.tables.find((t) => t.columns.includes('vs undici'))!.rows;
  assert.equal(count(svg, 'class="bar"'), rows.filter((r) => typeof r['vs undici'] === 'number').length);
  assert.equal(count(svg, 'class="target"'), 12);
});
