/**
 * warmpool/otel against the OpenTelemetry SDK (in-memory span exporter, the async-hooks context
 * manager, an in-memory metric exporter): one CLIENT span per request under the caller's span, the
 * HTTP semantic-convention attributes, error status, the traceparent the server receives, the
 * metrics, and nothing once stopped. Real local servers.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { SpanKind, SpanStatusCode, context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Agent, Client } from '../src/index.js';
import { instrumentWarmpool } from '../src/otel/index.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';

const T = 30_000;
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const tracer = tracerProvider.getTracer('test');
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 3_600_000,
});
const meterProvider = new MeterProvider({ readers: [reader] });
const contextManager = new AsyncLocalStorageContextManager();

before(() => {
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
after(async () => {
  context.disable();
  propagation.disable();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});
beforeEach(() => {
  spans.reset();
});

const clientSpans = (): ReadableSpan[] => spans.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);

/** The last collected value of each metric, by name. */
async function collect(): Promise<Map<string, MetricData>> {
  metricExporter.reset();
  await reader.forceFlush();
  const out = new Map<string, MetricData>();
  for (const rm of metricExporter.getMetrics()) {
    for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m);
  }
  return out;
}

/** Ends the body of a request to /slow. */
let endSlow: (() => void) | undefined;

/** A server that answers with the traceparent it received ('-' for none); /slow ends on endSlow(). */
const echoTraceparent = () =>
  startHttpServer((req, res) => {
    const status = req.url === '/fail' ? 503 : 200;
    res.writeHead(status, { 'content-type': 'text/plain' });
    if (req.url === '/slow') {
      res.write('part');
      endSlow = () => res.end();
      return;
    }
    res.end(req.headers.traceparent ?? '-');
  });

