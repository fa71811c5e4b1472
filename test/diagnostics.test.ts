/**
 * diagnostics_channel: every `warmpool:` channel is published with the documented payload, the same
 * request object travels from create to end, and a header added at create reaches the server.
 * Real local servers (node:http, node:http2, the fault server).
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import http2 from 'node:http2';
import { test } from 'node:test';
import {
  Agent,
  Client,
  type ConnectionClosedMessage,
  type ConnectionOpenedMessage,
  type DiagnosticsRequest,
  type RequestCreateMessage,
  type RequestEndMessage,
  type RequestErrorMessage,
  type RequestHeadersSentMessage,
  type RequestQueuedMessage,
  type RequestResponseMessage,
  type RequestRetryMessage,
  channelNames,
} from '../src/index.js';
import { startFaultServer } from './helpers/fault-server.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { deferred, waitFor } from './helpers/pool-util.js';

const T = 30_000;

interface Seen {
  name: string;
  message: unknown;
}

/** Subscribes to every warmpool channel; returns what was published, in order, and an unsubscribe. */
function record(): { seen: Seen[]; stop: () => void } {
  const seen: Seen[] = [];
  const subs: Array<[string, (m: unknown) => void]> = [];
  for (const name of Object.values(channelNames)) {
    const fn = (message: unknown): void => {
      seen.push({ name, message });
    };
    diagnosticsChannel.subscribe(name, fn);
    subs.push([name, fn]);
  }
  return {
    seen,
    stop: () => {
      for (const [name, fn] of subs) diagnosticsChannel.unsubscribe(name, fn);
    },
  };
}

const of = <M>(seen: Seen[], name: string): M[] =>
  seen.filter((s) => s.name === name).map((s) => s.message as M);

