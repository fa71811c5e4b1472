/**
 * warmpool/otel: OpenTelemetry spans and metrics for warmpool, built only on its diagnostics channels
 * (src/diagnostics/channels.ts); it never reaches into the pool. `@opentelemetry/api` is an optional
 * peer dependency: only this entry point imports it.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapSetter,
  type TracerProvider,
  type UpDownCounter,
  context,
  metrics,
  propagation,
  trace,
} from '@opentelemetry/api';
import {
  type ConnectionClosedMessage,
  type ConnectionOpenedMessage,
  type DiagnosticsConnection,
  type DiagnosticsRequest,
  type RequestCreateMessage,
  type RequestEndMessage,
  type RequestErrorMessage,
  type RequestHeadersSentMessage,
  type RequestQueuedMessage,
  type RequestResponseMessage,
  type RequestRetryMessage,
  channelNames,
} from '../diagnostics/channels.js';

export interface InstrumentWarmpoolOptions {
  /** Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
}

const SCOPE = 'warmpool';
const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
]);
/** The HTTP semantic conventions' advice for duration histograms, in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

interface RequestState {
  span: Span;
  startedAt: number;
  /** Attributes for the duration metric. */
  metric: Attributes;
  connection: DiagnosticsConnection | undefined;
  retried: boolean;
}

interface ConnectionState {
  active: number;
  closed: boolean;
  attributes: Attributes;
}

const setter: TextMapSetter<RequestCreateMessage> = {
  set(carrier, key, value) {
    carrier.addHeader(key, value);
  },
};

/**
 * Starts tracing and measuring warmpool's requests: one CLIENT span per request (a child of the
 * active context, its context injected into the request headers through the global propagator),
 * and the HTTP client metrics. Returns a function that stops it: no span or measurement after.
 */
