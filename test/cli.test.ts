/**
 * The `warmpool` command, run as a user runs it (node on the built entry, a child process), against
 * real local servers: nginx with a known keepalive_timeout and keepalive_requests, a node:http2 server
 * over TLS with a known SETTINGS_MAX_CONCURRENT_STREAMS, and a Nagle'd server. The measured values
 * must match the configuration; no timing threshold is asserted beyond that match.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { repoRootFrom } from './helpers/conformance-cases.js';
import { startH2Server } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { nginxOrSkip, startNginx } from './helpers/nginx.js';

const T = 120_000;
const ROOT = repoRootFrom(import.meta.url);
const CLI = path.join(ROOT, 'build', 'src', 'cli', 'main.js');
const CA = path.join(ROOT, 'test', 'fixtures', 'localhost-cert.pem');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function warmpool(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      timeout: 100_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Within 10 % of the configured value. */
function near(measured: number, configured: number, what: string): void {
  assert.ok(
    Math.abs(measured - configured) <= configured * 0.1,
    `${what}: measured ${measured}, configured ${configured}`,
  );
}

test(
  'doctor --json against nginx: the idle timeout and the request cap it is configured with, not its Keep-Alive claim',
  { timeout: T },
  async (t) => {
    if (!nginxOrSkip(t)) return;
    // keepalive_timeout 2s 10s: nginx closes idle connections after 2 s but its header claims 10.
    const nginx = await startNginx({ keepaliveTimeout: '2s 10s', keepaliveRequests: 7 });
    try {
      const run = await warmpool('doctor', `${nginx.url}/`, '--json', '--budget', '15');
      assert.equal(run.code, 0, run.stderr);
      const r = JSON.parse(run.stdout);
      assert.equal(r.url, `${nginx.url}/`);
      assert.equal(r.protocol, 'http/1.1');
      near(r.idleTimeoutMs, 2000, 'idle timeout');
      assert.equal(r.maxRequestsPerConnection, 7);
      assert.equal(r.keepAliveHeader, 'timeout=10');
      assert.equal(r.tls, undefined);
      assert.equal(r.http2, undefined);
      assert.equal(r.keepAliveStall.verdict, 'ok');
      assert.equal(typeof r.keepAliveStall.explanation, 'string');
      // Below the measured timeout by warmpool's margin (500 ms at 2 s), and the measured cap.
      assert.ok(r.recommended.idleTimeout < r.idleTimeoutMs && r.recommended.idleTimeout >= 1000);
      assert.equal(r.recommended.maxRequestsPerConnection, 7);
    } finally {
      await nginx.stop();
    }
  },
);

test('doctor (text) prints the table and the code to paste', { timeout: T }, async (t) => {
  if (!nginxOrSkip(t)) return;
  const nginx = await startNginx({ keepaliveTimeout: '1s', keepaliveRequests: 3 });
  try {
    const run = await warmpool('doctor', `${nginx.url}/`, '--budget', '10');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /requests per connection\s+3\n/);
    assert.match(run.stdout, /idle timeout \(measured\)\s+\d+ ms/);
    assert.match(run.stdout, /new Agent\(\{ idleTimeout: \d+, maxRequestsPerConnection: 3 \}\)/);
    assert.equal(run.stderr, ''); // no progress line when stderr is not a terminal
  } finally {
    await nginx.stop();
  }
});

test(
  'doctor over TLS + HTTP/2: ALPN, TLS version, resumption, the SETTINGS the server sends',
  { timeout: T },
  async () => {
    const srv = await startH2Server({ settings: { maxConcurrentStreams: 7, initialWindowSize: 100_000 } });
    try {
      const run = await warmpool('doctor', srv.url, '--json', '--budget', '4', '--ca', CA);
      assert.equal(run.code, 0, run.stderr);
      const r = JSON.parse(run.stdout);
      assert.equal(r.protocol, 'h2');
      assert.deepEqual(r.http2, { maxConcurrentStreams: 7, initialWindowSize: 100_000 });
      assert.deepEqual(r.tls, { version: 'TLSv1.3', alpn: 'h2', sessionResumed: true });
      assert.equal(r.keepAliveHeader, null);
      // node:http2 has no idle timeout and no request cap: none seen within the budget and the bound.
      assert.equal(r.idleTimeoutMs, null);
      assert.equal(r.maxRequestsPerConnection, null);
      assert.deepEqual(r.recommended, { idleTimeout: 4000, maxRequestsPerConnection: 0 });
    } finally {
      await srv.close();
    }
  },
);

