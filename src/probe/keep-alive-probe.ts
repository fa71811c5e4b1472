import { performance } from 'node:perf_hooks';
import { Client } from '../client/client.js';
import { InvalidArgumentError } from '../errors.js';
import type { OutgoingHeaders } from '../headers.js';
import { Agent } from '../pool/agent.js';
import type { AgentOptions } from '../pool/options.js';

/**
 * A server whose keep-alive responses are slower than fresh connections: the failure this probe
 * names. The usual cause is a server that writes the response head and body in two writes with
 * Nagle's algorithm on (no TCP_NODELAY): the body waits for the ACK of the head, and the client's
 * kernel delays that ACK by up to ~40 ms because it has nothing to send back. Over HTTP/1.1 a new
 * connection does not show it (the first segments of a connection are ACKed at once), so a new
 * connection per request looks faster; over HTTP/2 it can stall from the first response. Cleartext or
 * TLS alike: the two writes are then two TLS records (HTTP/2: a HEADERS and a DATA frame). No
 * client-side option fixes it portably (Node cannot set TCP_QUICKACK); the fix is on the server:
 * TCP_NODELAY, or one write per response.
 */
export type KeepAliveVerdict =
  | 'ok' // keep-alive is as fast as a new connection, or faster
  | 'nagle-delayed-ack' // the body of a keep-alive response stalls behind its head
  | 'keep-alive-slower' // keep-alive is slower for another reason
  | 'not-reusable'; // the server does not keep connections open

export interface KeepAliveProbeOptions {
  /** Requests per mode (keep-alive, then a new connection per request). Default 10, at most 1 000. */
  samples?: number;
  method?: string;
  headers?: OutgoingHeaders;
  /** Agent options for the probe's own private Agents (TLS options, timeouts, allowHttp2). */
  agent?: AgentOptions;
  signal?: AbortSignal;
}

export interface KeepAliveModeResult {
  /** Milliseconds from the call to the body's end, per request: a new connection's connect and TLS in. */
  totalMs: number[];
  /**
   * Milliseconds from the request written on its connection to the body's end, per request
   * (`timings.ttfbMs` plus `headToBodyMs`): no queueing, connect or TLS handshake, so a new connection
   * and a reused one are compared on the exchange alone.
   */
  requestMs: number[];
  /** Milliseconds from the response head to the body's end, per request. */
  headToBodyMs: number[];
  /** Median of `requestMs`: what the verdict compares. */
  p50Ms: number;
  /** Requests that ran on a reused connection. */
  reused: number;
}

export interface KeepAliveProbeResult {
  url: string;
  /** The protocol probed: what the connection to `url` spoke ('h2' by ALPN over TLS, or h2c). */
  protocol: 'http/1.1' | 'h2';
  /** Requests on one connection, reused (after a warm-up request that opened it). */
  keepAlive: KeepAliveModeResult;
  /**
   * A new connection per request: each one opened for that request alone and closed after it (over
   * HTTP/1.1 the request also says `Connection: close`; over HTTP/2 nothing does). `close.reused` is 0.
   */
  close: KeepAliveModeResult;
  /**
   * HTTP/2 only: requests on the reused connection, each followed, as soon as its head arrives, by a
   * HEAD request on the same connection. That request's frame carries the client's ACK at once, so a
   * body the server held back for that ACK (Nagle) arrives at once too; a body the server is slow to
   * produce does not. Over HTTP/2 a new connection is no reference for the stall: its first response
   * can stall as well (seen on Linux: the client has answered the server's SETTINGS by then).
   */
  nudged?: KeepAliveModeResult;
  verdict: KeepAliveVerdict;
  /** One paragraph a person can act on. */
  explanation: string;
}

/** How much slower (ms, medians) keep-alive must be to call it a problem: above scheduling noise. */
const SLOWER_MS = 15;

/** Sent over HTTP/1.1 only: HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2). */
const CLOSE: OutgoingHeaders = { connection: 'close' };

/**
 * Sends `samples` requests to `url` on one kept-alive connection, then `samples` each on a connection
 * of its own (over HTTP/2 also `samples` nudged ones, see `nudged`), and says whether keep-alive is
 * slower and why. Works alike over HTTP/1.1 and HTTP/2, cleartext or TLS: the new connections come
 * from a private Agent per request (destroyed after it), not from `Connection: close`, which means
 * nothing over HTTP/2. The probe's Agents are its own, so it never disturbs a pool; the requests are
 * real: point it at a cheap GET.
 */
