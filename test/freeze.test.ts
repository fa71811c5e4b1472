/**
 * A real freeze: a client process holding warm connections is stopped (SIGSTOP) for 1.5 s while the
 * server closes them (keep-alive timeout 500 ms, not advertised), then continued (SIGCONT); at once
 * it sends 100 GETs. All must succeed, and none may be written to a connection the server closed.
 *
 * The client is helpers/freeze-child.ts (compiled next to this file), which imports the compiled
 * library relative to itself. The server is a FaultServer in this process.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { reapStoppedChild } from './helpers/child.js';
import { startFaultServer } from './helpers/fault-server.js';

const CHILD = fileURLToPath(new URL('./helpers/freeze-child.js', import.meta.url));
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

/** The child's stdout as a queue of JSON messages. */
function messages(child: ChildProcess) {
  const queue: ChildMessage[] = [];
  const waiters: ((m: ChildMessage) => void)[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const m = JSON.parse(buf.slice(0, nl)) as ChildMessage;
      buf = buf.slice(nl + 1);
      const w = waiters.shift();
      if (w) w(m);
      else queue.push(m);
    }
  });
  return (what: string, ms: number) =>
    new Promise<ChildMessage>((resolve, reject) => {
      const m = queue.shift();
      if (m) return resolve(m);
      const timer = setTimeout(() => reject(new Error(`child: no '${what}' within ${ms} ms`)), ms);
      waiters.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
}

for (const mode of ['busy', 'timer'] as const) {
  test(
    `SIGSTOP 1.5 s while the server closes idle connections; on SIGCONT 100 GETs succeed (child resumes ${
      mode === 'busy' ? 'in a synchronous loop' : 'in a timer'
    })`,
    { timeout: 30_000 },
    async () => {
      const srv = await startFaultServer({ keepAliveTimeoutMs: 500, lingerMs: 5000, keepBodies: false });
      const child = spawn(process.execPath, [CHILD, srv.url, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const next = messages(child);
      try {
        const ready = await next('ready', 10_000);
        assert.equal(ready.type, 'ready');
        assert.equal(ready.connections, 8);
        assert.ok(child.pid !== undefined && child.kill('SIGSTOP'));
        await sleep(1500);
        const closed = srv.events('close-by-server').filter((e) => e.detail === 'keep-alive timeout');
        assert.equal(closed.length, 8, 'the server closed every idle connection while the child was stopped');
        child.kill('SIGCONT');
        const done = await next('done', 15_000);
        assert.equal(done.type, 'done');
        assert.ok((done.gapMs ?? 0) >= 1000, `the child saw a gap of ${done.gapMs} ms`);
        assert.deepEqual(done.failed, []);
        assert.equal(done.ok, 100);
        await sleep(100);
        assert.deepEqual(srv.events('write-after-close'), [], 'a request was written to a closed connection');
        for (let id = 1; id <= 8; id++) {
          assert.equal(srv.stats.requestsPerConnection.get(id), 1, `closed connection ${id} was used again`);
        }
        for (let i = 0; i < 100; i++) assert.ok((srv.requestIdCounts.get(`after-${i}`) ?? 0) >= 1);
        assert.equal(done.retried, 0, 'no request needed a retry: none was sent on a dead connection');
      } catch (err) {
        if (stderr) (err as Error).message += `\nchild stderr:\n${stderr}`;
        throw err;
      } finally {
        await reapStoppedChild(child);
        await srv.close();
      }
    },
  );
}
