/** The bench's round order (bench/order.ts): every client runs right after every other equally often. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { roundOrder } from '../bench/order.js';

/** How often client b ran right after client a within a round, over the first `rounds` rounds. */
function followCounts(n: number, rounds: number): number[][] {
  const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let r = 0; r < rounds; r++) {
    const row = roundOrder(n, r);
    for (let i = 1; i < n; i++) counts[row[i - 1]!]![row[i]!]!++;
  }
  return counts;
}

test('each round runs every client exactly once', () => {
  for (let n = 1; n <= 7; n++) {
    for (let r = 0; r < 2 * n; r++) {
      assert.deepEqual(
        [...roundOrder(n, r)].sort((a, b) => a - b),
        Array.from({ length: n }, (_, i) => i),
      );
    }
  }
});

test('within the rounds, every client runs right after every other client equally often', () => {
  for (const n of [2, 3, 4, 5, 6]) {
    const counts = followCounts(n, n % 2 === 0 ? n : 2 * n);
    const expected = n % 2 === 0 ? 1 : 2;
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        if (a !== b) assert.equal(counts[a]![b], expected, `n=${n}: ${b} after ${a}`);
      }
    }
  }
});

test('in the 7 rounds of a bench cell, every client runs right after each of the others (a fixed rotation: after one)', () => {
  for (const n of [4, 6]) {
    const counts = followCounts(n, 7);
    for (let b = 0; b < n; b++) {
      const predecessors = counts.filter((row) => row[b]! > 0).length;
      assert.equal(predecessors, n - 1, `n=${n}: client ${b} ran after ${predecessors} other client(s)`);
    }
  }
});
