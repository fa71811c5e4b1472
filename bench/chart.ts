// Draws the chart of a bench results file without running the bench:
//   node build/bench/chart.js bench/results/reference.json    (writes bench/results/reference.svg)
// `npm run bench` draws its own run's chart itself (writeResults in report.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { type ResultsData, benchChartSvg } from './chart-svg.js';
import { exitUnlessFlagsValid } from './cli-flags.js';

const USAGE = 'usage: node build/bench/chart.js <results.json>...   writes <results>.svg next to each';

const args = process.argv.slice(2);
exitUnlessFlagsValid(args, { exact: [], withValue: [], positional: true }, USAGE);
if (args.length === 0) {
  console.error(USAGE);
  process.exit(2);
}
for (const file of args) {
  const data = JSON.parse(readFileSync(file, 'utf8')) as ResultsData;
  const out = file.replace(/\.json$/, '') + '.svg';
  writeFileSync(out, benchChartSvg(data));
  console.log(`wrote ${out}`);
}
