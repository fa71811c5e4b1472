// What else the machine did while the bench ran: the CPU time that went to processes other than the
// bench and its children, and the hypervisor's steal, from /proc (Linux). A load average read at the
// start says little: `npm run bench` compiles first, and the compiler's load is still in it.
import { readFileSync } from 'node:fs';

/** Clock ticks, from /proc/stat's "cpu" line and /proc/self/stat. */
export interface CpuSnapshot {
  /** All CPUs: time doing anything (user, nice, system, irq, softirq). */
  busy: number;
  /** All CPUs: busy, idle, iowait and steal together. */
  total: number;
  /** All CPUs: time the hypervisor gave to other guests while this one wanted to run. */
  steal: number;
  /** This process and the children it has waited for (the bench's servers and scenario children). */
  own: number;
}

/** Parses the two files' text; undefined when they do not look like Linux's. */
export function parseCpuSnapshot(procStat: string, selfStat: string): CpuSnapshot | undefined {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  const close = selfStat.lastIndexOf(')'); // the command name may contain spaces and parentheses
  if (line === undefined || close === -1) return undefined;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  // After "pid (comm) ": state is field 0, utime 11, stime 12, cutime 13, cstime 14.
  const self = selfStat
    .slice(close + 2)
    .split(' ')
    .map(Number);
  const values = [
    user,
    nice,
    system,
    idle,
    iowait,
    irq,
    softirq,
    steal,
    self[11],
    self[12],
    self[13],
    self[14],
  ];
  if (values.some((v) => v === undefined || !Number.isFinite(v))) return undefined;
  const busy = user! + nice! + system! + irq! + softirq!;
  return {
    busy,
    total: busy + idle! + iowait! + steal!,
    steal: steal!,
    own: self[11]! + self[12]! + self[13]! + self[14]!,
  };
}

export function cpuSnapshot(): CpuSnapshot | undefined {
  try {
    return parseCpuSnapshot(readFileSync('/proc/stat', 'utf8'), readFileSync('/proc/self/stat', 'utf8'));
  } catch {
    return undefined; // not Linux
  }
}

/** Between two snapshots: the share of all CPUs' time others used, and the share stolen. */
export function machineShare(a: CpuSnapshot, b: CpuSnapshot): { others: number; steal: number } {
  const total = b.total - a.total;
  if (total <= 0) return { others: 0, steal: 0 };
  const others = b.busy - a.busy - (b.own - a.own);
  return { others: Math.max(0, others) / total, steal: (b.steal - a.steal) / total };
}
