#!/usr/bin/env node
/**
 * The `warmpool` command: `doctor` (what a server does with connections, and the Agent settings for
 * it) and `get` (one request, with the connection facts and phase timings). Exit codes: 0 done,
 * 1 the request or measurement failed, 2 a usage error. Errors are one line on stderr.
 */
import { readFileSync } from 'node:fs';
import { Client } from '../client/client.js';
import { InvalidArgumentError } from '../errors.js';
import { Agent } from '../pool/agent.js';
import { type DoctorReport, doctor } from './doctor.js';

const USAGE = `usage: warmpool <command> [options]

commands:
  doctor <url> [--json] [--budget <seconds>] [--ca <file>] [--insecure]
      measure what the server does with connections (idle timeout, requests per connection,
      HTTP/2 SETTINGS, TLS resumption, keep-alive stall) and recommend Agent settings
  get <url> [-v] [--ca <file>] [--insecure]
      send one GET; print the status, the headers and the body (-v: the connection and timings)

exit codes: 0 done, 1 the request or measurement failed, 2 usage error`;

class UsageError extends Error {}

interface Parsed {
  command: string;
  url: string;
  flags: Set<string>;
  values: Map<string, string>;
}

const FLAGS = new Set(['--json', '--insecure', '-v', '--verbose', '-h', '--help']);
const VALUES = new Set(['--budget', '--ca']);

function parse(argv: string[]): Parsed {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (FLAGS.has(a)) flags.add(a);
    else if (VALUES.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      values.set(a, v);
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  if (flags.has('-h') || flags.has('--help')) return { command: 'help', url: '', flags, values };
  const [command, url, ...rest] = positional;
  if (command === undefined) throw new UsageError('no command');
  if (command !== 'doctor' && command !== 'get') throw new UsageError(`unknown command ${command}`);
  if (url === undefined) throw new UsageError(`${command} needs a URL`);
  if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
  return { command, url, flags, values };
}

function tlsOptions(p: Parsed): { ca?: Buffer; insecure: boolean } {
  const file = p.values.get('--ca');
  let ca: Buffer | undefined;
  if (file !== undefined) {
    try {
      ca = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read --ca ${file}: ${(err as Error).message}`);
    }
  }
  return { ca, insecure: p.flags.has('--insecure') };
}

/** Rows of [label, value] as two aligned columns. */
function table(rows: Array<[string, string]>, indent = '  '): string {
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join('\n');
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(1)} ms`);

function formatReport(r: DoctorReport): string {
  const rows: Array<[string, string]> = [['protocol', r.protocol]];
  rows.push(['status', String(r.status)]);
  if (r.server !== null) rows.push(['server', r.server]);
  if (r.tls !== undefined) {
    rows.push(['TLS', `${r.tls.version ?? '?'}, ALPN ${r.tls.alpn ?? 'none'}`]);
    rows.push(['TLS session resumption', r.tls.sessionResumed ? 'works' : 'no']);
  }
  if (r.http2 !== undefined) {
    rows.push(['HTTP/2 max concurrent streams', String(r.http2.maxConcurrentStreams ?? 'not set')]);
    rows.push(['HTTP/2 initial window', String(r.http2.initialWindowSize ?? 'not set')]);
  }
  rows.push([
    'idle timeout (measured)',
    r.idleTimeoutMs === null ? `none seen within ${r.budgetMs / 1000} s` : `${r.idleTimeoutMs} ms`,
  ]);
  rows.push(['Keep-Alive header (claimed)', r.keepAliveHeader ?? 'none']);
  rows.push([
    'requests per connection',
    r.maxRequestsPerConnection === null ? 'no cap seen' : String(r.maxRequestsPerConnection),
  ]);
  rows.push(['keep-alive stall', r.keepAliveStall === null ? 'not measured' : r.keepAliveStall.verdict]);
  const rec = r.recommended;
  const out = [`warmpool doctor ${r.url}  (${(r.elapsedMs / 1000).toFixed(1)} s)`, table(rows)];
  if (r.keepAliveStall !== null && r.keepAliveStall.verdict !== 'ok')
    out.push(`\n  ${r.keepAliveStall.explanation}`);
  for (const n of r.notes) out.push(`  note: ${n}`);
  out.push(
    '',
    'recommended Agent settings',
    table([
      ['idleTimeout', `${rec.idleTimeout}`],
      [
        'maxRequestsPerConnection',
        `${rec.maxRequestsPerConnection}${rec.maxRequestsPerConnection === 0 ? ' (no limit)' : ''}`,
      ],
    ]),
    '',
    `  new Agent({ idleTimeout: ${rec.idleTimeout}, maxRequestsPerConnection: ${rec.maxRequestsPerConnection} })`,
  );
  return out.join('\n');
}

async function runDoctor(p: Parsed): Promise<void> {
  let budgetMs: number | undefined;
  const budget = p.values.get('--budget');
  if (budget !== undefined) {
    const s = Number(budget);
    if (!Number.isFinite(s) || s <= 0)
      throw new UsageError(`--budget must be a number of seconds, got ${budget}`);
    budgetMs = s * 1000;
  }
  const { ca, insecure } = tlsOptions(p);
  const tty = process.stderr.isTTY === true;
  const report = await doctor(p.url, {
    budgetMs,
    ca,
    insecure,
    onProgress: tty ? (what) => process.stderr.write(`\r\x1b[Kwarmpool doctor: ${what}…`) : undefined,
  });
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(`${p.flags.has('--json') ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
}

async function runGet(p: Parsed): Promise<void> {
  const { ca, insecure } = tlsOptions(p);
  const agent = new Agent({ tls: { ca, rejectUnauthorized: insecure ? false : undefined } });
  try {
    const res = await new Client({ agent }).request(p.url);
    const body = await res.body.bytes();
    const out: string[] = [`HTTP/${res.httpVersion} ${res.status} ${res.statusText}`];
    for (const [name, value] of Object.entries(res.headers)) {
      for (const v of Array.isArray(value) ? value : [value]) out.push(`${name}: ${v}`);
    }
    if (p.flags.has('-v') || p.flags.has('--verbose')) {
      const c = res.connection;
      const t = res.timings;
      process.stderr.write(
        `${table([
          ['connection', `#${c.id} ${c.protocol}, ${c.reused ? 'reused' : 'new'}, request ${c.requestCount}`],
          ['queued', ms(t.queuedMs)],
          ['DNS', ms(t.dnsMs)],
          ['connect', ms(t.connectMs)],
          ['TLS', ms(t.tlsMs)],
          ['first byte', ms(t.ttfbMs)],
        ])}\n`,
      );
    }
    process.stdout.write(`${out.join('\n')}\n\n`);
    process.stdout.write(body);
  } finally {
    await agent.destroy();
  }
}

async function main(argv: string[]): Promise<number> {
  let p: Parsed;
  try {
    p = parse(argv);
  } catch (err) {
    process.stderr.write(`warmpool: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (p.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    if (p.command === 'doctor') await runDoctor(p);
    else await runGet(p);
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (err instanceof UsageError || err instanceof InvalidArgumentError) {
      process.stderr.write(`warmpool: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(
      `warmpool: ${e.code !== undefined ? `${e.code}: ` : ''}${e.message.split('\n')[0]}\n`,
    );
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`warmpool: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
