/**
 * The published type declarations (`npm run build`: tsconfig.build.json with stripInternal) hold the
 * public surface of DESIGN.md and nothing of the pool's own wiring, and they type-check for a user
 * who compiles with everything strict and the library's declarations checked too (skipLibCheck off).
 *
 * The declarations are emitted into a temporary directory, and a user's module that calls the public
 * API is compiled against them. `@ts-expect-error` lines name members the declarations must not have:
 * were one there, the directive would be unused, and that is a compile error too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { repoRootFrom } from './helpers/conformance-cases.js';

const run = promisify(execFile);
const ROOT = repoRootFrom(import.meta.url);
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** A user who wants every check: strict, exact optional properties, and the libraries' types checked. */
const USER_FLAGS = (
  '--noEmit --strict --exactOptionalPropertyTypes --skipLibCheck false --module NodeNext ' +
  '--moduleResolution NodeNext --target ES2022 --lib ES2023 --types node'
).split(' ');

/** A user's module: the public API in use, and the pool's own members out of reach. */
const CONSUMER = `
import {
  Agent, Client, getGlobalAgent, request, probeKeepAlive, Response, ResponseBody, WarmpoolError,
  HeadersTimeoutError, type AgentStats, type OriginStats, type IncomingHeaders, type ConnectionInfo,
  type Timings, type InformationalResponse, WarmpoolDispatcher, installGlobalDispatcher, type DispatchHandler,
  fetch, fetchDetails, type FetchDetails, type FetchInit, RedirectError, DecodeError,
  type Middleware, type MiddlewareRequest, type RetryOptions,
  channelNames, type RequestCreateMessage, type RequestHeadersSentMessage, type RequestErrorMessage,
  type ConnectionClosedMessage, type DiagnosticsRequest, type CloseReason,
} from './dist/index.js';
import { MockAgent, MockNotMatchedError, type MockRequest } from './dist/testing/index.js';

// diagnostics_channel payloads, as a subscriber types them.
export function onCreate(m: RequestCreateMessage): void {
  const r: DiagnosticsRequest = m.request;
  m.addHeader('traceparent', r.url);
}
export function onSent(m: RequestHeadersSentMessage): number {
  return m.connection.id + m.attempt + m.queuedMs + (m.reused ? 1 : 0);
}
export function onError(m: RequestErrorMessage): string {
  return m.afterResponse ? m.error.message : m.request.method;
}
export function onClosed(m: ConnectionClosedMessage): CloseReason {
  return m.reason;
}
export const createChannel: 'warmpool:request:create' = channelNames.requestCreate;

export async function use(): Promise<void> {
  const agent = new Agent({
    maxConnectionsPerOrigin: 4, idleTimeout: 1000, maxConnectionAge: 60_000,
    maxRequestsPerConnection: 100, connectTimeout: 1000, allowHttp2: true, tls: { rejectUnauthorized: true },
  });
  const client = new Client({ agent, baseUrl: 'http://127.0.0.1:1', headers: { 'x-a': '1' }, headersTimeout: 1000 });
  const other: Client = client.with({ headers: { 'x-b': '2' }, bodyTimeout: 1000 });
  const res: Response = await other.request('/x', {
    method: 'POST', headers: [['x-c', '3']], body: 'hi', signal: AbortSignal.timeout(1000), idempotent: true,
    headersTimeout: 1, bodyTimeout: 1, onInformation: (info: InformationalResponse) => void info.status,
  });
  const status: number = res.status;
  const version: '1.0' | '1.1' | '2' = res.httpVersion;
  const headers: IncomingHeaders = res.headers;
  const trailers: IncomingHeaders | undefined = res.trailers;
  const connection: ConnectionInfo = res.connection;
  const timings: Timings = res.timings;
  const body: ResponseBody = res.body;
  const text: string = await body.text();
  const parsed: { a: number } = await body.json<{ a: number }>();
  const bytes: Buffer = await body.bytes();
  await body.dump({ limit: 10 });
  for await (const chunk of body) void chunk;
  const stats: AgentStats = agent.stats();
  const origin: OriginStats | undefined = agent.originStats('http://127.0.0.1:1');
  void [status, version, headers, trailers, connection, timings, text, parsed, bytes, stats, origin];
  await request('http://127.0.0.1:1/');
  void getGlobalAgent();
  void (await probeKeepAlive('http://127.0.0.1:1/', { samples: 2 })).verdict;
  try {
    await agent.close();
  } catch (err) {
    if (err instanceof HeadersTimeoutError) void err.origin;
    if (err instanceof WarmpoolError) void err.code;
  }
  const dispatcher = new WarmpoolDispatcher({ agent });
  const handler: DispatchHandler = { onError: (err: Error) => void err.message, onData: () => true };
  const taken: boolean = dispatcher.dispatch({ origin: 'http://127.0.0.1:1', path: '/', method: 'GET' }, handler);
  const restore: () => void = installGlobalDispatcher({ agent });
  restore();
  void [taken, dispatcher.closed, dispatcher.destroyed];
  await dispatcher.close();
  await dispatcher.destroy();
  const init: FetchInit = { agent, redirect: 'manual', headersTimeout: 1, retryOnStale: false, tls: {} };
  const fetched: globalThis.Response = await fetch('http://127.0.0.1:1/', init);
  const viaRequest: globalThis.Response = await fetch(new Request('http://127.0.0.1:1/'), { body: new Uint8Array(1), method: 'POST' });
  const viaClient: globalThis.Response = await client.fetch(new URL('http://127.0.0.1:1/'), { signal: null });
  const details: FetchDetails | undefined = fetchDetails(fetched);
  const reused: boolean | undefined = details?.connection.reused;
  const followed: Response = await client.request('/', { maxRedirections: 3, decompress: true });
  const withDefaults: Client = client.with({ maxRedirections: 1, decompress: false });
  void [viaRequest, viaClient, reused, followed, withDefaults, new RedirectError('m', 301).statusCode, DecodeError];
  await agent.destroy();

  // The pool's own wiring:
  // @ts-expect-error
  void agent.poolFor;
  // @ts-expect-error
  void agent.knownPool;
  // @ts-expect-error
  void agent.dispatch;
  // @ts-expect-error
  void agent.submit;
  // @ts-expect-error
  void dispatcher.ended;
  // @ts-expect-error
  void agent.reserveConnection;
  // @ts-expect-error
  void agent.releaseConnection;
  // @ts-expect-error
  void agent.roomWanted;
  // @ts-expect-error
  void agent.onPoolEmpty;
  // @ts-expect-error
  void agent.nextConnectionId;
  // @ts-expect-error
  void agent.sessions;
  // @ts-expect-error
  void agent.closing;
  // The connection's side of a body:
  // @ts-expect-error
  void body.pushChunk;
  // @ts-expect-error
  void body.endFromSource;
  // @ts-expect-error
  void body.failFromSource;
  // @ts-expect-error
  void body.keepsChunks;
  // @ts-expect-error
  void body.takeWhole;
}

export async function policies(): Promise<void> {
  const retry: RetryOptions = { limit: 2, statusCodes: [503], methods: ['GET'], backoff: { baseMs: 10, maxMs: 100 }, maxRetryAfterMs: 1000 };
  const log: Middleware = async (req: MiddlewareRequest, next) => {
    const url: string = req.url;
    const headers: Record<string, string | string[]> = req.headers;
    void [url, headers];
    return next({ ...req, headers: { ...req.headers, 'x-signed': '1' } });
  };
  const mock = new MockAgent({ maxConnectionsPerOrigin: 2 });
  mock.intercept({ origin: 'https://a.test', path: /^[/]x/, headers: { accept: (v: string) => v !== '' } })
    .reply(200, { ok: true }, { 'x-a': '1' }).times(2).delay(1);
  mock.intercept({ origin: 'https://a.test', path: '/f' }).reply((req: MockRequest) => ({ status: 200, body: req.body })).persist();
  mock.intercept({ origin: 'https://a.test', path: '/e' }).replyWithError(new Error('x'));
  mock.enableNetConnect('http://127.0.0.1:1');
  mock.disableNetConnect();
  const client = new Client({ agent: mock, retry, middleware: [log] }).use(log);
  const res = await client.request('https://a.test/x', { retry: { limit: 0 } });
  const attempts: number = res.attempts;
  const mocked: true | undefined = res.connection.mocked;
  void [attempts, mocked, mock.pendingInterceptors()];
  try {
    mock.assertNoPendingInterceptors();
  } catch (err) {
    if (err instanceof MockNotMatchedError) void err.code;
  }
  // @ts-expect-error
  void mock.take;
  // @ts-expect-error
  void mock.connector;
}
`;

test(
  'the published types: the public API type-checks for a strict user, and the pool internals are not in them',
  {
    timeout: 120_000,
  },
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'warmpool-types-'));
    try {
      const dist = path.join(dir, 'dist');
      await run(process.execPath, [
        TSC,
        '-p',
        path.join(ROOT, 'tsconfig.build.json'),
        '--outDir',
        dist,
        '--emitDeclarationOnly',
      ]);
      await writeFile(path.join(dir, 'consumer.mts'), CONSUMER);
      const args = [TSC, ...USER_FLAGS, '--typeRoots', path.join(ROOT, 'node_modules', '@types')];
      args.push(path.join(dir, 'consumer.mts'));
      const result = await run(process.execPath, args).then(
        () => '',
        (err: { stdout?: string; stderr?: string; message: string }) =>
          `${err.stdout ?? ''}${err.stderr ?? ''}` || err.message,
      );
      assert.equal(
        result,
        '',
        `the consumer does not compile against the published declarations:\n${result}`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
