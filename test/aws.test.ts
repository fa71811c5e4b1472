/**
 * warmpool/aws: WarmpoolHttpHandler under the real AWS SDK for JavaScript v3 (@aws-sdk/client-s3),
 * against s3rver (a real S3-compatible server on loopback) and against local servers that script the
 * failures the SDK's retry strategy must recognise. The SDK is not mocked anywhere.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { HttpHandlerOptions, HttpRequest, HttpResponse, RequestHandler } from '@smithy/types';
import { WarmpoolHttpHandler, requestUrl } from '../src/aws/handler.js';
import { Agent, getGlobalAgent } from '../src/index.js';
import { TEST_CERT, startH2Server } from './helpers/h2-server.js';
import { startHttpServer } from './helpers/http-server.js';
import { type TestS3Server, startS3Server } from './helpers/s3-server.js';

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

function s3(endpoint: string, config: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: CREDENTIALS,
    // s3rver 3.7 predates the SDK's flexible checksums: a streamed body sent aws-chunked (with a
    // checksum trailer) would be stored with its chunk framing. Checksums only where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...config,
  });
}

/** An SDK-shaped request (what the SDK hands a handler after signing). */
function sdkRequest(url: string, over: Partial<HttpRequest> = {}): HttpRequest {
  const u = new URL(url);
  return {
    method: 'GET',
    protocol: u.protocol,
    hostname: u.hostname,
    port: Number(u.port),
    path: '/',
    query: {},
    headers: { host: u.host },
    ...over,
  };
}

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a rejection');
}

/** Every `code` down the error's cause chain. */
function codes(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err, i = 0; e instanceof Error && i < 10; e = e.cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.push(code);
  }
  return out;
}

describe('WarmpoolHttpHandler: the SDK handler contract', () => {
  it('is an SDK HttpHandler by type (compile-time) and by shape', () => {
    const handler = new WarmpoolHttpHandler();
    const asSdk: RequestHandler<HttpRequest, HttpResponse, HttpHandlerOptions> = handler;
    assert.equal(asSdk.metadata?.handlerProtocol, 'http/1.1');
    assert.equal(typeof handler.updateHttpClientConfig, 'function');
    assert.equal(typeof handler.httpHandlerConfigs, 'function');
    assert.equal(typeof handler.destroy, 'function');
  });

  it('shares the process-wide Agent by default, and one Agent per other connectionTimeout', () => {
    assert.equal(new WarmpoolHttpHandler().agent, getGlobalAgent());
    const a = new WarmpoolHttpHandler({ connectionTimeout: 1234 });
    const b = new WarmpoolHttpHandler({ connectionTimeout: 1234 });
    assert.notEqual(a.agent, getGlobalAgent());
    assert.equal(a.agent, b.agent, 'two handlers with the same setting share one pool');
    assert.equal(a.agent.options.connectTimeout, 1234);
    const own = new Agent();
    assert.equal(new WarmpoolHttpHandler({ agent: own }).agent, own);
    assert.throws(() => new WarmpoolHttpHandler({ agent: own, allowHttp2: false }), {
      code: 'WARMPOOL_INVALID_ARGUMENT',
    });
    void a.agent.close();
    void own.close();
  });

  it('builds the URL from the parts: IPv6 in brackets, sorted, repeated and valueless query keys, fragment', () => {
    const url = requestUrl({
      method: 'GET',
      protocol: 'https:',
      hostname: '::1',
      port: 8443,
      path: '/bucket/a%20b',
      query: { uploads: null, 'list-type': '2', tag: ['b', 'a'], "it's": '(x)' },
      fragment: 'frag',
      headers: {},
    });
    assert.equal(url, 'https://[::1]:8443/bucket/a%20b?it%27s=%28x%29&list-type=2&tag=b&tag=a&uploads#frag');
    assert.equal(
      requestUrl({ method: 'GET', protocol: 'http', hostname: '[::1]', path: '', headers: {} }),
      'http://[::1]/',
    );
  });

  it('sends path and query as built, not the fragment, and userinfo as Basic authorization', async () => {
    const server = await startHttpServer((req, res) => {
      res.end(JSON.stringify({ url: req.url, authorization: req.headers.authorization ?? null }));
    });
    try {
      const { response } = await new WarmpoolHttpHandler().handle(
        sdkRequest(server.url, {
          path: '/p',
          query: { uploads: null, k: ['2', '1'] },
          fragment: 'not-sent',
          username: 'user',
          password: 'pa:ss',
        }),
      );
      const text = await new Response(Readable.toWeb(response.body as Readable) as ReadableStream).text();
      assert.deepEqual(JSON.parse(text), {
        url: '/p?k=2&k=1&uploads',
        authorization: `Basic ${Buffer.from('user:pa:ss').toString('base64')}`,
      });
    } finally {
      await server.close();
    }
  });

  it('answers with status, reason, lowercase headers (repeats joined with ", ") and a Readable body', async () => {
    const server = await startHttpServer((_req, res) => {
      res.setHeader('X-Multi', ['a', 'b']);
      res.setHeader('X-Single', 'one');
      res.writeHead(201, 'Made It');
      res.end('body');
    });
    try {
      const { response } = await new WarmpoolHttpHandler().handle(sdkRequest(server.url));
      assert.equal(response.statusCode, 201);
      assert.equal(response.reason, 'Made It');
      assert.equal(response.headers['x-multi'], 'a, b');
      assert.equal(response.headers['x-single'], 'one');
      assert.ok(response.body instanceof Readable);
      let text = '';
      for await (const chunk of response.body as Readable) text += String(chunk);
      assert.equal(text, 'body');
    } finally {
      await server.close();
    }
  });

  it("sends a body of unknown length chunked when the SDK set transfer-encoding: chunked, and doesn't refuse it", async () => {
    const server = await startHttpServer(async (req, res) => {
      let n = 0;
      for await (const chunk of req) n += (chunk as Buffer).length;
      res.end(`${req.headers['transfer-encoding']} ${n}`);
    });
    try {
      const { response } = await new WarmpoolHttpHandler().handle(
        sdkRequest(server.url, {
          method: 'PUT',
          headers: { host: `127.0.0.1:${server.port}`, 'transfer-encoding': 'chunked' },
          body: Readable.from([Buffer.alloc(1000), Buffer.alloc(24)]),
        }),
      );
      let text = '';
      for await (const chunk of response.body as Readable) text += String(chunk);
      assert.equal(text, 'chunked 1024');
    } finally {
      await server.close();
    }
  });

  it('updateHttpClientConfig sets requestTimeout (httpHandlerConfigs shows it); destroy() leaves the Agent open', async () => {
    const agent = new Agent();
    const handler = new WarmpoolHttpHandler({ agent });
    handler.updateHttpClientConfig('requestTimeout', 50);
    assert.equal(handler.httpHandlerConfigs().requestTimeout, 50);
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const err = await rejection(handler.handle(sdkRequest(`http://127.0.0.1:${port}`)));
      assert.equal(err.name, 'TimeoutError');
      handler.destroy();
      assert.equal(agent.closing, false);
    } finally {
      silent.close();
      await agent.destroy();
    }
  });
});

