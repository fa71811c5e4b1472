/**
 * The bench's account of what else the machine did during a run (bench/machine-load.ts) and the
 * warning it leads to (loadWarning in bench/report.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuSnapshot, machineShare, parseCpuSnapshot } from '../bench/machine-load.js';
import { loadWarning } from '../bench/report.js';

const PROC_STAT = [
  'cpu  1000 20 300 5000 40 5 6 70 0 0',
  'cpu0 500 10 150 2500 20 2 3 35 0 0',
  'intr 12345',
].join('\n');
// The command name may hold spaces and parentheses: fields count from the last ')'.
const SELF_STAT = `4242 (node (bench) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 ${[110, 12, 30, 4].join(' ')} 20 0 7 0`;

test('a snapshot reads all CPUs from /proc/stat and this process with its waited-for children', () => {
  assert.deepEqual(parseCpuSnapshot(PROC_STAT, SELF_STAT), {
    busy: 1000 + 20 + 300 + 5 + 6,
    total: 1000 + 20 + 300 + 5 + 6 + 5000 + 40 + 70,
    steal: 70,
    own: 110 + 12 + 30 + 4,
  });
  assert.equal(parseCpuSnapshot('intr 1', SELF_STAT), undefined);
  assert.equal(parseCpuSnapshot(PROC_STAT, 'garbage'), undefined);
});

test("others' share is the machine's busy time less the bench's own, over all CPUs' time", () => {
  const a = { busy: 1000, total: 10_000, steal: 100, own: 400 };
  const b = { busy: 1600, total: 11_000, steal: 150, own: 800 };
  assert.deepEqual(machineShare(a, b), { others: 0.2, steal: 0.05 });
  // Tick rounding can make the bench's own time exceed the machine's busy time: never below 0.
  assert.deepEqual(machineShare(a, { ...b, own: 1100 }), { others: 0, steal: 0.05 });
});

test(
  "on Linux, CPU this process burns is counted as its own, not as others'",
  { skip: process.platform !== 'linux' },
  () => {
    const a = cpuSnapshot();
    assert.ok(a !== undefined);
    const end = performance.now() + 200;
    while (performance.now() < end) {
      // spin: CPU time that must land in this process's utime
    }
    const b = cpuSnapshot()!;
    assert.ok(b.own > a.own, `own ticks ${a.own} -> ${b.own}`);
    assert.ok(b.busy >= a.busy && b.total > a.total);
  },
);

test('the warning follows what others used during the run, else the load average at the start', () => {
  const base = { cores: 2, loadavg: 1.5 };
  assert.equal(loadWarning({ ...base, othersCpu: 0.02, stealCpu: 0.01 }), undefined);
  assert.match(loadWarning({ ...base, othersCpu: 0.25, stealCpu: 0 }) ?? '', /other processes used 25\.0 %/);
  assert.match(loadWarning({ ...base, othersCpu: 0, stealCpu: 0.12 }) ?? '', /stole 12\.0 %/);
  assert.match(loadWarning(base) ?? '', /load average 1\.5/);
  assert.equal(loadWarning({ cores: 2, loadavg: 0.4 }), undefined);
});
