// Memory per idle connection: each client opens n keep-alive connections in a process of its own
// (memory-child.ts, with --expose-gc so both measurements follow a full collection), and the growth of
// heap, external memory (Buffers) and RSS is divided by the connections it added.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep, startServer } from '../common.js';
import type { Table } from '../report.js';
import type { Scenario } from './index.js';
import type { MemoryReport } from './memory-child.js';

const KIB = 1024;

export const memory: Scenario = {
  name: 'scenario: memory per idle connection',
  async run({ warmpool }) {
    const n = 1000;
    const kinds = [...(warmpool ? ['warmpool'] : []), 'undici', 'node:http', 'raw'];
    const server = await startServer();
    const rows: Table['rows'] = [];
    try {
      for (const kind of kinds) {
        // Start from an empty server, so "open" counts this child's connections only.
        for (let i = 0; i < 40 && (await server.stats()).open > 0; i++) await sleep(50);
        const child = fork(
          fileURLToPath(new URL('./memory-child.js', import.meta.url)),
          [kind, server.origin, String(n)],
          { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
        );
        const report = await new Promise<MemoryReport | { error: string }>((resolve) => {
          const timer = setTimeout(() => resolve({ error: 'timed out' }), 30_000);
          child.once('message', (m: MemoryReport) => {
            clearTimeout(timer);
            resolve(m);
          });
          child.once('exit', (code) => resolve({ error: `exited with code ${code}` }));
        });
        // The server's own count, taken while the child still holds its connections.
        const { open } = await server.stats();
        await new Promise((resolve) => {
          child.once('exit', resolve);
          if (child.exitCode !== null) resolve(undefined);
          else child.send('exit');
        });
        if ('error' in report && report.error) {
          rows.push([kind === 'raw' ? 'raw socket (floor)' : kind, open, '-', '-', '-', report.error]);
          continue;
        }
        const { before, after } = report as MemoryReport;
        const added = open - 1; // one connection was open before the first measurement
        const per = (a: number, b: number) => (b - a) / added / KIB;
        rows.push([
          kind === 'raw' ? 'raw socket (floor)' : kind,
          open,
          per(before.heapUsed, after.heapUsed),
          per(before.external, after.external),
          per(before.rss, after.rss),
          '',
        ]);
      }
    } finally {
      await server.close();
    }
    return {
      title: `Memory per idle keep-alive connection (${n} connections, one process per client)`,
      note:
        '"open" is what the server counted while the client held them. KiB per connection = growth ' +
        'after a full GC, divided by the connections added.',
      columns: ['client', 'open', 'heap KiB/conn', 'external KiB/conn', 'RSS KiB/conn', 'error'],
      rows,
    };
  },
};
