/**
 * `warmpool doctor`: what a server does with connections, measured from the outside. Headers are only
 * hints (a server's Keep-Alive header, when it sends one, is printed beside what it did), and so the
 * idle timeout and the request cap are measured on connections of the doctor's own, outside any pool:
 * a pool would honour the hints (and its own idleTimeout) and close first, hiding what the server does.
 *
 * - Idle timeout: one request on a connection, then the connection is left idle and watched; the
 *   server's FIN (HTTP/2: its GOAWAY and close) after t ms of idleness is the timeout, to the
 *   millisecond or so (the server's timer started when it sent the response, a half round trip before
 *   the doctor's; nginx's 3 s read as 3003 ms). A server that keeps it past the budget has no timeout
 *   the doctor can see (null); nor has one that drops idle connections silently (no FIN).
 * - Request cap: requests one after another on one connection until the server says `Connection:
 *   close` (HTTP/2: GOAWAY) or closes it, up to a bound.
 * - The keep-alive stall: probeKeepAlive's verdict (src/probe/keep-alive-probe.ts).
 * - TLS: the version and ALPN of a handshake, and whether a second handshake resumes the first's session.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { Client } from '../client/client.js';
import { InvalidArgumentError } from '../errors.js';
import { Agent } from '../pool/agent.js';
import { AGENT_DEFAULTS } from '../pool/options.js';
import { idleMarginFor } from '../pool/server-idle-timeout.js';
import { type KeepAliveVerdict, probeKeepAlive } from '../probe/keep-alive-probe.js';

export interface DoctorOptions {
  /** The whole measurement's time budget, ms. Default 60 000. */
  budgetMs?: number;
  /** Trusted CA certificates (PEM) besides Node's. */
  ca?: string | Buffer;
  /** Skip certificate verification. */
  insecure?: boolean;
  /** Requests on one connection before the cap is called unseen. Default 1 000. */
  maxRequests?: number;
  /** Told what the doctor is doing now, for a progress line. */
  onProgress?: (what: string) => void;
}

export interface DoctorReport {
  url: string;
  protocol: 'http/1.1' | 'h2';
  /** The status of a GET to the URL. */
  status: number;
  /** The `server` header, if any. */
  server: string | null;
  /** The idle time after which the server closed a connection, ms; null when not within the budget. */
  idleTimeoutMs: number | null;
  /** Requests the server served on one connection before closing it; null when not within the bound. */
  maxRequestsPerConnection: number | null;
  /** Over HTTP/2: the server's SETTINGS. */
  http2?: { maxConcurrentStreams: number | null; initialWindowSize: number | null };
  /** Over TLS. */
  tls?: { version: string | null; alpn: string | null; sessionResumed: boolean };
  /** The `Keep-Alive` header the server sent (HTTP/1.1), or null. */
  keepAliveHeader: string | null;
  keepAliveStall: { verdict: KeepAliveVerdict; explanation: string } | null;
  /** Agent settings for this server. */
  recommended: { idleTimeout: number; maxRequestsPerConnection: number };
  /** What the doctor could not measure, and why. */
  notes: string[];
  budgetMs: number;
  elapsedMs: number;
}

interface Target {
  url: URL;
  secure: boolean;
  host: string;
  port: number;
  path: string;
  tls: tls.ConnectionOptions;
}

const DEFAULT_BUDGET_MS = 60_000;

