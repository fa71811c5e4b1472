/**
 * A real freeze under the AWS SDK: a client process (S3 on WarmpoolHttpHandler, the SDK's retries off:
 * maxAttempts 1, a new S3Client per operation) holds warm connections to s3rver; it is stopped (SIGSTOP)
 * for 1.5 s while the server closes them, then continued (SIGCONT), and at once runs 20 operations.
 * All must succeed: with no SDK retry to hide it, a request sent on a connection the server closed
 * would fail. The server announces no idle timeout (node:http's keepAliveTimeout 0: no Keep-Alive
 * header), so nothing tells the client in advance; it closes the idle connections while the client
 * is stopped.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { WarmpoolHttpHandler } from '../src/aws/handler.js';
import { Agent } from '../src/index.js';
import { reapStoppedChild } from './helpers/child.js';
import { startS3Server } from './helpers/s3-server.js';

const CHILD = fileURLToPath(new URL('./helpers/aws-freeze-child.js', import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface ChildMessage {
  type: 'ready' | 'done';
  connections?: number;
  ok?: number;
  failed?: string[];
  gapMs?: number;
  retried?: number;
  closed?: Record<string, number>;
  created?: number;
}

/** The child's next JSON line. */
function nextMessage(child: ChildProcess, ms: number): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`child: no message within ${ms} ms`)), ms);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      child.stdout!.off('data', onData);
      clearTimeout(timer);
      resolve(JSON.parse(buf.slice(0, nl)) as ChildMessage);
    };
    child.stdout!.on('data', onData);
  });
}

test(
  'SIGSTOP 1.5 s while s3rver closes idle connections; on SIGCONT 20 SDK operations succeed with maxAttempts 1',
  { timeout: 60_000 },
  async () => {
    const server = await startS3Server({ keepAliveTimeoutMs: 0 });
    const agent = new Agent();
    const setup = new S3Client({
      region: 'us-east-1',
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestHandler: new WarmpoolHttpHandler({ agent }),
    });
    await setup.send(new CreateBucketCommand({ Bucket: 'freeze' }));
    await setup.send(new PutObjectCommand({ Bucket: 'freeze', Key: 'small', Body: 'small value' }));
    await agent.close();
    const child = spawn(process.execPath, [CHILD, server.endpoint, 'freeze'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      const ready = await nextMessage(child, 20_000);
      assert.equal(ready.type, 'ready');
      assert.ok((ready.connections ?? 0) >= 1);
      assert.ok(child.kill('SIGSTOP'));
      await sleep(500);
      assert.equal(server.openConnections, ready.connections, 'the warm connections are open and idle');
      server.dropConnections();
      await sleep(1000);
      child.kill('SIGCONT');
      const done = await nextMessage(child, 30_000);
      assert.equal(done.type, 'done');
      assert.ok((done.gapMs ?? 0) >= 1000, `the child saw a gap of ${done.gapMs} ms`);
      assert.deepEqual(done.failed, []);
      assert.equal(done.ok, 20);
      assert.equal(done.retried, 0, 'no request was sent on a connection the server had closed');
    } catch (err) {
      if (stderr) (err as Error).message += `\nchild stderr:\n${stderr}`;
      throw err;
    } finally {
      await reapStoppedChild(child);
      await server.close();
    }
  },
);
