/**
 * dnsmasq: a real DNS server on 127.0.0.1:<free port> answering from a hosts file of the test's own
 * (no /etc/hosts, no upstream). It runs in the foreground (`--keep-in-foreground`) as the current user,
 * with its own pid file and no config file, so stop() can kill it and wait for it. setHosts() rewrites
 * the file and sends SIGHUP, on which dnsmasq reads it again; it resolves once dnsmasq answers with
 * the new records. Answers carry `ttl` seconds (`--local-ttl`).
 *
 * dnsmasq is optional on a developer machine but required in CI (`.ci/run` installs dnsmasq-base):
 * dnsmasqOrSkip(t) decides, as nginxOrSkip does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

export function findDnsmasq(): string | null {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of [...dirs, '/usr/sbin', '/usr/local/sbin']) {
    const p = join(d, 'dnsmasq');
    if (existsSync(p)) return p;
  }
  return null;
}

export function dnsmasqOrSkip(t: TestContext): string | null {
  const bin = findDnsmasq();
  if (bin) return bin;
  const msg = 'dnsmasq not installed (apt-get install -y dnsmasq-base); skipping the DNS test';
  if (process.env.CI) throw new Error(`CI is set and ${msg.split(';')[0]}: .ci/run must install it`);
  t.skip(msg);
  return null;
}

export interface Dnsmasq {
  /** '127.0.0.1:<port>', for dns.Resolver's setServers(). */
  server: string;
  /** Replace the records (name → addresses) and wait until dnsmasq answers with them. */
  setHosts(records: Record<string, string[]>): Promise<void>;
  /** Kill dnsmasq, wait for it to exit, remove the temp dir. */
  stop(): Promise<void>;
}

function hostsFile(records: Record<string, string[]>): string {
  let text = '';
  for (const [name, addresses] of Object.entries(records))
    for (const a of addresses) text += `${a} ${name}\n`;
  return text;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** What the server answers for `name` now (sorted), or null if it does not answer. */
function query(server: string, name: string): Promise<string[] | null> {
  const r = new dns.Resolver({ timeout: 200, tries: 1 });
  r.setServers([server]);
  return new Promise((resolve) => {
    r.resolve4(name, (err, addresses) => resolve(err ? null : [...addresses].sort()));
  });
}

export async function startDnsmasq(
  bin: string,
  records: Record<string, string[]>,
  ttlSeconds: number,
): Promise<Dnsmasq> {
  const dir = await mkdtemp(join(tmpdir(), 'warmpool-dnsmasq-'));
  const hosts = join(dir, 'hosts');
  await writeFile(hosts, hostsFile(records));
  const [probeName, probeAddresses] = Object.entries(records)[0]!;
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeUdpPort();
    const server = `127.0.0.1:${port}`;
    const child: ChildProcess = spawn(
      bin,
      [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        `--addn-hosts=${hosts}`,
        `--local-ttl=${ttlSeconds}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        `--port=${port}`,
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        // Stay the current user: as root it would become nobody, who cannot read the temp dir on SIGHUP.
        `--user=${process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root')}`,
        '--log-facility=-',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    const stop = async () => {
      if (!gone) {
        child.kill('SIGTERM');
        await exited;
      }
    };
    const deadline = Date.now() + 5000;
    let up = false;
    while (!up && !gone && Date.now() < deadline) {
      up = (await query(server, probeName))?.join() === [...probeAddresses].sort().join();
      if (!up) await new Promise((r) => setTimeout(r, 25));
    }
    if (!up) {
      lastError = stderr;
      await stop();
      continue;
    }
    return {
      server,
      async setHosts(next) {
        await writeFile(hosts, hostsFile(next));
        child.kill('SIGHUP');
        const [name, addresses] = Object.entries(next)[0]!;
        const want = [...addresses].sort().join();
        const until = Date.now() + 5000;
        while ((await query(server, name))?.join() !== want) {
          if (Date.now() > until) throw new Error(`dnsmasq did not reload ${hosts}: ${stderr}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      },
      async stop() {
        await stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`dnsmasq did not start: ${lastError}`);
}

/**
 * A `lookup` (dns.lookup's shape) that asks `server` through a dns.Resolver, with each address's
 * TTL (seconds), as warmpool's DNS cache can use it. `calls` counts the lookups.
 */
export function resolverLookup(server: string): { lookup: LookupFunction; calls: () => number } {
  const resolver = new dns.Resolver();
  resolver.setServers([server]);
  let calls = 0;
  const lookup = ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    calls++;
    resolver.resolve4(hostname, { ttl: true }, (err, records) => {
      if (err) {
        callback(err, options.all ? [] : '', 4);
        return;
      }
      const addresses = records.map((r) => ({ address: r.address, family: 4, ttl: r.ttl }));
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, 4);
    });
  }) as unknown as LookupFunction;
  return { lookup, calls: () => calls };
}