export function instrumentWarmpool(options: InstrumentWarmpoolOptions = {}): () => void {
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const requestDuration: Histogram = meter.createHistogram('http.client.request.duration', {
    description: 'Duration of HTTP client requests.',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const queueWait: Histogram = meter.createHistogram('http.client.request.time_in_queue', {
    description: 'Time a request waited for a connection.',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const connectionDuration: Histogram = meter.createHistogram('http.client.connection.duration', {
    description: 'How long connections were open.',
    unit: 's',
  });
  const openConnections: UpDownCounter = meter.createUpDownCounter('http.client.open_connections', {
    description: 'Open connections, by state (active: carrying a request; idle).',
    unit: '{connection}',
  });
  const retries: Counter = meter.createCounter('warmpool.client.request.retries', {
    description: 'Requests sent again on another connection (a stale connection, a refused HTTP/2 stream).',
    unit: '{retry}',
  });

  const requests = new WeakMap<DiagnosticsRequest, RequestState>();
  const conns = new WeakMap<DiagnosticsConnection, ConnectionState>();
  const servers = new Map<string, { address: string; port: number }>();

  const serverOf = (origin: string): { address: string; port: number } => {
    let s = servers.get(origin);
    if (s === undefined) {
      const u = new URL(origin);
      const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
      const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
      s = { address: host, port };
      if (servers.size > 1000) servers.clear(); // bounded: a cache, not a registry
      servers.set(origin, s);
    }
    return s;
  };

  const connState = (c: DiagnosticsConnection): ConnectionState => {
    let s = conns.get(c);
    if (s === undefined) {
      const server = serverOf(c.origin);
      s = {
        active: 0,
        closed: false,
        attributes: {
          'server.address': server.address,
          'server.port': server.port,
          'network.protocol.version': c.protocol === 'h2' ? '2' : '1.1',
        },
      };
      conns.set(c, s);
    }
    return s;
  };

  const moveConnection = (s: ConnectionState, from: 'active' | 'idle', to: 'active' | 'idle'): void => {
    openConnections.add(-1, { ...s.attributes, 'http.connection.state': from });
    openConnections.add(1, { ...s.attributes, 'http.connection.state': to });
  };

  /** The request no longer holds its connection (it ended, failed, or went to another connection). */
  const leaveConnection = (r: RequestState): void => {
    const c = r.connection;
    if (c === undefined) return;
    r.connection = undefined;
    const s = connState(c);
    if (s.closed || s.active === 0) return;
    s.active--;
    if (s.active === 0) moveConnection(s, 'active', 'idle');
  };

  const finish = (r: RequestState, request: DiagnosticsRequest): void => {
    requests.delete(request);
    leaveConnection(r);
    if (r.retried) r.span.setAttribute('warmpool.retried', true);
    r.span.end();
    requestDuration.record((performance.now() - r.startedAt) / 1000, r.metric);
  };

  const onCreate = (m: unknown): void => {
    const msg = m as RequestCreateMessage;
    const request = msg.request;
    const server = serverOf(request.origin);
    const known = KNOWN_METHODS.has(request.method);
    const method = known ? request.method : '_OTHER';
    const attributes: Attributes = {
      'http.request.method': method,
      'url.full': redactUserinfo(request.url),
      'server.address': server.address,
      'server.port': server.port,
    };
    if (!known) attributes['http.request.method_original'] = request.method;
    const parent = context.active();
    const span = tracer.startSpan(known ? method : 'HTTP', { kind: SpanKind.CLIENT, attributes }, parent);
    requests.set(request, {
      span,
      startedAt: performance.now(),
      metric: { 'http.request.method': method, 'server.address': server.address, 'server.port': server.port },
      connection: undefined,
      retried: false,
    });
    propagation.inject(trace.setSpan(parent, span), msg, setter);
  };

  const onQueued = (m: unknown): void => {
    const r = requests.get((m as RequestQueuedMessage).request);
    if (r !== undefined)
      r.span.addEvent('warmpool.queued', { 'warmpool.queue.waiting': (m as RequestQueuedMessage).waiting });
  };

  const onHeadersSent = (m: unknown): void => {
    const msg = m as RequestHeadersSentMessage;
    const r = requests.get(msg.request);
    if (r === undefined) return;
    leaveConnection(r); // a retry leaves the connection of the attempt before
    const version = msg.connection.protocol === 'h2' ? '2' : '1.1';
    r.span.setAttributes({
      'network.protocol.version': version,
      'warmpool.connection.id': msg.connection.id,
      'warmpool.connection.reused': msg.reused,
      'warmpool.connection.idle_ms': msg.idleMs,
      'warmpool.queue.wait_ms': msg.queuedMs,
    });
    r.metric['network.protocol.version'] = version;
    queueWait.record(msg.queuedMs / 1000, {
      'server.address': r.metric['server.address'],
      'server.port': r.metric['server.port'],
    });
    const s = connState(msg.connection);
    if (!s.closed) {
      r.connection = msg.connection;
      s.active++;
      if (s.active === 1) moveConnection(s, 'idle', 'active');
    }
  };

  const onResponse = (m: unknown): void => {
    const msg = m as RequestResponseMessage;
    const r = requests.get(msg.request);
    if (r === undefined) return;
    const status = msg.response.status;
    r.span.setAttribute('http.response.status_code', status);
    r.span.setAttribute('network.protocol.version', msg.response.httpVersion);
    r.metric['http.response.status_code'] = status;
    r.metric['network.protocol.version'] = msg.response.httpVersion;
    if (status >= 400) {
      r.span.setAttribute('error.type', String(status));
      r.span.setStatus({ code: SpanStatusCode.ERROR });
      r.metric['error.type'] = String(status);
    }
  };

  const onRetry = (m: unknown): void => {
    const msg = m as RequestRetryMessage;
    const r = requests.get(msg.request);
    if (r === undefined) return;
    r.retried = true;
    r.span.setAttribute('http.request.resend_count', msg.attempt - 1);
    r.span.addEvent('warmpool.retry', {
      'warmpool.retry.reason': msg.reason,
      'warmpool.retry.attempt': msg.attempt,
      'error.type': errorType(msg.error),
    });
    retries.add(1, { 'server.address': r.metric['server.address'], 'warmpool.retry.reason': msg.reason });
  };

  const onEnd = (m: unknown): void => {
    const request = (m as RequestEndMessage).request;
    const r = requests.get(request);
    if (r !== undefined) finish(r, request);
  };

  const onError = (m: unknown): void => {
    const msg = m as RequestErrorMessage;
    const r = requests.get(msg.request);
    if (r === undefined) return;
    const type = errorType(msg.error);
    r.span.setAttribute('error.type', type);
    r.span.recordException(msg.error);
    r.span.setStatus({ code: SpanStatusCode.ERROR, message: msg.error.message });
    r.metric['error.type'] = type;
    finish(r, msg.request);
  };

  const onOpened = (m: unknown): void => {
    const s = connState((m as ConnectionOpenedMessage).connection);
    openConnections.add(1, { ...s.attributes, 'http.connection.state': 'idle' });
  };

  const onClosed = (m: unknown): void => {
    const msg = m as ConnectionClosedMessage;
    const s = connState(msg.connection);
    if (s.closed) return;
    s.closed = true;
    openConnections.add(-1, { ...s.attributes, 'http.connection.state': s.active > 0 ? 'active' : 'idle' });
    s.active = 0;
    connectionDuration.record(msg.ageMs / 1000, s.attributes);
  };

  const subscriptions: Array<[string, (m: unknown) => void]> = [
    [channelNames.requestCreate, onCreate],
    [channelNames.requestQueued, onQueued],
    [channelNames.requestHeadersSent, onHeadersSent],
    [channelNames.requestResponse, onResponse],
    [channelNames.requestRetry, onRetry],
    [channelNames.requestEnd, onEnd],
    [channelNames.requestError, onError],
    [channelNames.connectionOpened, onOpened],
    [channelNames.connectionClosed, onClosed],
  ];
  for (const [name, fn] of subscriptions) diagnosticsChannel.subscribe(name, fn);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const [name, fn] of subscriptions) diagnosticsChannel.unsubscribe(name, fn);
  };
}

/** `error.type`: the error's stable code (WARMPOOL_*, or a system code), else its class name. */
function errorType(err: Error): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  return err.name !== '' ? err.name : '_OTHER';
}

/** The semantic conventions ask that credentials in a URL never be recorded. */
function redactUserinfo(url: string): string {
  const scheme = url.indexOf('://');
  const at = url.indexOf('@');
  if (scheme === -1 || at === -1) return url;
  const slash = url.indexOf('/', scheme + 3);
  if (slash !== -1 && at > slash) return url;
  return `${url.slice(0, scheme + 3)}REDACTED:REDACTED${url.slice(at)}`;
}