export async function probeKeepAlive(
  url: string,
  options: KeepAliveProbeOptions = {},
): Promise<KeepAliveProbeResult> {
  const samples = options.samples ?? 10;
  if (!Number.isInteger(samples) || samples < 2 || samples > 1000) {
    throw new InvalidArgumentError(`samples must be an integer from 2 to 1000, got ${String(samples)}`);
  }
  const agentOptions: AgentOptions = { ...options.agent, maxConnectionsPerOrigin: 1 };
  const method = options.method ?? 'GET';
  const { signal } = options;
  const keepAlive = newMode();
  let nudged: KeepAliveModeResult | undefined;
  let protocol: 'http/1.1' | 'h2';
  const keep = new Agent(agentOptions);
  try {
    const client = new Client({ agent: keep, headers: options.headers });
    // One request first, so the keep-alive samples all run on a warm connection.
    const first = await client.request(url, { method, signal });
    protocol = first.connection.protocol;
    await first.body.dump();
    for (let i = 0; i < samples; i++) await sample(client, url, method, undefined, signal, keepAlive, false);
    if (protocol === 'h2') {
      nudged = newMode();
      for (let i = 0; i < samples; i++) await sample(client, url, method, undefined, signal, nudged, true);
    }
  } finally {
    await keep.destroy();
  }
  const close = newMode();
  const closeHeaders = protocol === 'h2' ? undefined : CLOSE;
  for (let i = 0; i < samples; i++) {
    const once = new Agent(agentOptions);
    try {
      const client = new Client({ agent: once, headers: options.headers });
      await sample(client, url, method, closeHeaders, signal, close, false);
    } finally {
      await once.destroy();
    }
  }
  const result: KeepAliveProbeResult = {
    url,
    protocol,
    keepAlive,
    close,
    ...classifyKeepAlive(keepAlive, close, samples, nudged),
  };
  if (nudged !== undefined) result.nudged = nudged;
  return result;
}

function newMode(): KeepAliveModeResult {
  return { totalMs: [], requestMs: [], headToBodyMs: [], p50Ms: 0, reused: 0 };
}

/** One request, its times added to `into` (and `p50Ms` brought up to date). */
async function sample(
  client: Client,
  url: string,
  method: string,
  headers: OutgoingHeaders | undefined,
  signal: AbortSignal | undefined,
  into: KeepAliveModeResult,
  nudge: boolean,
): Promise<void> {
  const start = performance.now();
  const res = await client.request(url, { method, headers, signal });
  const head = performance.now();
  // Sent before the body is read: its HEADERS frame goes out while the body may still be held back.
  // Only its sending matters: whatever the server answers (or a reset) is dropped.
  const nudging = nudge
    ? client.request(url, { method: 'HEAD', signal }).then(
        (r) => r.body.dump(),
        () => {},
      )
    : undefined;
  await res.body.dump();
  const end = performance.now();
  if (nudging !== undefined) await nudging;
  into.totalMs.push(end - start);
  into.requestMs.push(res.timings.ttfbMs + (end - head));
  into.headToBodyMs.push(end - head);
  into.p50Ms = median(into.requestMs);
  if (res.connection.reused) into.reused++;
}

/**
 * The verdict from the measurements alone (exported so the rule can be tested without a network).
 * `nudged` (HTTP/2) proves the delayed-ACK stall directly; without it (HTTP/1.1) the stall is what makes
 * keep-alive slower than a new connection, between head and body.
 */
export function classifyKeepAlive(
  keepAlive: KeepAliveModeResult,
  close: KeepAliveModeResult,
  samples: number,
  nudged?: KeepAliveModeResult,
): { verdict: KeepAliveVerdict; explanation: string } {
  if (keepAlive.reused < samples / 2) {
    return {
      verdict: 'not-reusable',
      explanation:
        `only ${keepAlive.reused} of ${samples} requests could reuse a connection: the server closes ` +
        'connections (Connection: close, HTTP/1.0, or no framing), so every request pays a new connection.',
    };
  }
  const gap = median(keepAlive.headToBodyMs);
  if (nudged !== undefined && gap >= SLOWER_MS) {
    const nudgedGap = median(nudged.headToBodyMs);
    if (gap - nudgedGap >= SLOWER_MS) {
      return {
        verdict: 'nagle-delayed-ack',
        explanation:
          `${compared(keepAlive, close)}. On a reused connection the body arrives ${fmt(gap)} ms after ` +
          `the head, and ${fmt(nudgedGap)} ms after it when the client sends a frame meanwhile (its ACK ` +
          'goes with it): the body waits for the ACK of the head. ' +
          NAGLE,
      };
    }
  }
  const slower = keepAlive.p50Ms - close.p50Ms;
  if (slower < SLOWER_MS) {
    return {
      verdict: 'ok',
      explanation: `${compared(keepAlive, close)}.`,
    };
  }
  if (gap >= SLOWER_MS && gap >= slower / 2) {
    return {
      verdict: 'nagle-delayed-ack',
      explanation:
        `${compared(keepAlive, close)}, and the body arrives ${fmt(gap)} ms after the head. ` + NAGLE,
    };
  }
  return {
    verdict: 'keep-alive-slower',
    explanation:
      `${compared(keepAlive, close)}, but the delay is before` +
      " the head, not between head and body: look at the server's handling of reused connections.",
  };
}

const NAGLE =
  "The server most likely writes the head and the body separately with Nagle's algorithm on: " +
  "the body waits for the client's delayed ACK of the head. " +
  'Fix it on the server: enable TCP_NODELAY, or write head and body in one write.';

/** The medians compared, said so that nobody reads a connect or a TLS handshake into them. */
function compared(keepAlive: KeepAliveModeResult, close: KeepAliveModeResult): string {
  return (
    `keep-alive p50 ${fmt(keepAlive.p50Ms)} ms against ${fmt(close.p50Ms)} ms on a new connection per ` +
    'request (from the request written to the body end; connect and TLS handshake excluded)'
  );
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function fmt(ms: number): string {
  return ms.toFixed(1);
}
