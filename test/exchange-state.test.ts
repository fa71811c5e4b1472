/**
 * The exchange's lifecycle (src/exchange/exchange.ts): one field says where it is, one method moves
 * it with its holder and connection, a move on a settled exchange loses (returns false), and a move
 * the lifecycle does not allow throws under the test runner.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolConnection } from '../src/exchange/connection.js';
import {
  EX_DONE,
  EX_LIVENESS,
  EX_QUEUED,
  EX_SENT,
  EX_STREAMING,
  type Exchange,
  type ExchangeAbortTarget,
  type ExchangeState,
} from '../src/exchange/exchange.js';
import { makeExchange } from './helpers/fake-pool.js';

function exchange(signal?: AbortSignal): Exchange {
  return makeExchange({ signal });
}

const conn = { id: 1 } as unknown as PoolConnection;
class Holder implements ExchangeAbortTarget {
  aborted: Error[] = [];
  abortExchange(ex: Exchange, err: Error): void {
    this.aborted.push(err);
    ex.reject(err);
  }
}

test('the lifecycle: queued, liveness turn, sent, streaming, done; holder and connection move with the state', () => {
  const pool = new Holder();
  const connection = new Holder();
  const ex = exchange();
  assert.equal(ex.state, EX_QUEUED);
  assert.equal(ex.moveTo(EX_QUEUED, pool, null), true);
  assert.equal(ex.moveTo(EX_LIVENESS, pool, conn), true);
  assert.equal(ex.connection, conn);
  assert.equal(ex.moveTo(EX_SENT, connection, conn), true);
  assert.equal(ex.moveTo(EX_QUEUED, pool, null), true, 'a retry goes back to the queue');
  assert.equal(ex.connection, null);
  assert.equal(ex.moveTo(EX_SENT, connection, conn), true);
  assert.equal(ex.moveTo(EX_STREAMING, connection, conn), true);
  ex.finish();
  assert.equal(ex.state, EX_DONE);
  assert.equal(ex.connection, null);
  assert.equal(ex.settled, true);
});

test('every move the lifecycle does not allow throws under the test runner, and leaves the exchange where it was', () => {
  const illegal: Array<[ExchangeState[], ExchangeState]> = [
    [[], EX_STREAMING], // queued -> streaming
    [[EX_LIVENESS], EX_LIVENESS],
    [[EX_LIVENESS], EX_STREAMING],
    [[EX_SENT], EX_SENT],
    [[EX_SENT], EX_LIVENESS],
    [[EX_SENT, EX_STREAMING], EX_QUEUED], // a retry after the head: never
    [[EX_SENT, EX_STREAMING], EX_SENT],
  ];
  for (const [path, to] of illegal) {
    const ex = exchange();
    for (const step of path) assert.equal(ex.moveTo(step, null, conn), true);
    const before = ex.state;
    assert.throws(() => ex.moveTo(to, null, conn), /an exchange cannot move from/);
    assert.equal(ex.state, before);
  }
});

test('a move on a settled exchange returns false: whoever made it lost the race and lets go', () => {
  const ex = exchange();
  ex.moveTo(EX_SENT, null, conn);
  ex.reject(new Error('aborted first'));
  for (const to of [EX_QUEUED, EX_LIVENESS, EX_SENT, EX_STREAMING, EX_DONE] as const) {
    assert.equal(ex.moveTo(to, null, conn), false);
  }
  assert.equal(ex.state, EX_DONE);
});

test('an abort goes to whoever holds the exchange now, and only once', async () => {
  const ac = new AbortController();
  const pool = new Holder();
  const connection = new Holder();
  const ex = exchange(ac.signal);
  ex.moveTo(EX_QUEUED, pool, null);
  ex.moveTo(EX_SENT, connection, conn);
  ac.abort();
  assert.equal(pool.aborted.length, 0);
  assert.equal(connection.aborted.length, 1);
  assert.equal(ex.state, EX_DONE);
  await assert.rejects(ex.promise!, { code: 'WARMPOOL_ABORTED' });
});
