import type { CloseReason, PoolConnection } from '../exchange/connection.js';

/** Counters for one origin; all since the pool was made, except the gauges (open, idle, busy, queued). */
export interface OriginStats {
  origin: string;
  /** The unix socket this pool's connections go to (absent: TCP to the origin). */
  socketPath?: string;
  protocol: 'http/1.1' | 'h2' | 'unknown';
  open: number;
  connecting: number;
  idle: number;
  busy: number;
  queued: number;
  created: number;
  requests: number;
  reused: number;
  /** Requests sent again: after a stale connection failed, and by a retry policy. */
  retried: number;
  closed: Record<CloseReason, number>;
  /** HTTP/2 only: open streams and the servers' current stream limit per session. */
  activeStreams: number;
  streamLimits: number[];
  /**
   * The server's idle timeout as learned from the idle ages at which it closed connections (confirmed
   * by two closes); undefined until then. Connections stop being used a margin before it.
   */
  serverIdleTimeoutMs: number | undefined;
}

/** What an OriginPool counts as it goes: plain fields, bumped on the request path. */
export class OriginCounters {
  created = 0;
  requests = 0;
  reused = 0;
  retried = 0;
  readonly closed: Record<CloseReason, number> = {
    'idle-timeout': 0,
    'max-age': 0,
    'max-requests': 0,
    'server-close': 0,
    'not-reusable': 0,
    error: 0,
    aborted: 0,
    stale: 0,
    'agent-close': 0,
  };
}

/** The stats of one origin: its counters, and gauges read from its connections now. */
export function originStats(
  origin: string,
  protocol: OriginStats['protocol'],
  conns: Iterable<PoolConnection>,
  connecting: number,
  queued: number,
  counters: OriginCounters,
  serverIdleTimeoutMs: number | undefined,
): OriginStats {
  let open = 0;
  let idle = 0;
  let busy = 0;
  let activeStreams = 0;
  const streamLimits: number[] = [];
  for (const c of conns) {
    open++;
    if (c.active === 0) idle++;
    else busy++;
    if (c.multiplexed) {
      activeStreams += c.active;
      streamLimits.push(c.capacity);
    }
  }
  return {
    origin,
    protocol,
    open,
    connecting,
    idle,
    busy,
    queued,
    created: counters.created,
    requests: counters.requests,
    reused: counters.reused,
    retried: counters.retried,
    closed: { ...counters.closed },
    activeStreams,
    streamLimits,
    serverIdleTimeoutMs,
  };
}