test(
  'an HTTP/1.1 request publishes create, connection opened, headers sent, response, end with trailers, and closed',
  { timeout: T },
  async () => {
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { trailer: 'x-checksum' });
      res.write('hello');
      res.addTrailers({ 'x-checksum': 'abc' });
      res.end();
    });
    const agent = new Agent();
    const { seen, stop } = record();
    try {
      const res = await new Client({ agent }).request(`${srv.url}/path?q=1`);
      assert.equal(await res.body.text(), 'hello');
      await agent.close();
      const names = seen.map((s) => s.name);
      assert.deepEqual(names, [
        channelNames.requestCreate,
        channelNames.requestQueued,
        channelNames.connectionOpened,
        channelNames.requestHeadersSent,
        channelNames.requestResponse,
        channelNames.requestEnd,
        channelNames.connectionClosed,
      ]);
      const create = of<RequestCreateMessage>(seen, channelNames.requestCreate)[0]!;
      const request: DiagnosticsRequest = create.request;
      assert.equal(request.method, 'GET');
      assert.equal(request.url, `${srv.url}/path?q=1`);
      assert.equal(request.origin, srv.url);
      assert.equal(request.path, '/path?q=1');
      const queued = of<RequestQueuedMessage>(seen, channelNames.requestQueued)[0]!;
      assert.equal(queued.request, request);
      assert.equal(queued.waiting, 1);
      const opened = of<ConnectionOpenedMessage>(seen, channelNames.connectionOpened)[0]!;
      assert.equal(opened.connection.origin, srv.url);
      assert.equal(opened.connection.protocol, 'http/1.1');
      assert.equal(typeof opened.timings.connectMs, 'number');
      assert.equal(opened.timings.tlsMs, undefined);
      assert.equal(opened.tls, undefined);
      const sent = of<RequestHeadersSentMessage>(seen, channelNames.requestHeadersSent)[0]!;
      assert.equal(sent.request, request);
      assert.equal(sent.attempt, 1);
      assert.equal(sent.connection, opened.connection); // one object per connection
      assert.deepEqual([sent.reused, sent.idleMs, sent.requestCount], [false, 0, 1]);
      const response = of<RequestResponseMessage>(seen, channelNames.requestResponse)[0]!;
      assert.equal(response.request, request);
      assert.equal(response.response, res);
      const end = of<RequestEndMessage>(seen, channelNames.requestEnd)[0]!;
      assert.equal(end.request, request);
      assert.deepEqual(end.trailers, { 'x-checksum': 'abc' });
      const closed = of<ConnectionClosedMessage>(seen, channelNames.connectionClosed)[0]!;
      assert.equal(closed.connection, opened.connection);
      assert.equal(closed.reason, 'agent-close');
      assert.equal(closed.requestCount, 1);
      assert.ok(closed.ageMs >= 0);
    } finally {
      stop();
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'a reused connection is reported as reused in headers-sent, and no connection opens for it',
  { timeout: T },
  async () => {
    const srv = await startHttpServer();
    const agent = new Agent();
    const client = new Client({ agent });
    try {
      await (await client.request(srv.url)).body.dump();
      const { seen, stop } = record();
      try {
        await (await client.request(srv.url)).body.dump();
      } finally {
        stop();
      }
      assert.deepEqual(
        seen.map((s) => s.name),
        [
          channelNames.requestCreate,
          channelNames.requestHeadersSent,
          channelNames.requestResponse,
          channelNames.requestEnd,
        ],
      );
      const sent = of<RequestHeadersSentMessage>(seen, channelNames.requestHeadersSent)[0]!;
      assert.equal(sent.reused, true);
      assert.equal(sent.requestCount, 2);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test('a header added on request:create is sent, over HTTP/1.1 and HTTP/2', { timeout: T }, async () => {
  const h1 = await startHttpServer((req, res) => {
    res.end(`${req.headers.traceparent}|${req.headers['x-caller']}`);
  });
  const h2 = await startH2Server({
    handler: (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`${headers.traceparent}|${headers['x-caller']}`);
    },
  });
  const agent = new Agent({ tls: { ca: TEST_CERT } });
  const add = (m: unknown): void => {
    (m as RequestCreateMessage).addHeader(
      'traceparent',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    );
  };
  diagnosticsChannel.subscribe(channelNames.requestCreate, add);
  try {
    const client = new Client({ agent });
    for (const url of [h1.url, h2.url]) {
      const res = await client.request(url, { headers: { 'x-caller': 'kept' } });
      assert.equal(
        await res.body.text(),
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01|kept',
        `over ${url}`,
      );
    }
  } finally {
    diagnosticsChannel.unsubscribe(channelNames.requestCreate, add);
    await agent.destroy();
    await h1.close();
    await h2.close();
  }
});

test(
  'a header added on request:create is validated: CR/LF fails the request with a typed error, published',
  { timeout: T },
  async () => {
    const srv = await startHttpServer();
    const agent = new Agent();
    const add = (m: unknown): void => {
      (m as RequestCreateMessage).addHeader('x-bad', 'a\r\nx-injected: 1');
    };
    const errors: RequestErrorMessage[] = [];
    const onError = (m: unknown): void => {
      errors.push(m as RequestErrorMessage);
    };
    diagnosticsChannel.subscribe(channelNames.requestCreate, add);
    diagnosticsChannel.subscribe(channelNames.requestError, onError);
    try {
      await assert.rejects(new Client({ agent }).request(srv.url), { code: 'WARMPOOL_INVALID_ARGUMENT' });
      assert.equal(errors.length, 1);
      assert.equal((errors[0]!.error as { code?: string }).code, 'WARMPOOL_INVALID_ARGUMENT');
      assert.equal(srv.stats.requestsTotal, 0);
    } finally {
      diagnosticsChannel.unsubscribe(channelNames.requestCreate, add);
      diagnosticsChannel.unsubscribe(channelNames.requestError, onError);
      await agent.destroy();
      await srv.close();
    }
  },
);

test('HTTP/2 over TLS: connection opened says h2, with TLS and dial timings', { timeout: T }, async () => {
  const srv = await startH2Server();
  const agent = new Agent({ tls: { ca: TEST_CERT } });
  const { seen, stop } = record();
  try {
    await (await new Client({ agent }).request(srv.url)).body.dump();
    const opened = of<ConnectionOpenedMessage>(seen, channelNames.connectionOpened)[0]!;
    assert.equal(opened.connection.protocol, 'h2');
    assert.equal(typeof opened.timings.tlsMs, 'number');
    assert.deepEqual(opened.tls, { resumed: false });
    const sent = of<RequestHeadersSentMessage>(seen, channelNames.requestHeadersSent)[0]!;
    assert.equal(sent.connection.protocol, 'h2');
    assert.equal(of<RequestEndMessage>(seen, channelNames.requestEnd).length, 1);
  } finally {
    stop();
    await agent.destroy();
    await srv.close();
  }
});

test(
  'a stale reused connection: error-free retry published with its reason and attempt 2',
  { timeout: T },
  async () => {
    const srv = await startFaultServer({
      handler: (req) =>
        req.headers['x-fault'] === 'reset' && req.seq > 1
          ? { type: 'reset' }
          : { type: 'respond', body: 'ok' },
    });
    const agent = new Agent();
    const client = new Client({ agent });
    try {
      await (await client.request(srv.url)).body.dump();
      const { seen, stop } = record();
      try {
        const res = await client.request(srv.url, { headers: { 'x-fault': 'reset' } });
        await res.body.dump();
        assert.equal(res.retried, true);
      } finally {
        stop();
      }
      const retry = of<RequestRetryMessage>(seen, channelNames.requestRetry);
      assert.equal(retry.length, 1);
      assert.equal(retry[0]!.reason, 'stale-connection');
      assert.equal(retry[0]!.attempt, 2);
      assert.equal((retry[0]!.error as { code?: string }).code, 'WARMPOOL_SOCKET_CLOSED');
      const sent = of<RequestHeadersSentMessage>(seen, channelNames.requestHeadersSent);
      assert.deepEqual(
        sent.map((s) => [s.attempt, s.reused]),
        [
          [1, true],
          [2, false],
        ],
      );
      assert.equal(sent[0]!.request, retry[0]!.request);
      const closed = of<ConnectionClosedMessage>(seen, channelNames.connectionClosed);
      assert.ok(closed.length >= 1);
      assert.equal(of<RequestErrorMessage>(seen, channelNames.requestError).length, 0);
      assert.equal(of<RequestEndMessage>(seen, channelNames.requestEnd).length, 1);
    } finally {
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'HTTP/2: a stream the server refused (REFUSED_STREAM) is replayed, published as a refused-stream retry',
  { timeout: T },
  async () => {
    let refused = false;
    const srv = await startH2Server({
      handler: (stream) => {
        if (!refused) {
          refused = true;
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          return;
        }
        stream.respond({ ':status': 200 });
        stream.end('ok');
      },
    });
    const agent = new Agent({ tls: { ca: TEST_CERT } });
    const { seen, stop } = record();
    try {
      const res = await new Client({ agent }).request(srv.url);
      assert.equal(await res.body.text(), 'ok');
      assert.equal(res.retried, true);
      const retry = of<RequestRetryMessage>(seen, channelNames.requestRetry);
      assert.equal(retry.length, 1);
      assert.equal(retry[0]!.reason, 'refused-stream');
      assert.equal(retry[0]!.attempt, 2);
      const sent = of<RequestHeadersSentMessage>(seen, channelNames.requestHeadersSent);
      assert.deepEqual(
        sent.map((m) => m.attempt),
        [1, 2],
      );
      assert.equal(of<RequestEndMessage>(seen, channelNames.requestEnd)[0]!.request, retry[0]!.request);
    } finally {
      stop();
      await agent.destroy();
      await srv.close();
    }
  },
);

test(
  'errors: before the head (connection refused) and after it (body reset) are published',
  { timeout: T },
  async () => {
    const srv = await startFaultServer({
      handler: () => ({ type: 'reset-mid-body', body: 'y'.repeat(1000), bytesBeforeReset: 100 }),
    });
    const agent = new Agent();
    const client = new Client({ agent });
    const { seen, stop } = record();
    try {
      const res = await client.request(srv.url);
      await assert.rejects(res.body.text());
      await srv.close();
      await assert.rejects(client.request(srv.url), { code: 'WARMPOOL_CONNECT_ERROR' });
      const errors = of<RequestErrorMessage>(seen, channelNames.requestError);
      assert.equal(errors.length, 2);
      assert.equal(errors[0]!.afterResponse, true);
      assert.equal(errors[1]!.afterResponse, false);
      assert.equal((errors[1]!.error as { code?: string }).code, 'WARMPOOL_CONNECT_ERROR');
      assert.notEqual(errors[0]!.request, errors[1]!.request);
      assert.equal(of<RequestEndMessage>(seen, channelNames.requestEnd).length, 0);
      const closed = of<ConnectionClosedMessage>(seen, channelNames.connectionClosed);
      assert.equal(closed[0]!.reason, 'server-close'); // the RST mid-body
    } finally {
      stop();
      await agent.destroy();
    }
  },
);

test(
  'a request waiting behind a busy connection is published as queued, with the queue length',
  { timeout: T },
  async () => {
    const release = deferred();
    let first = true;
    const srv = await startHttpServer(async (_req, res) => {
      if (first) {
        first = false;
        await release.promise;
      }
      res.end('ok');
    });
    const agent = new Agent({ maxConnectionsPerOrigin: 1 });
    const client = new Client({ agent });
    const { seen, stop } = record();
    try {
      const a = client.request(srv.url);
      await waitFor(() => srv.stats.requestsTotal === 1, 'first request at the server');
      const b = client.request(`${srv.url}/second`);
      const queued = of<RequestQueuedMessage>(seen, channelNames.requestQueued);
      assert.equal(queued.length, 2); // the first waited for its dial, the second waits behind it
      assert.equal(queued[1]!.request.path, '/second');
      assert.equal(queued[1]!.waiting, 1);
      release.resolve();
      await (await a).body.dump();
      await (await b).body.dump();
      const sent = of<RequestHeadersSentMessage>(seen, channelNames.requestHeadersSent);
      assert.equal(sent[1]!.request, queued[1]!.request);
      assert.equal(sent[1]!.reused, true);
    } finally {
      stop();
      await agent.destroy();
      await srv.close();
    }
  },
);

test('nothing is published to a channel once its subscriber is gone', { timeout: T }, async () => {
  const srv = await startHttpServer();
  const agent = new Agent();
  const { seen, stop } = record();
  stop();
  try {
    await (await new Client({ agent }).request(srv.url)).body.dump();
    assert.equal(seen.length, 0);
    for (const name of Object.values(channelNames)) {
      assert.equal(diagnosticsChannel.channel(name).hasSubscribers, false, name);
    }
  } finally {
    await agent.destroy();
    await srv.close();
  }
});
