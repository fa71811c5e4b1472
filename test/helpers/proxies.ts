/**
 * proxies: real HTTP proxies from Debian (squid, tinyproxy) on 127.0.0.1:<free port>, each with a
 * config file of its own in a temp dir (pid file and logs there too), in the foreground, so stop()
 * can kill it and wait for it.
 *
 * squid: `-N` (no daemon, no kids), no cache (`cache deny all`, memory only), every client on
 * loopback allowed every method to every port, CONNECT included. Run as root it switches to
 * `cache_effective_user` (proxy, Debian's) once its port is bound, so the temp dir is world-writable
 * for its access log. The access log (`log()`) has one line per request: `CONNECT 127.0.0.1:port` for
 * a tunnel, `GET http://…` for an absolute-form request.
 * tinyproxy: `-d` (foreground), Basic auth with the given credentials (a request without them, or
 * with others, gets 407 on CONNECT), every port allowed for CONNECT (no ConnectPort line).
 *
 * Both are optional on a developer machine and required in CI: binaryOrSkip(t, name) decides.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, waitForListener } from './ports.js';

/** Path of a binary on PATH or in the sbin folders, or null. */
export function findBinary(name: string): string | null {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of [...dirs, '/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * The binary, or null after marking the test skipped. In CI (process.env.CI set) a missing binary is
 * a failure, not a skip: this throws. Use: `const bin = binaryOrSkip(t, 'squid'); if (!bin) return;`
 */
export function binaryOrSkip(t: TestContext, name: 'squid' | 'tinyproxy'): string | null {
  const bin = findBinary(name);
  if (bin) return bin;
  const msg = `${name} not installed (apt-get install -y ${name}); skipping the ${name} proxy test`;
  if (process.env.CI) throw new Error(`CI is set and ${name} is not installed: .ci/run must install it`);
  t.skip(msg);
  return null;
}

export interface ProxyInstance {
  /** http://127.0.0.1:port (https:// for squid with `tls`) */
  url: string;
  port: number;
  /** The access log (squid) or the process's output (tinyproxy) so far. */
  log(): Promise<string>;
  /**
   * The log once `re` matches it (squid logs a CONNECT when its tunnel ends); throws after 10 s.
   */
  logMatching(re: RegExp): Promise<string>;
  /** Kill the proxy, wait for it to exit, remove its temp dir. */
  stop(): Promise<void>;
}

const fixtures = new URL('../../../test/fixtures/', import.meta.url);

function squidConfig(dir: string, port: number, tls: boolean): string {
  const listen = tls
    ? `https_port 127.0.0.1:${port} tls-cert=${fileURLToPath(new URL('localhost-cert.pem', fixtures))} tls-key=${fileURLToPath(new URL('localhost-key.pem', fixtures))}`
    : `http_port 127.0.0.1:${port}`;
  return `${listen}
pid_filename ${join(dir, 'squid.pid')}
access_log stdio:${join(dir, 'access.log')}
cache_log ${join(dir, 'cache.log')}
cache_store_log none
cache deny all
cache_mem 4 MB
coredump_dir ${dir}
netdb_filename none
pinger_enable off
logfile_rotate 0
strip_query_terms off
shutdown_lifetime 0 seconds
dns_nameservers 127.0.0.1
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
${process.getuid?.() === 0 ? 'cache_effective_user proxy\n' : ''}`;
}

function tinyproxyConfig(dir: string, port: number, user: string, pass: string): string {
  return `Port ${port}
Listen 127.0.0.1
Timeout 60
MaxClients 64
Allow 127.0.0.1
BasicAuth ${user} ${pass}
PidFile "${join(dir, 'tinyproxy.pid')}"
LogLevel Info
`;
}

async function start(
  name: string,
  bin: string,
  writeConfig: (dir: string, port: number) => { file: string; text: string },
  args: (file: string) => string[],
  logFile: string | undefined,
  scheme = 'http',
): Promise<ProxyInstance> {
  let lastError = '';
  // A free port can be taken between probing and the proxy's bind: try a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), `warmpool-${name}-`));
    await chmod(dir, 0o777); // squid writes its log as its effective user
    const port = await freePort();
    const { file, text } = writeConfig(dir, port);
    await writeFile(join(dir, file), text);
    const child: ChildProcess = spawn(bin, args(join(dir, file)), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const { up, exited } = await waitForListener(child, port, 10_000);
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    };
    if (!up) {
      lastError = output;
      await stop();
      continue;
    }
    const log = async () =>
      logFile === undefined ? output : await readFile(join(dir, logFile), 'utf8').catch(() => '');
    return {
      url: `${scheme}://127.0.0.1:${port}`,
      port,
      log,
      logMatching: async (re) => {
        const until = Date.now() + 10_000;
        for (;;) {
          const text = await log();
          if (re.test(text)) return text;
          if (Date.now() > until) throw new Error(`${name}'s log never matched ${re}:\n${text}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      stop,
    };
  }
  throw new Error(`${name} did not start: ${lastError}`);
}

/**
 * squid on a free loopback port, allowing CONNECT and absolute-form requests to any port. `tls`: an
 * https:// proxy (squid's https_port with the test certificate; trust it with `{ ca: TEST_CERT }`).
 */
export function startSquid(
  bin = findBinary('squid'),
  options: { tls?: boolean } = {},
): Promise<ProxyInstance> {
  if (!bin) throw new Error('squid not found');
  const tls = options.tls === true;
  return start(
    'squid',
    bin,
    (dir, port) => ({ file: 'squid.conf', text: squidConfig(dir, port, tls) }),
    (file) => ['-N', '-f', file],
    'access.log',
    tls ? 'https' : 'http',
  );
}

/** tinyproxy on a free loopback port, requiring Basic credentials `user`:`pass`. */
export function startTinyproxy(
  user: string,
  pass: string,
  bin = findBinary('tinyproxy'),
): Promise<ProxyInstance> {
  if (!bin) throw new Error('tinyproxy not found');
  return start(
    'tinyproxy',
    bin,
    (dir, port) => ({ file: 'tinyproxy.conf', text: tinyproxyConfig(dir, port, user, pass) }),
    (file) => ['-d', '-c', file],
    undefined,
  );
}