test(
  'one CLIENT span per request, a child of the active span, with the HTTP attributes; the server receives its traceparent',
  { timeout: T },
  async () => {
    const srv = await echoTraceparent();
    const agent = new Agent();
    const stop = instrumentWarmpool({ tracerProvider, meterProvider });
    try {
      const client = new Client({ agent });
      const [received, parent] = await tracer.startActiveSpan('parent', async (parentSpan) => {
        const res = await client.request(`${srv.url}/items?x=1`);
        const text = await res.body.text();
        parentSpan.end();
        return [text, parentSpan.spanContext()] as const;
      });
      const [span] = clientSpans();
      assert.ok(span, 'a client span');
      assert.equal(clientSpans().length, 1);
      assert.equal(span.name, 'GET');
      assert.equal(span.spanContext().traceId, parent.traceId);
      assert.equal(span.parentSpanContext?.spanId, parent.spanId);
      assert.equal(received, `00-${parent.traceId}-${span.spanContext().spanId}-01`);
      assert.equal(span.status.code, SpanStatusCode.UNSET);
      const a = span.attributes;
      assert.equal(a['http.request.method'], 'GET');
      assert.equal(a['url.full'], `${srv.url}/items?x=1`);
      assert.equal(a['server.address'], '127.0.0.1');
      assert.equal(a['server.port'], srv.port);
      assert.equal(a['network.protocol.version'], '1.1');
      assert.equal(a['http.response.status_code'], 200);
      assert.equal(a['warmpool.connection.reused'], false);
      assert.equal(typeof a['warmpool.queue.wait_ms'], 'number');
      assert.equal(a['error.type'], undefined);

      // The second request reuses the connection, and says so.
      await (await client.request(srv.url)).body.dump();
      assert.equal(clientSpans()[1]!.attributes['warmpool.connection.reused'], true);
      assert.equal(clientSpans()[1]!.attributes['warmpool.connection.idle_ms'] !== undefined, true);
    } finally {
      stop();
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'a 5xx response and a failed connect end their spans with status ERROR and error.type',
  { timeout: T },
  async () => {
    const srv = await echoTraceparent();
    const agent = new Agent();
    const stop = instrumentWarmpool({ tracerProvider, meterProvider });
    try {
      const client = new Client({ agent });
      const res = await client.request(`${srv.url}/fail`);
      assert.equal(res.status, 503);
      await res.body.dump();
      await srv.close();
      await assert.rejects(client.request(`${srv.url}/gone`, { method: 'POST', body: 'x' }), {
        code: 'WARMPOOL_CONNECT_ERROR',
      });
      const [http503, failed] = clientSpans();
      assert.equal(http503!.status.code, SpanStatusCode.ERROR);
      assert.equal(http503!.attributes['error.type'], '503');
      assert.equal(http503!.attributes['http.response.status_code'], 503);
      assert.equal(failed!.name, 'POST');
      assert.equal(failed!.status.code, SpanStatusCode.ERROR);
      assert.equal(failed!.attributes['error.type'], 'WARMPOOL_CONNECT_ERROR');
      assert.equal(failed!.attributes['http.response.status_code'], undefined);
      assert.ok(failed!.events.some((e) => e.name === 'exception'));
    } finally {
      stop();
      await agent.destroy();
    }
  },
);

test('HTTP/2: network.protocol.version 2, and the traceparent arrives over h2', { timeout: T }, async () => {
  const srv = await startH2Server({
    handler: (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(String(headers.traceparent ?? '-'));
    },
  });
  const agent = new Agent({ tls: { ca: TEST_CERT } });
  const stop = instrumentWarmpool({ tracerProvider, meterProvider });
  try {
    const res = await new Client({ agent }).request(srv.url);
    const received = await res.body.text();
    const [span] = clientSpans();
    assert.equal(span!.attributes['network.protocol.version'], '2');
    assert.equal(span!.parentSpanContext, undefined); // no active span: a root
    assert.equal(received, `00-${span!.spanContext().traceId}-${span!.spanContext().spanId}-01`);
  } finally {
    stop();
    await agent.destroy();
    await srv.close();
  }
});

test(
  'metrics: request duration, time in queue, open connections by state, connection duration',
  { timeout: T },
  async () => {
    const srv = await echoTraceparent();
    const agent = new Agent();
    const stop = instrumentWarmpool({ tracerProvider, meterProvider });
    const port = srv.port;
    const mine = (attrs: Record<string, unknown>) => attrs['server.port'] === port;
    try {
      const client = new Client({ agent });
      for (let i = 0; i < 3; i++) await (await client.request(srv.url)).body.dump();
      let m = await collect();
      const duration = m.get('http.client.request.duration')!;
      const points = duration.dataPoints.filter((p) => mine(p.attributes));
      assert.equal(points.length, 1);
      assert.deepEqual(points[0]!.attributes, {
        'http.request.method': 'GET',
        'server.address': '127.0.0.1',
        'server.port': port,
        'network.protocol.version': '1.1',
        'http.response.status_code': 200,
      });
      assert.equal((points[0]!.value as { count: number }).count, 3);
      const queued = m.get('http.client.request.time_in_queue')!.dataPoints.filter((p) => mine(p.attributes));
      assert.equal((queued[0]!.value as { count: number }).count, 3);
      const open = (state: string) =>
        m
          .get('http.client.open_connections')!
          .dataPoints.filter((p) => mine(p.attributes) && p.attributes['http.connection.state'] === state)
          .reduce((sum, p) => sum + (p.value as number), 0);
      assert.equal(open('idle'), 1);
      assert.equal(open('active'), 0);

      // While a request is in flight its connection is active.
      const inFlight = await client.request(`${srv.url}/slow`);
      m = await collect();
      assert.equal(open('active'), 1);
      assert.equal(open('idle'), 0);
      endSlow!();
      await inFlight.body.dump();

      await agent.close();
      m = await collect();
      assert.equal(open('idle'), 0);
      assert.equal(open('active'), 0);
      const conn = m.get('http.client.connection.duration')!.dataPoints.filter((p) => mine(p.attributes));
      assert.equal((conn[0]!.value as { count: number }).count, 1);
    } finally {
      stop();
      await agent.destroy();
      await srv.close();
    }
  },
);

test('after stop(): no span, no traceparent, no measurement', { timeout: T }, async () => {
  const srv = await echoTraceparent();
  const agent = new Agent();
  const stop = instrumentWarmpool({ tracerProvider, meterProvider });
  stop();
  stop(); // twice is harmless
  try {
    const before = await collect();
    const countBefore = before
      .get('http.client.request.duration')
      ?.dataPoints.filter((p) => p.attributes['server.port'] === srv.port).length;
    const received = await tracer.startActiveSpan('parent', async (parent) => {
      const text = await (await new Client({ agent }).request(srv.url)).body.text();
      parent.end();
      return text;
    });
    assert.equal(received, '-');
    assert.equal(clientSpans().length, 0);
    const afterStop = await collect();
    assert.equal(
      afterStop
        .get('http.client.request.duration')
        ?.dataPoints.filter((p) => p.attributes['server.port'] === srv.port).length,
      countBefore,
    );
  } finally {
    await agent.destroy();
    await srv.close();
  }
});
