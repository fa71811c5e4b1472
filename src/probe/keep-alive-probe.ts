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
 * kernel delays that ACK by up to ~40 ms because it has nothing to send back. A new connection does
 * not show it (the first segments of a connection are ACKed at once), so `Connection: close` looks
 * faster. No client-side option fixes it portably (Node cannot set TCP_QUICKACK); the fix is on the
 * server: TCP_NODELAY, or one write per response.
 */
export type KeepAliveVerdict =
  | 'ok' // keep-alive is as fast as a new connection, or faster
  | 'nagle-delayed-ack' // the body of a keep-alive response stalls behind its head
  | 'keep-alive-slower' // keep-alive is slower for another reason
  | 'not-reusable'; // the server does not keep connections open

export interface KeepAliveProbeOptions {
  /** Requests per mode (keep-alive, then Connection: close). Default 10, at most 1 000. */
  samples?: number;
  method?: string;
  headers?: OutgoingHeaders;
  /** Agent options for the probe's own private Agent (TLS options, timeouts). */
  agent?: AgentOptions;
  signal?: AbortSignal;
}

export interface KeepAliveModeResult {
  /** Milliseconds from sending to the body's end, per request. */
  totalMs: number[];
  /** Milliseconds from the response head to the body's end, per request. */
  headToBodyMs: number[];
  p50Ms: number;
  /** Requests that ran on a reused connection. */
  reused: number;
}

export interface KeepAliveProbeResult {
  url: string;
  keepAlive: KeepAliveModeResult;
  close: KeepAliveModeResult;
  verdict: KeepAliveVerdict;
  /** One paragraph a person can act on. */
  explanation: string;
}

/** How much slower (ms, medians) keep-alive must be to call it a problem: above scheduling noise. */
const SLOWER_MS = 15;

/**
 * Sends `samples` requests to `url` on one kept-alive connection, then `samples` with
 * `Connection: close`, and says whether keep-alive is slower and why. Uses a private Agent (one
 * connection), so it never disturbs a pool; the requests are real: point it at a cheap GET.
 */
export async function probeKeepAlive(
  url: string,
  options: KeepAliveProbeOptions = {},
): Promise<KeepAliveProbeResult> {
  const samples = options.samples ?? 10;
  if (!Number.isInteger(samples) || samples < 2 || samples > 1000) {
    throw new InvalidArgumentError(`samples must be an integer from 2 to 1000, got ${String(samples)}`);
  }
  const agent = new Agent({ ...options.agent, maxConnectionsPerOrigin: 1 });
  try {
    const client = new Client({ agent, headers: options.headers });
    const method = options.method ?? 'GET';
    // One request first, so the keep-alive samples all run on a warm connection.
    await (await client.request(url, { method, signal: options.signal })).body.dump();
    const keepAlive = await measure(client, url, method, samples, undefined, options.signal);
    const close = await measure(client, url, method, samples, { connection: 'close' }, options.signal);
    return { url, keepAlive, close, ...classifyKeepAlive(keepAlive, close, samples) };
  } finally {
    await agent.destroy();
  }
}

async function measure(
  client: Client,
  url: string,
  method: string,
  samples: number,
  headers: OutgoingHeaders | undefined,
  signal: AbortSignal | undefined,
): Promise<KeepAliveModeResult> {
  const totalMs: number[] = [];
  const headToBodyMs: number[] = [];
  let reused = 0;
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    const res = await client.request(url, { method, headers, signal });
    const head = performance.now();
    await res.body.dump();
    const end = performance.now();
    totalMs.push(end - start);
    headToBodyMs.push(end - head);
    if (res.connection.reused) reused++;
  }
  return { totalMs, headToBodyMs, p50Ms: median(totalMs), reused };
}

/** The verdict from the measurements alone (exported so the rule can be tested without a network). */
export function classifyKeepAlive(
  keepAlive: KeepAliveModeResult,
  close: KeepAliveModeResult,
  samples: number,
): { verdict: KeepAliveVerdict; explanation: string } {
  if (keepAlive.reused < samples / 2) {
    return {
      verdict: 'not-reusable',
      explanation:
        `only ${keepAlive.reused} of ${samples} requests could reuse a connection: the server closes ` +
        'connections (Connection: close, HTTP/1.0, or no framing), so every request pays a new connection.',
    };
  }
  const slower = keepAlive.p50Ms - close.p50Ms;
  if (slower < SLOWER_MS) {
    return {
      verdict: 'ok',
      explanation: `keep-alive p50 ${fmt(keepAlive.p50Ms)} ms against ${fmt(close.p50Ms)} ms for a new connection per request.`,
    };
  }
  const gap = median(keepAlive.headToBodyMs);
  if (gap >= SLOWER_MS && gap >= slower / 2) {
    return {
      verdict: 'nagle-delayed-ack',
      explanation:
        `keep-alive p50 ${fmt(keepAlive.p50Ms)} ms against ${fmt(close.p50Ms)} ms with Connection: close, and ` +
        `the body arrives ${fmt(gap)} ms after the head. The server most likely writes the head and the body ` +
        "separately with Nagle's algorithm on: the body waits for the client's delayed ACK of the head. " +
        'Fix it on the server: enable TCP_NODELAY, or write head and body in one write.',
    };
  }
  return {
    verdict: 'keep-alive-slower',
    explanation:
      `keep-alive p50 ${fmt(keepAlive.p50Ms)} ms against ${fmt(close.p50Ms)} ms with Connection: close, but the ` +
      "delay is before the head, not between head and body: look at the server's handling of reused connections.",
  };
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
