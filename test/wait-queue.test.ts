/** The wait queue (src/pool/wait-queue.ts) on its own: order, O(1) removal anywhere, deadlines. */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { WaitQueue, type Waiter } from '../src/pool/wait-queue.js';

class W implements Waiter<W> {
  prevWaiter: W | null = null;
  nextWaiter: W | null = null;
  inQueue = false;
  queueDeadline = 0;
  constructor(
    readonly name: string,
    readonly needsNewConnection = false,
  ) {}
}

function names(q: WaitQueue<W>): string[] {
  const out: string[] = [];
  for (let w = q.first; w !== null; w = w.nextWaiter) out.push(w.name);
  return out;
}

test('waiters come out in the order they were added; one put at the front goes first', () => {
  const q = new WaitQueue<W>(() => {});
  const [a, b, c, r] = [new W('a'), new W('b'), new W('c'), new W('retry', true)];
  q.pushBack(a, 0, 0);
  q.pushBack(b, 0, 0);
  q.pushFront(r);
  q.pushBack(c, 0, 0);
  assert.deepEqual(names(q), ['retry', 'a', 'b', 'c']);
  assert.equal(q.size, 4);
  assert.equal(q.newConnectionWaiters, 1);
});

test('a waiter is removed from the front, the middle or the back, once; the counts follow', () => {
  const q = new WaitQueue<W>(() => {});
  const ws = ['a', 'b', 'c', 'd', 'e'].map((n) => new W(n, n === 'c'));
  for (const w of ws) q.pushBack(w, 0, 0);
  assert.equal(q.remove(ws[2]!), true);
  assert.equal(q.remove(ws[2]!), false, 'a second removal is refused');
  assert.equal(q.remove(ws[0]!), true);
  assert.equal(q.remove(ws[4]!), true);
  assert.deepEqual(names(q), ['b', 'd']);
  assert.equal(q.size, 2);
  assert.equal(q.newConnectionWaiters, 0);
  assert.deepEqual([ws[2]!.inQueue, ws[2]!.prevWaiter, ws[2]!.nextWaiter], [false, null, null]);
  q.remove(ws[1]!);
  q.remove(ws[3]!);
  assert.equal(q.first, null);
  q.pushFront(ws[0]!);
  assert.deepEqual(names(q), ['a'], 'an emptied queue takes waiters again');
});

test('takeExpired takes the waiters whose deadline has passed, skips those without one, and names the next deadline', () => {
  const q = new WaitQueue<W>(() => {});
  const [r, a, b, c] = [new W('retry', true), new W('a'), new W('b'), new W('c')];
  q.pushBack(a, 0, 100);
  q.pushBack(b, 50, 100);
  q.pushBack(c, 200, 100);
  q.pushFront(r);
  assert.deepEqual(q.takeExpired(99), []);
  assert.equal(q.nextDeadline, 100);
  assert.deepEqual(
    q.takeExpired(150).map((w) => w.name),
    ['a', 'b'],
  );
  assert.equal(q.nextDeadline, 300);
  assert.deepEqual(names(q), ['retry', 'c']);
  assert.deepEqual(
    q.takeExpired(1000).map((w) => w.name),
    ['c'],
  );
  assert.equal(q.nextDeadline, 0, 'no deadline left: the retry has none');
  assert.deepEqual(names(q), ['retry']);
  q.stopTimer();
});

test('the queue timer calls onDeadline when the earliest deadline has come, and again for the next one', async () => {
  const start = performance.now();
  const expired: string[] = [];
  const q: WaitQueue<W> = new WaitQueue<W>(() => {
    for (const w of q.takeExpired(performance.now())) expired.push(w.name);
  });
  q.pushBack(new W('a'), start, 10);
  q.pushBack(new W('b'), start, 30);
  while (expired.length < 2) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(expired, ['a', 'b']);
  assert.equal(q.size, 0);
});
