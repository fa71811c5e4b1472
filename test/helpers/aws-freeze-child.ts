/**
 * aws-freeze-child: the client side of test/aws-freeze.test.ts, run as its own process so the test can
 * SIGSTOP it. Usage: node aws-freeze-child.js <s3 endpoint> <bucket>
 *
 * S3 operations through the real SDK on WarmpoolHttpHandler, the SDK's retries off (maxAttempts 1), a
 * new S3Client per operation. It warms 4 connections, prints {"type":"ready"}, then watches the wall
 * clock from a 20 ms interval; when the clock jumps by more than a second (the process was stopped),
 * it runs 20 operations at concurrency 4 and prints {"type":"done", ...}.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { WarmpoolHttpHandler } from '../../src/aws/handler.js';
import { getGlobalAgent } from '../../src/index.js';

const out = (msg: object) => process.stdout.write(`${JSON.stringify(msg)}\n`);

async function run(endpoint: string, bucket: string): Promise<void> {
  const client = () =>
    new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: new WarmpoolHttpHandler(),
    });
  const get = async (): Promise<void> => {
    const c = client();
    try {
      const res = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'small' }));
      await res.Body?.transformToString();
    } finally {
      c.destroy();
    }
  };
  const put = async (i: number): Promise<void> => {
    const c = client();
    try {
      await c.send(new PutObjectCommand({ Bucket: bucket, Key: `after-${i}`, Body: `value ${i}` }));
    } finally {
      c.destroy();
    }
  };

  await Promise.all([get(), get(), get(), get()]);
  let last = Date.now();
  const deadline = last + 10_000;
  out({ type: 'ready', connections: getGlobalAgent().stats().open });

  const fireAll = async (gapMs: number): Promise<void> => {
    const failed: string[] = [];
    let ok = 0;
    let next = 0;
    const worker = async () => {
      while (next < 20) {
        const i = next++;
        try {
          await (i % 2 === 0 ? put(i) : get());
          ok++;
        } catch (err) {
          failed.push(`${(err as Error).name}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const stats = getGlobalAgent().stats().origins[0];
    out({
      type: 'done',
      ok,
      failed,
      gapMs,
      retried: stats?.retried,
      created: stats?.created,
      closed: stats?.closed,
      reused: stats?.reused,
    });
    await getGlobalAgent().destroy();
  };

  const timer = setInterval(() => {
    const now = Date.now();
    if (now - last > 1000 || now > deadline) {
      clearInterval(timer);
      void fireAll(now - last);
    }
    last = now;
  }, 20);
}

const [endpoint, bucket] = process.argv.slice(2);
// Without arguments (the test runner loads every file under test/ as a test file): nothing to do.
if (endpoint !== undefined && bucket !== undefined) await run(endpoint, bucket);