export async function doctor(url: string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const started = performance.now();
  const budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
  const deadline = started + budgetMs;
  const progress = options.onProgress ?? (() => {});
  const target = targetOf(url, options);
  const notes: string[] = [];
  const agentTls = {
    ca: options.ca,
    rejectUnauthorized: options.insecure === true ? false : undefined,
  };

  // The protocol, the status and the headers, as a client of the server sees them.
  progress('first request');
  const agent = new Agent({ tls: agentTls, connectTimeout: Math.min(10_000, budgetMs) });
  let protocol: 'http/1.1' | 'h2';
  let status: number;
  let server: string | null;
  let keepAliveHeader: string | null;
  try {
    const res = await new Client({ agent }).request(target.url.href);
    await res.body.dump();
    protocol = res.connection.protocol;
    status = res.status;
    server = headerOf(res.headers.server);
    keepAliveHeader = headerOf(res.headers['keep-alive']);
  } finally {
    await agent.destroy();
  }

  let tlsFacts: DoctorReport['tls'];
  if (target.secure) {
    progress('TLS handshake and resumption');
    tlsFacts = await tlsOf(target);
  }
  let h2: DoctorReport['http2'];
  if (protocol === 'h2') {
    progress('HTTP/2 SETTINGS');
    h2 = await h2Settings(target);
  }

  // The idle watch runs for the rest of the budget at most; the cap and the stall are measured meanwhile.
  const idle = protocol === 'h2' ? h2IdleTimeout(target, deadline) : h1IdleTimeout(target, deadline);
  progress('request cap per connection');
  const maxRequests = options.maxRequests ?? 1000;
  const cap =
    protocol === 'h2'
      ? await h2RequestCap(target, maxRequests, deadline)
      : await h1RequestCap(target, maxRequests, deadline);
  if (cap === null) notes.push(`no request cap seen within ${maxRequests} requests on one connection`);

  let stall: DoctorReport['keepAliveStall'] = null;
  if (performance.now() < deadline - 2_000) {
    progress('keep-alive stall (probeKeepAlive)');
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), Math.max(0, deadline - performance.now()));
    try {
      const r = await probeKeepAlive(target.url.href, {
        samples: 10,
        agent: { tls: agentTls },
        signal: ac.signal,
      });
      stall = { verdict: r.verdict, explanation: r.explanation };
    } catch (err) {
      notes.push(`keep-alive stall not measured: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  } else {
    notes.push('keep-alive stall not measured: no time left in the budget');
  }

  progress(`idle timeout (watching an idle connection, up to ${Math.round(budgetMs / 1000)} s)`);
  const idleTimeoutMs = await idle;
  if (idleTimeoutMs === null) {
    notes.push(
      `the server kept an idle connection open for the whole budget (${Math.round(budgetMs / 1000)} s)`,
    );
  }

  return {
    url: target.url.href,
    protocol,
    status,
    server,
    idleTimeoutMs,
    maxRequestsPerConnection: cap,
    ...(h2 !== undefined ? { http2: h2 } : {}),
    ...(tlsFacts !== undefined ? { tls: tlsFacts } : {}),
    keepAliveHeader,
    keepAliveStall: stall,
    recommended: recommend(idleTimeoutMs, cap),
    notes,
    budgetMs,
    elapsedMs: Math.round(performance.now() - started),
  };
}

/**
 * An idleTimeout below the measured one by warmpool's own safety margin (the request must reach the
 * server before its timer fires, not merely leave), else Agent's default; the cap as measured (0: none).
 */
export function recommend(
  idleTimeoutMs: number | null,
  cap: number | null,
): { idleTimeout: number; maxRequestsPerConnection: number } {
  let idleTimeout: number = AGENT_DEFAULTS.idleTimeout;
  if (idleTimeoutMs !== null) {
    idleTimeout = Math.max(0, Math.floor((idleTimeoutMs - idleMarginFor(idleTimeoutMs)) / 100) * 100);
  }
  return { idleTimeout, maxRequestsPerConnection: cap ?? 0 };
}

function targetOf(url: string, options: DoctorOptions): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`not a URL: ${url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InvalidArgumentError(`only http: and https: URLs can be measured, got ${u.protocol}`);
  }
  const secure = u.protocol === 'https:';
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return {
    url: u,
    secure,
    host,
    port: u.port !== '' ? Number(u.port) : secure ? 443 : 80,
    path: `${u.pathname}${u.search}`,
    tls: {
      ca: options.ca,
      rejectUnauthorized: options.insecure !== true,
      servername: net.isIP(host) === 0 ? host : undefined,
    },
  };
}

function headerOf(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

// ---- TLS ----------------------------------------------------------------------------------------------

function tlsHandshake(
  t: Target,
  session: Buffer | undefined,
): Promise<{ socket: tls.TLSSocket; session: Promise<Buffer | undefined> }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...t.tls,
      host: t.host,
      port: t.port,
      ALPNProtocols: ['h2', 'http/1.1'],
      session,
    });
    // TLS 1.3 sends its session tickets after the handshake: wait a little for one.
    const ticket = new Promise<Buffer | undefined>((done) => {
      const timer = setTimeout(() => done(undefined), 2_000);
      socket.once('session', (s: Buffer) => {
        clearTimeout(timer);
        done(s);
      });
    });
    socket.once('secureConnect', () => resolve({ socket, session: ticket }));
    socket.once('error', reject);
  });
}

async function tlsOf(t: Target): Promise<NonNullable<DoctorReport['tls']>> {
  const first = await tlsHandshake(t, undefined);
  const version = first.socket.getProtocol();
  const alpn = first.socket.alpnProtocol || null;
  const session = await first.session;
  first.socket.destroy();
  let sessionResumed = false;
  if (session !== undefined) {
    const second = await tlsHandshake(t, session);
    sessionResumed = second.socket.isSessionReused();
    second.socket.destroy();
  }
  return { version, alpn, sessionResumed };
}

// ---- HTTP/1.1 on a socket of our own -----------------------------------------------------------------

/** One connection and a reader of response heads on it (requests are HEAD: no body to frame). */
class H1Probe {
  private buf = '';
  private wake: (() => void) | undefined;
  closed = false;
  closedAt = 0;