test(
  "doctor against a Nagle server reports the keep-alive stall with probeKeepAlive's verdict",
  { timeout: T },
  async () => {
    // Head and body in two writes with TCP_NODELAY off: the body waits for the ACK of the head.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.setNoDelay(false);
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n')) {
          const head = buf.slice(0, i);
          buf = buf.slice(i + 4);
          const close = /\r\nconnection: close/i.test(head);
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\n${close ? 'connection: close\r\n' : ''}\r\n`);
          if (!head.startsWith('HEAD ')) s.write('hello');
          if (close) s.end();
        }
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
    try {
      const run = await warmpool('doctor', url, '--json', '--budget', '8');
      assert.equal(run.code, 0, run.stderr);
      const r = JSON.parse(run.stdout);
      assert.equal(r.keepAliveStall.verdict, 'nagle-delayed-ack');
      assert.match(r.keepAliveStall.explanation, /TCP_NODELAY/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  },
);

test(
  'get -v prints the status, the headers, the body, and the connection and timings table',
  { timeout: T },
  async () => {
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(201, { 'x-one': 'a' });
      res.end('body text');
    });
    try {
      const run = await warmpool('get', `${srv.url}/x`, '-v');
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^HTTP\/1\.1 201 Created\n/);
      assert.match(run.stdout, /\nx-one: a\n/);
      assert.ok(run.stdout.endsWith('\n\nbody text'));
      assert.match(run.stderr, /connection\s+#\d+ http\/1\.1, new, request 1/);
      assert.match(run.stderr, /first byte\s+\d+\.\d ms/);
      assert.match(run.stderr, /DNS\s+-/); // an IP address: no lookup
    } finally {
      await srv.close();
    }
  },
);

test('usage errors exit 2, failures exit 1, each with one line on stderr', { timeout: T }, async () => {
  const none = await warmpool();
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^warmpool: no command\nusage:/);
  const bad = await warmpool('doctor', 'ftp://example.com/');
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'warmpool: only http: and https: URLs can be measured, got ftp:\n');
  const flag = await warmpool('get', 'http://127.0.0.1/', '--nope');
  assert.equal(flag.code, 2);
  const help = await warmpool('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /doctor <url> \[--json\]/);
  // A port nothing listens on.
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const refused = await warmpool('get', `http://127.0.0.1:${port}/`);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^warmpool: WARMPOOL_CONNECT_ERROR: [^\n]+\n$/);
});

test(
  'doctor against nginx over TLS with HTTP/2: http2_max_concurrent_streams, the idle timeout and the request cap as configured',
  { timeout: T },
  async (t) => {
    if (!nginxOrSkip(t)) return;
    const nginx = await startNginx({
      tls: true,
      http2: true,
      keepaliveTimeout: '2s',
      keepaliveRequests: 9,
      extraServerConfig: '    http2_max_concurrent_streams 7;\n',
    });
    try {
      const run = await warmpool('doctor', `${nginx.url}/`, '--json', '--budget', '15', '--ca', CA);
      assert.equal(run.code, 0, run.stderr);
      const r = JSON.parse(run.stdout);
      assert.equal(r.protocol, 'h2');
      assert.equal(r.http2.maxConcurrentStreams, 7);
      assert.equal(r.tls.alpn, 'h2');
      assert.match(r.tls.version, /^TLSv1\.[23]$/);
      assert.equal(r.tls.sessionResumed, true);
      near(r.idleTimeoutMs, 2000, 'idle timeout over h2');
      assert.equal(r.maxRequestsPerConnection, 9);
      assert.equal(r.recommended.maxRequestsPerConnection, 9);
    } finally {
      await nginx.stop();
    }
  },
);
