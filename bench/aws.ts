import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
// `npm run bench:aws`: the AWS SDK for JavaScript v3 (@aws-sdk/client-s3) on WarmpoolHttpHandler and on
// the SDK's default handler (NodeHttpHandler), against s3rver on loopback, in one run:
//   - small GetObject through one shared S3Client, C=1 and C=16: ops/s (median of rounds) and the ratio;
//   - a new S3Client per operation (C=4): connections the server accepted, and the p50 latency.
// s3rver (filesystem, Koa; in a process of its own: bench/aws-s3-server.ts) costs far more per request
// than the transport, so the ratios are diluted by the server: they say what the transport is worth
// end to end against a slow server, not what it costs.
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { WarmpoolHttpHandler } from '../src/aws/handler.js';
import { Agent } from '../src/index.js';
import { Samples, median, textTable } from './report.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 2 : 5;
const ROUND_MS = quick ? 1000 : 3000;
const NEW_CLIENT_OPS = quick ? 100 : 400;
const BUCKET = 'bench';

const child = fork(fileURLToPath(new URL('./aws-s3-server.js', import.meta.url)), [], {
  env: { ...process.env, NODE_NO_WARNINGS: '1' },
});
/** Sends `msg` to the server process and resolves with its answer. */
function ask<T>(msg: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(msg);
  });
}
const { endpoint, canned } = await new Promise<{ endpoint: string; canned: string }>((resolve) =>
  child.once('message', (m) => resolve(m as { endpoint: string; canned: string })),
);
const base: S3ClientConfig = {
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
};
let agent = new Agent();
const makeClient = (kind: 'warmpool' | 'default', at = endpoint) =>
  new S3Client({
    ...base,
    endpoint: at,
    ...(kind === 'warmpool' ? { requestHandler: new WarmpoolHttpHandler({ agent }) } : {}),
  });

const setup = makeClient('warmpool');
await setup.send(new CreateBucketCommand({ Bucket: BUCKET }));
await setup.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'small', Body: 'x'.repeat(64) }));

async function getSmall(client: S3Client): Promise<void> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'small' }));
  await res.Body?.transformToString();
}

/** GetObject through one client for `ms`, `c` at a time: ops/s. */
async function sharedRound(client: S3Client, c: number, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let ops = 0;
  const worker = async () => {
    while (performance.now() < end) {
      await getSmall(client);
      ops++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: c }, worker));
  return (ops * 1000) / (performance.now() - start);
}

const kinds = ['warmpool', 'default'] as const;
const sharedRows: (string | number)[][] = [];
for (const [server, at] of [
  ['canned', canned],
  ['s3rver', endpoint],
] as const) {
  for (const c of [1, 16]) {
    const clients = { warmpool: makeClient('warmpool', at), default: makeClient('default', at) };
    for (const kind of kinds) await sharedRound(clients[kind], c, 200); // warm-up
    const rounds: Record<(typeof kinds)[number], number[]> = { warmpool: [], default: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which goes first, so neither always runs on the warmer machine.
      const order = r % 2 === 0 ? kinds : ([...kinds].reverse() as unknown as typeof kinds);
      for (const kind of order) rounds[kind].push(await sharedRound(clients[kind], c, ROUND_MS));
    }
    const w = median(rounds.warmpool);
    const d = median(rounds.default);
    sharedRows.push([`${server}  GetObject 64 B c=${c}`, Math.round(d), Math.round(w), (w / d).toFixed(2)]);
    for (const kind of kinds) clients[kind].destroy();
  }
}

/** NEW_CLIENT_OPS GetObjects at C=4, each through a new client: connections opened, p50 ms. */
async function newClientRun(kind: 'warmpool' | 'default'): Promise<[number, number]> {
  await ask('reset');
  if (kind === 'warmpool') {
    // A pool of its own, cold: the connections counted are the ones this run opened.
    await agent.close();
    agent = new Agent();
  }
  const samples = new Samples();
  let next = 0;
  const worker = async () => {
    while (next < NEW_CLIENT_OPS) {
      next++;
      const client = makeClient(kind);
      const start = performance.now();
      try {
        await getSmall(client);
      } finally {
        client.destroy();
      }
      samples.push(performance.now() - start);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const { connections } = await ask<{ connections: number }>('count');
  return [connections, samples.percentiles(50)[0]!];
}
const fresh = { default: await newClientRun('default'), warmpool: await newClientRun('warmpool') };

if (process.argv.includes('--json')) {
  // For the bench's AWS scenario (bench/scenarios/aws.ts), which runs this in a process of its own.
  console.log(JSON.stringify({ shared: sharedRows, fresh, ops: NEW_CLIENT_OPS }));
} else {
  console.log(
    textTable({
      title:
        'AWS SDK S3 client (loopback): one shared client; canned = a server answering at once, s3rver = a real one',
      note: `ops/s, median of ${ROUNDS} rounds of ${ROUND_MS} ms; ratio = warmpool / SDK default handler`,
      columns: ['operation', 'SDK default ops/s', 'warmpool ops/s', 'ratio'],
      rows: sharedRows,
    }),
  );
  console.log(
    textTable({
      title: `AWS SDK S3 client on s3rver (loopback): a new S3Client per operation, ${NEW_CLIENT_OPS} GetObject at C=4`,
      columns: ['handler', 'connections opened', 'p50 ms'],
      rows: [
        ['SDK default', fresh.default[0], fresh.default[1].toFixed(2)],
        ['warmpool', fresh.warmpool[0], fresh.warmpool[1].toFixed(2)],
      ],
    }),
  );
}
setup.destroy();
await agent.close();
child.send('close');
