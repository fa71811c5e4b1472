// The AWS SDK rows: @aws-sdk/client-s3 on WarmpoolHttpHandler and on the SDK's default handler, run by
// bench/aws.ts (also `npm run bench:aws` alone) in a process of its own, so the SDK's modules and its
// s3rver child stay out of the throughput matrix's process.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Table } from '../report.js';
import type { Scenario } from './index.js';

const run = promisify(execFile);

interface AwsResult {
  shared: (string | number)[][];
  fresh: { default: [number, number]; warmpool: [number, number] };
  ops: number;
}

export const aws: Scenario = {
  name: 'scenario: AWS SDK S3 client, warmpool handler vs the SDK default',
  async run({ quick, warmpool }) {
    const columns = ['case', 'SDK default', 'warmpool', 'warmpool / SDK default'];
    if (warmpool === null) return { title: this.name, note: 'warmpool did not load', columns, rows: [] };
    const script = fileURLToPath(new URL('../aws.js', import.meta.url));
    const { stdout } = await run(process.execPath, [script, '--json', ...(quick ? ['--quick'] : [])], {
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
      maxBuffer: 1 << 20,
    });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as AwsResult;
    const rows: Table['rows'] = r.shared.map(([label, d, w, ratio]) => [
      `ops/s, one shared client: ${String(label)}`,
      d as number,
      w as number,
      Number(ratio),
    ]);
    const [dConns, dP50] = r.fresh.default;
    const [wConns, wP50] = r.fresh.warmpool;
    rows.push([
      `connections, a new S3Client per op (${r.ops} GetObject, C=4)`,
      dConns,
      wConns,
      wConns / dConns,
    ]);
    rows.push([`p50 ms, a new S3Client per op (${r.ops} GetObject, C=4)`, dP50, wP50, wP50 / dP50]);
    return {
      title:
        'AWS SDK v3 S3 client on loopback: WarmpoolHttpHandler vs the SDK default handler (NodeHttpHandler)',
      note:
        'canned = a server answering at once (the transport shows), s3rver = a real S3 implementation (its own ' +
        'cost dilutes every ratio); target (issue #17): 1.3x ops/s at C=1 and C=16',
      columns,
      rows,
    };
  },
};