  private constructor(
    readonly socket: net.Socket,
    private readonly t: Target,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = performance.now();
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static open(t: Target): Promise<H1Probe> {
    return new Promise((resolve, reject) => {
      const socket = t.secure
        ? tls.connect({ ...t.tls, host: t.host, port: t.port, ALPNProtocols: ['http/1.1'] })
        : net.connect({ host: t.host, port: t.port });
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once(t.secure ? 'secureConnect' : 'connect', () => {
        socket.removeListener('error', onError);
        resolve(new H1Probe(socket, t));
      });
    });
  }

  /** Sends a HEAD request; resolves with the response head's text, or null if the connection closed. */
  async head(deadline: number): Promise<string | null> {
    const t = this.t;
    this.socket.write(
      `HEAD ${t.path} HTTP/1.1\r\nhost: ${t.url.host}\r\nuser-agent: warmpool-doctor\r\n\r\n`,
    );
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end !== -1) {
        const head = this.buf.slice(0, end);
        this.buf = this.buf.slice(end + 4);
        if (/^HTTP\/1\.[01] 1\d\d /.test(head)) continue; // an interim response
        return head;
      }
      if (this.closed || !(await this.waitUntil(deadline))) return null;
    }
  }

  /** Waits for data or the close; false at the deadline. */
  waitUntil(deadline: number): Promise<boolean> {
    const left = deadline - performance.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, left);
      this.wake = () => {
        this.wake = undefined;
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Does this response head end its connection? */
function closes(head: string): boolean {
  return /\r\nconnection:[^\r]*\bclose\b/i.test(head) || head.startsWith('HTTP/1.0');
}

async function h1IdleTimeout(t: Target, deadline: number): Promise<number | null> {
  const probe = await H1Probe.open(t);
  try {
    const head = await probe.head(deadline);
    if (head === null || closes(head)) return null;
    const idleSince = performance.now();
    while (!probe.closed) {
      if (!(await probe.waitUntil(deadline))) return null;
    }
    return Math.round(probe.closedAt - idleSince);
  } finally {
    probe.destroy();
  }
}

async function h1RequestCap(t: Target, max: number, deadline: number): Promise<number | null> {
  const probe = await H1Probe.open(t);
  try {
    for (let n = 1; n <= max; n++) {
      const head = await probe.head(deadline);
      if (head === null) return probe.closed ? n - 1 : null;
      if (closes(head)) return n;
    }
    return null;
  } finally {
    probe.destroy();
  }
}

// ---- HTTP/2 ------------------------------------------------------------------------------------------

function h2Connect(t: Target): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(t.url.origin, {
      ...t.tls,
      ALPNProtocols: ['h2'],
    } as http2.SecureClientSessionOptions);
    session.once('error', reject);
    session.once('remoteSettings', () => {
      session.removeListener('error', reject);
      session.on('error', () => {});
      resolve(session);
    });
  });
}

async function h2Settings(t: Target): Promise<NonNullable<DoctorReport['http2']>> {
  const session = await h2Connect(t);
  const s = session.remoteSettings;
  session.destroy();
  return {
    maxConcurrentStreams: s.maxConcurrentStreams ?? null,
    initialWindowSize: s.initialWindowSize ?? null,
  };
}

/** One HEAD on the session; false if the session refused it or went away. */
function h2Head(session: http2.ClientHttp2Session, t: Target): Promise<boolean> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) {
      resolve(false);
      return;
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':method': 'HEAD', ':path': t.path, 'user-agent': 'warmpool-doctor' });
    } catch {
      resolve(false);
      return;
    }
    let ok = false;
    stream.on('response', () => {
      ok = true;
    });
    stream.on('error', () => {});
    stream.resume();
    stream.on('close', () => resolve(ok && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR));
  });
}

async function h2IdleTimeout(t: Target, deadline: number): Promise<number | null> {
  const session = await h2Connect(t);
  try {
    if (!(await h2Head(session, t))) return null;
    const idleSince = performance.now();
    const closedAt = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), Math.max(0, deadline - performance.now()));
      const done = () => {
        clearTimeout(timer);
        resolve(performance.now());
      };
      session.once('goaway', done);
      session.once('close', done);
    });
    return closedAt === null ? null : Math.round(closedAt - idleSince);
  } finally {
    session.destroy();
  }
}

async function h2RequestCap(t: Target, max: number, deadline: number): Promise<number | null> {
  const session = await h2Connect(t);
  let goaway = false;
  session.once('goaway', () => {
    goaway = true;
  });
  try {
    let served = 0;
    while (served < max && performance.now() < deadline) {
      const ok = await h2Head(session, t);
      if (ok) served++;
      if (goaway || !ok) return goaway || session.closed ? served : null;
    }
    return null;
  } finally {
    session.destroy();
  }
}
