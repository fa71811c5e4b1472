/**
 * The OriginPool on its own, without sockets (test/helpers/fake-pool.ts): a clock that moves only when
 * told, connections that answer only when told, dials that complete only when told. Queue order, caps,
 * freshness and retry routing are facts about the pool; the socket tests prove the same with real servers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SocketClosedError } from '../src/errors.js';
import { EX_DONE, EX_QUEUED, EX_SENT } from '../src/exchange/exchange.js';
import { DialBackoff } from '../src/pool/dialer.js';
import { fakePool } from './helpers/fake-pool.js';

test('waiters are served in the order they came, never more dials than maxConnectionsPerOrigin', async () => {
  const f = fakePool({ maxConnectionsPerOrigin: 2 });
  const exs = ['/0', '/1', '/2', '/3', '/4'].map((p) => f.request(p));
  assert.equal(f.dials.length, 2, 'two dials for five waiters at a cap of two');
  assert.equal(f.pool.stats().queued, 5);
  const [a, b] = [f.dials[0]!.succeed(), f.dials[0]!.succeed()];
  await f.settle();
  assert.deepEqual([a.carried, b.carried], [['http://fake:1/0'], ['http://fake:1/1']]);
  b.answer();
  a.answer();
  b.answer();
  assert.deepEqual(b.carried, ['http://fake:1/1', 'http://fake:1/2', 'http://fake:1/4']);
  assert.deepEqual(a.carried, ['http://fake:1/0', 'http://fake:1/3']);
  assert.equal(f.dials.length, 0, 'no further dial: the two connections served everything');
  assert.deepEqual(
    exs.map((ex) => ex.state),
    [EX_DONE, EX_DONE, EX_DONE, EX_SENT, EX_SENT],
  );
});

test('a free connection is reused, the most recently released first', async () => {
  const f = fakePool({ maxConnectionsPerOrigin: 4 });
  f.request('/a');
  f.request('/b');
  const [a, b] = [f.dials[0]!.succeed(), f.dials[0]!.succeed()];
  await f.settle();
  a.answer();
  f.clock.advance(5);
  b.answer(); // b went idle last: top of the stack
  f.request('/c');
  assert.deepEqual(b.carried, ['http://fake:1/b', 'http://fake:1/c']);
  assert.equal(f.dials.length, 0);
  assert.deepEqual(f.pool.stats().reused, 1);
});

test('freshness is read when a connection is taken: idle past idleTimeout it is closed and another dialed; idle less it is reused', async () => {
  const f = fakePool({ idleTimeout: 1000 });
  f.request('/a');
  const a = f.dials[0]!.succeed();
  await f.settle();
  a.answer();
  f.clock.advance(999);
  f.request('/b');
  assert.deepEqual(a.carried, ['http://fake:1/a', 'http://fake:1/b'], 'idle 999 ms of 1000: reused');
  a.answer();
  f.clock.advance(1000);
  f.request('/c');
  assert.equal(a.closeReason, 'idle-timeout');
  assert.equal(f.dials.length, 1, 'a new dial for /c');
});

test('a frozen monotonic clock does not make a connection young: the wall clock that moved retires it', async () => {
  const f = fakePool({ idleTimeout: 1000 });
  f.request('/a');
  const a = f.dials[0]!.succeed();
  await f.settle();
  a.answer();
  f.clock.wall += 60_000; // a VM restored from a snapshot: only the wall clock saw the time pass
  f.request('/b');
  assert.equal(a.closeReason, 'idle-timeout');
  assert.equal(f.dials.length, 1);
});

test('maxRequestsPerConnection and maxConnectionAge retire a connection when it is taken', async () => {
  const f = fakePool({ maxRequestsPerConnection: 2, maxConnectionAge: 10_000, idleTimeout: 60_000 });
  f.request('/1');
  const a = f.dials[0]!.succeed();
  await f.settle();
  a.answer();
  f.request('/2');
  a.answer();
  f.request('/3');
  assert.equal(a.closeReason, 'max-requests');
  const b = f.dials[0]!.succeed();
  await f.settle();
  b.answer();
  f.clock.advance(10_000);
  f.request('/4');
  assert.equal(b.closeReason, 'max-age');
});

test('a GET that failed on a reused connection is retried first in line, on a new connection only', async () => {
  const f = fakePool({ maxConnectionsPerOrigin: 4 });
  f.request('/warm1');
  f.request('/warm2');
  const [a, b] = [f.dials[0]!.succeed(), f.dials[0]!.succeed()];
  await f.settle();
  a.answer();
  b.answer();
  f.clock.advance(10);
  const get = f.request('/get'); // takes b, the top of the stack
  assert.deepEqual(b.carried.at(-1), 'http://fake:1/get');
  const behind = f.request('/behind'); // takes a
  b.failBeforeHead(new SocketClosedError('reset'), true);
  assert.equal(get.state, EX_QUEUED, 'queued again, not rejected');
  assert.equal(get.needsNewConnection, true);
  assert.equal(f.dials.length, 1, 'a dial for the retry');
  a.answer(); // `a` frees up: reused, so it must not take the retry
  assert.equal(a.carried.includes('http://fake:1/get'), false);
  const c = f.dials[0]!.succeed();
  await f.settle();
  assert.deepEqual(c.carried, ['http://fake:1/get']);
  assert.equal(f.pool.stats().retried, 1);
  assert.equal(behind.state, EX_DONE);
});

test('a POST that failed on a reused connection is not retried: it fails with the error', async () => {
  const f = fakePool();
  f.request('/warm');
  const a = f.dials[0]!.succeed();
  await f.settle();
  a.answer();
  const post = f.request('/post', { method: 'POST' });
  a.failBeforeHead(new SocketClosedError('reset'), true);
  await assert.rejects(post.promise!, /not retried: the request is not idempotent/);
  assert.equal(f.pool.stats().retried, 0);
});

test('a failed dial with nothing open fails every waiter at once', async () => {
  const f = fakePool({ maxConnectionsPerOrigin: 1 });
  const exs = [f.request('/a'), f.request('/b'), f.request('/c')];
  f.dials[0]!.fail(new SocketClosedError('refused'));
  for (const ex of exs) await assert.rejects(ex.promise!, /refused/);
  assert.equal(f.pool.isEmpty, true);
});

test('an origin whose protocol is not known yet gets one dial; once it is multiplexed, one session carries every waiter', async () => {
  const f = fakePool({}, 'unknown');
  for (let i = 0; i < 10; i++) f.request(`/${i}`);
  assert.equal(f.dials.length, 1);
  const s = f.dials[0]!.succeed({ multiplexed: true, capacity: 100 });
  await f.settle();
  assert.equal(s.active, 10);
  assert.equal(f.dials.length, 0);
  assert.equal(f.pool.stats().protocol, 'h2');
});

test('multiplexed sessions full at their stream limit: one more session, not one per waiter', async () => {
  const f = fakePool({}, true);
  for (let i = 0; i < 3; i++) f.request(`/${i}`);
  const s = f.dials[0]!.succeed({ capacity: 2 });
  await f.settle();
  assert.equal(s.active, 2);
  for (let i = 3; i < 4; i++) f.request(`/${i}`);
  assert.equal(f.dials.length, 1, 'two waiters left, one session of two slots covers them');
});

test('the server idle timeout is learned from idle closes and shown in stats()', async () => {
  const f = fakePool({ idleTimeout: 60_000 });
  for (let i = 0; i < 2; i++) {
    f.request(`/${i}`);
    const c = f.dials[0]!.succeed();
    await f.settle();
    c.answer();
    f.clock.advance(2_000);
    c.close('server-close'); // the server closed it after 2 s idle
    f.clock.advance(1_000);
  }
  assert.equal(f.pool.stats().serverIdleTimeoutMs, 2_000);
});

test('DialBackoff: each connection closed unused doubles the wait before the next dial, from 50 ms to 5 s; one that served ends it', () => {
  const b = new DialBackoff(() => {});
  assert.equal(b.waitMs(0), 0);
  const waits: number[] = [];
  for (let i = 0; i < 9; i++) {
    b.closedUnused(1000);
    waits.push(b.waitMs(1000));
  }
  assert.deepEqual(waits, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  assert.equal(b.waitMs(6000), 0, 'the wait is over');
  b.served();
  b.closedUnused(7000);
  assert.equal(b.waitMs(7000), 50, 'a connection that served started the doubling over');
});