describe('WarmpoolHttpHandler: errors the SDK classifies and retries (real S3Client, maxAttempts 2)', () => {
  it('a response that never comes is a TimeoutError, and the SDK retries it', async () => {
    let requests = 0;
    const server = net.createServer((socket) => {
      socket.on('data', () => requests++); // and never answer
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const client = s3(endpoint, {
      maxAttempts: 2,
      retryStrategy: undefined,
      requestHandler: new WarmpoolHttpHandler({ requestTimeout: 100 }),
    });
    try {
      const err = await rejection(client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'k' })));
      assert.equal(err.name, 'TimeoutError');
      assert.equal(requests, 2, 'the SDK sent it again');
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('a connection closed before the response carries ECONNRESET, and the SDK retries it', async () => {
    let requests = 0;
    const server = net.createServer((socket) => {
      socket.on('data', () => {
        requests++;
        socket.destroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const client = s3(endpoint, { maxAttempts: 2, requestHandler: new WarmpoolHttpHandler() });
    try {
      const err = await rejection(client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'k' })));
      assert.equal(err.code, 'WARMPOOL_SOCKET_CLOSED');
      assert.ok(codes(err).includes('ECONNRESET'), `codes: ${codes(err).join(', ')}`);
      assert.equal(requests, 2, 'the SDK sent it again');
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('a refused connection carries ECONNREFUSED in its cause', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const client = s3(`http://127.0.0.1:${port}`, {
      maxAttempts: 1,
      requestHandler: new WarmpoolHttpHandler(),
    });
    try {
      const err = await rejection(client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'k' })));
      assert.ok(codes(err).includes('ECONNREFUSED'), `codes: ${codes(err).join(', ')}`);
    } finally {
      client.destroy();
    }
  });

  it('an aborted operation is an AbortError and is not retried', async () => {
    let requests = 0;
    const server = net.createServer((socket) => {
      socket.on('data', () => requests++);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const client = s3(endpoint, { maxAttempts: 3, requestHandler: new WarmpoolHttpHandler() });
    const controller = new AbortController();
    try {
      const pending = client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'k' }), {
        abortSignal: controller.signal,
      });
      while (requests === 0) await new Promise((r) => setTimeout(r, 5));
      controller.abort();
      const err = await rejection(pending);
      assert.equal(err.name, 'AbortError');
      assert.equal(requests, 1);
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('an HTTP/2 REFUSED_STREAM is recognised by the SDK as transient and retried', async () => {
    const server = await startH2Server({
      handler: (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM),
    });
    const agent = new Agent({ tls: { ca: TEST_CERT } });
    const client = s3(`https://localhost:${server.port}`, {
      maxAttempts: 2,
      requestHandler: new WarmpoolHttpHandler({ agent }),
    });
    try {
      const err = await rejection(client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'k' })));
      assert.ok(codes(err).includes('ERR_HTTP2_STREAM_ERROR'), `codes: ${codes(err).join(', ')}`);
      // warmpool replays a lone refused stream once itself; the SDK's second attempt does the same.
      assert.equal(server.stats.streamsTotal, 4);
    } finally {
      client.destroy();
      await agent.destroy();
      await server.close();
    }
  });
});

describe('the AWS SDK on warmpool against s3rver (a real S3-compatible server)', () => {
  let server: TestS3Server;
  const BUCKET = 'warmpool-test';

  before(async () => {
    server = await startS3Server();
    const client = s3(server.endpoint, { requestHandler: new WarmpoolHttpHandler() });
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  after(async () => {
    await getGlobalAgent().close();
    await server?.close();
  });

  it('put, get, head, list and delete objects', async () => {
    const client = s3(server.endpoint, { requestHandler: new WarmpoolHttpHandler() });
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a.txt', Body: 'hello a' }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'b.txt', Body: Buffer.from('hello b') }));
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' }));
    assert.equal(await got.Body?.transformToString(), 'hello a');
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'b.txt' }));
    assert.equal(head.ContentLength, 7);
    const list = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    assert.deepEqual(
      list.Contents?.map((o) => o.Key).filter((k) => k === 'a.txt' || k === 'b.txt'),
      ['a.txt', 'b.txt'],
    );
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'a.txt' }));
    const missing = await rejection(client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a.txt' })));
    assert.equal(missing.name, 'NoSuchKey');
  });

  it('a streamed 6 MiB upload (with Expect: 100-continue) and a streamed download, checked by sha256', async () => {
    const client = s3(server.endpoint, { requestHandler: new WarmpoolHttpHandler() });
    const size = 6 * 1024 * 1024;
    const hash = createHash('sha256');
    function* pieces(): Generator<Buffer> {
      for (let i = 0; i < size / 65536; i++) {
        const b = Buffer.alloc(65536, i % 251);
        hash.update(b);
        yield b;
      }
    }
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'big',
        Body: Readable.from(pieces()),
        ContentLength: size,
      }),
    );
    const expected = hash.digest('hex');
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'big' }));
    const down = createHash('sha256');
    let n = 0;
    for await (const chunk of got.Body as Readable) {
      down.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    assert.equal(n, size);
    assert.equal(down.digest('hex'), expected);
  });

  it('a multipart upload of two streamed 5 MiB parts', async () => {
    const client = s3(server.endpoint, { requestHandler: new WarmpoolHttpHandler() });
    const part = 5 * 1024 * 1024;
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'multi' }),
    );
    const parts = [];
    for (const n of [1, 2]) {
      const body = Readable.from([Buffer.alloc(part / 2, n), Buffer.alloc(part / 2, n)]);
      const { ETag } = await client.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key: 'multi',
          UploadId,
          PartNumber: n,
          Body: body,
          ContentLength: part,
        }),
      );
      parts.push({ ETag, PartNumber: n });
    }
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'multi',
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'multi' }));
    assert.equal(head.ContentLength, 2 * part);
  });

  it('100 operations at concurrency 4, each through a new S3Client, open at most 4 connections', async (t) => {
    await s3(server.endpoint, { requestHandler: new WarmpoolHttpHandler() }).send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'small', Body: 'small value' }),
    );
    /** 100 puts and gets, 4 at a time, each through a client made for it (then destroyed). */
    async function run(makeClient: () => S3Client): Promise<number> {
      server.resetCount();
      let next = 0;
      async function worker(): Promise<void> {
        while (next < 100) {
          const i = next++;
          const client = makeClient();
          try {
            if (i % 2 === 0) {
              await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `op-${i}`, Body: `value ${i}` }));
            } else {
              const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'small' }));
              assert.equal(await got.Body?.transformToString(), 'small value');
            }
          } finally {
            client.destroy();
          }
        }
      }
      await Promise.all([worker(), worker(), worker(), worker()]);
      return server.connections;
    }
    const agent = new Agent();
    try {
      const warmpool = await run(() =>
        s3(server.endpoint, { requestHandler: new WarmpoolHttpHandler({ agent }) }),
      );
      const sdkDefault = await run(() => s3(server.endpoint));
      t.diagnostic(
        `connections opened for 100 operations: SDK default handler ${sdkDefault}, warmpool ${warmpool}`,
      );
      assert.ok(warmpool <= 4, `warmpool opened ${warmpool} connections`);
      assert.ok(sdkDefault > warmpool, `the default handler opened ${sdkDefault}`);
    } finally {
      await agent.close();
    }
  });
});
