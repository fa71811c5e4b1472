/**
 * nginx: run a real nginx as an interop peer on 127.0.0.1:<free port>.
 *
 * Everything lives in its own temp dir (conf, pid, logs, temp paths), so it runs as root without
 * touching /var or /etc; it runs in the foreground as a single process (`daemon off;
 * master_process off;`) so stop() can kill it and wait for it.
 *
 * Locations: `/` answers 200 "ok\n"; `/echo` answers 200 "echo\n" to any method (the request body
 * is read and discarded); `/close` answers with `Connection: close`. The access log line is
 * `$connection $connection_requests $request_method $request_uri $status $http_x_request_id`, so a
 * test can count connections and requests per connection with accessLog().
 *
 * nginx is optional on a developer machine but required in CI: nginxOrSkip(t) decides.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, waitForListener } from './ports.js';

/** Path of an nginx binary on PATH or at /usr/sbin/nginx, or null. */
export function findNginx(): string | null {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of [...dirs, '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']) {
    const p = join(d, 'nginx');
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * The nginx binary, or null after marking the test skipped. In CI (process.env.CI set) a missing
 * nginx is a failure, not a skip: this throws. Use: `const bin = nginxOrSkip(t); if (!bin) return;`
 */
export function nginxOrSkip(t: TestContext): string | null {
  const bin = findNginx();
  if (bin) return bin;
  const msg = 'nginx not installed (apt-get install -y nginx-light); skipping the nginx interop test';
  if (process.env.CI) throw new Error(`CI is set and ${msg.split(';')[0]}: .ci/run must install it`);
  t.skip(msg);
  return null;
}

export interface NginxOptions {
  /** nginx `keepalive_timeout`, e.g. '5s' or '500ms'. Default '75s'. */
  keepaliveTimeout?: string;
  /** nginx `keepalive_requests`. Default 1000. */
  keepaliveRequests?: number;
  /** Extra directives inside `server { }`. */
  extraServerConfig?: string;
  /**
   * More loopback addresses to listen on, on the same port (e.g. '127.0.0.2'): each is another
   * origin to the client, with a pool of its own.
   */
  alsoListenOn?: string[];
  /**
   * Unix domain sockets to listen on too (paths), each with `http2` for HTTP/2 by prior knowledge
   * (h2c; nginx 1.22's `listen ... http2` without ssl).
   */
  unixSockets?: Array<{ path: string; http2?: boolean }>;
  bin?: string;
  /** Listen with TLS (the test certificate, test/fixtures/localhost-*.pem): the URL is https. */
  tls?: boolean;
  /** With `tls`: offer HTTP/2 by ALPN too. */
  http2?: boolean;
}

const fixtures = new URL('../../../test/fixtures/', import.meta.url);

export interface AccessLogEntry {
  connection: number;
  connectionRequests: number;
  method: string;
  uri: string;
  status: number;
  requestId: string | undefined;
}

export interface NginxInstance {
  url: string;
  port: number;
  prefix: string;
  process: ChildProcess;
  /** Parsed access log lines so far. */
  accessLog(): Promise<AccessLogEntry[]>;
  errorLog(): Promise<string>;
  /** Kill nginx, wait for it to exit, remove the temp dir. */
  stop(): Promise<void>;
}

function config(prefix: string, port: number, o: NginxOptions, hasModule: (m: string) => boolean): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .filter((m) => m === 'client_body' || hasModule(m))
    .map((m) => `  ${m}_temp_path ${join(prefix, `${m}_temp`)};`)
    .join('\n');
  return `daemon off;
master_process off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} info;
events { worker_connections 256; }
http {
  default_type text/plain;
  log_format conns '$connection $connection_requests $request_method $request_uri $status "$http_x_request_id"';
  access_log ${join(prefix, 'access.log')} conns;
${temp}
  keepalive_timeout ${o.keepaliveTimeout ?? '75s'};
  keepalive_requests ${o.keepaliveRequests ?? 1000};
  server {
    listen 127.0.0.1:${port}${o.tls ? ' ssl' : ''}${o.tls && o.http2 ? ' http2' : ''};
${o.tls ? `    ssl_certificate ${fileURLToPath(new URL('localhost-cert.pem', fixtures))};\n    ssl_certificate_key ${fileURLToPath(new URL('localhost-key.pem', fixtures))};\n` : ''}${(o.alsoListenOn ?? []).map((host) => `    listen ${host}:${port};\n`).join('')}${(o.unixSockets ?? []).map((u) => `    listen unix:${u.path}${u.http2 ? ' http2' : ''};\n`).join('')}    location / { return 200 "ok\\n"; }
    location /echo { return 200 "echo\\n"; }
    location /close { keepalive_timeout 0; return 200 "closing\\n"; }
${o.extraServerConfig ?? ''}
  }
}
`;
}

/** Start nginx on a free loopback port; resolves once the port accepts connections. */
export async function startNginx(opts: NginxOptions = {}): Promise<NginxInstance> {
  const bin = opts.bin ?? findNginx();
  if (!bin) throw new Error('nginx not found');
  // `nginx -V` prints its configure arguments on stderr.
  const v = spawnSync(bin, ['-V'], { encoding: 'utf8' });
  const configure = `${v.stdout ?? ''}${v.stderr ?? ''}`;
  const hasModule = (m: string) => !configure.includes(`--without-http_${m}_module`);

  // A free port can be taken between probing and nginx's bind: try a few times.
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const prefix = await mkdtemp(join(tmpdir(), 'warmpool-nginx-'));
    const port = await freePort();
    await writeFile(join(prefix, 'nginx.conf'), config(prefix, port, opts, hasModule));
    const child = spawn(
      bin,
      ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const { up, exited } = await waitForListener(child, port, 5000);
    const readLog = (name: string) => readFile(join(prefix, name), 'utf8').catch(() => '');
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(killer);
      }
      await rm(prefix, { recursive: true, force: true });
    };
    if (!up) {
      lastError = `${stderr}\n${await readLog('error.log')}`.trim();
      await stop();
      continue;
    }
    return {
      url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
      port,
      prefix,
      process: child,
      stop,
      errorLog: () => readLog('error.log'),
      accessLog: async () =>
        (await readLog('access.log'))
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const [connection, requests, method, uri, status, id] = line.split(' ');
            const requestId = id?.replace(/^"|"$/g, '');
            return {
              connection: Number(connection),
              connectionRequests: Number(requests),
              method,
              uri,
              status: Number(status),
              requestId: requestId && requestId !== '-' ? requestId : undefined,
            };
          }),
    };
  }
  throw new Error(`nginx did not start: ${lastError}`);
}
