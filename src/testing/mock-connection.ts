/**
 * What a MockAgent's pool gets instead of a dialed socket: a real H1Connection over an in-memory
 * socket whose far end answers from interceptors. Everything above the socket is warmpool's own
 * (the request writer, the response parser, the ResponseBody, headersTimeout, bodyTimeout, abort,
 * the pool's queue and stats, the Client's retries and middleware), so a mocked response behaves as
 * a served one. The far end reads the request as a server would (head, then the body by its
 * Content-Length or chunked framing), answers with HTTP/1.1 bytes, and can pass the request through
 * to the real origin when network access is enabled for it.
 *
 * Each connection carries one exchange and then closes (counted as 'not-reusable'): a connection
 * reused after a mocked failure would bring in the pool's transparent stale retry, which would take
 * a second interceptor. Tests should see one request use one interceptor.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Clock } from '../clock.js';
import type { DialTarget } from '../dial/dial.js';
import { MockNotMatchedError } from '../errors.js';
import type { ConnectionOwner } from '../exchange/connection.js';
import type { Exchange } from '../exchange/exchange.js';
import { H1Connection } from '../h1/connection.js';
import type { ParserLimits } from '../h1/parser.js';
import { type MockInterceptor, type MockReply, type MockRequest, responseBytes } from './interceptors.js';

/** What a mock socket asks of its MockAgent. */
export interface MockRegistry {
  /** The first interceptor that matches `req`, taken (one answer used); undefined if none. */
  take(req: MockRequest): MockInterceptor | undefined;
  /** May a request to `origin` that matched nothing go to the network? */
  netConnectAllowed(origin: string): boolean;
  /** The interceptors with answers left, described, for the not-matched error. */
  describePending(): string[];
}

export class MockConnection extends H1Connection {
  /** The exchange on it now (H1Connection keeps its own private). */
  current: Exchange | null = null;

  constructor(id: number, socket: MockSocket, owner: ConnectionOwner, clock: Clock, limits: ParserLimits) {
    super(id, socket as unknown as net.Socket, owner, clock, limits);
    socket.conn = this;
  }

  override dispatch(ex: Exchange): void {
    this.current = ex;
    ex.mocked = true;
    super.dispatch(ex);
    // One exchange per mock connection (see the file comment): it closes when this one completes.
    if (!this.closed) this.close('not-reusable');
  }
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** The in-memory socket. Its writes are the request; what it pushes is the response. */
export class MockSocket extends Duplex {
  conn: MockConnection | null = null;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private answered = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  private upstream: net.Socket | null = null;

  constructor(
    private readonly registry: MockRegistry,
    private readonly origin: string,
    private readonly target: DialTarget,
  ) {
    super();
  }

  // H1Connection asks a socket to (not) keep the process alive; an in-memory one never does.
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.upstream !== null) {
      this.upstream.write(chunk, callback);
      return;
    }
    this.received.push(chunk);
    this.receivedBytes += chunk.length;
    callback();
    if (!this.answered) {
      const req = this.completeRequest();
      // Answered on a later turn, never from inside the connection's write.
      if (req !== undefined) {
        this.answered = true;
        setImmediate(() => this.answer(req));
      }
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.upstream?.destroy();
    callback(err);
  }

  /** The request, once its head and whole body are here (as the client's writer frames them). */
  private completeRequest(): MockRequest | undefined {
    const buf = this.received.length === 1 ? this.received[0]! : Buffer.concat(this.received);
    this.received = [buf];
    const headEnd = buf.indexOf(HEAD_END);
    if (headEnd < 0) return undefined;
    const lines = buf.toString('latin1', 0, headEnd).split('\r\n');
    const [method = '', path = ''] = lines[0]!.split(' ');
    const headers: Record<string, string | string[]> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      const had = headers[name];
      headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
    }
    const start = headEnd + 4;
    let body: Buffer;
    if (String(headers['transfer-encoding'] ?? '').includes('chunked')) {
      const decoded = dechunk(buf, start);
      if (decoded === undefined) return undefined;
      body = decoded;
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (buf.length < start + length) return undefined;
      body = buf.subarray(start, start + length);
    }
    return { origin: this.origin, path, method, headers, body: body.toString('utf8') };
  }

  private answer(req: MockRequest): void {
    if (this.destroyed) return;
    const interceptor = this.registry.take(req);
    if (interceptor === undefined) {
      if (this.registry.netConnectAllowed(this.origin)) {
        this.passThrough();
        return;
      }
      const pending = this.registry.describePending();
      this.conn?.destroy(
        'error',
        new MockNotMatchedError(
          `no MockAgent interceptor matches ${req.method} ${this.origin}${req.path}${
            pending.length === 0 ? ' (none are pending)' : `; pending: ${pending.join('; ')}`
          }`,
          { origin: this.origin },
        ),
      );
      return;
    }
    const answer = interceptor.answer!;
    const run = (): void => {
      if (this.destroyed) return;
      if (answer.kind === 'error') {
        this.conn?.destroy('error', answer.error);
        return;
      }
      if (answer.kind === 'reply') {
        this.reply(answer.reply, req.method);
        return;
      }
      Promise.resolve()
        .then(() => answer.fn(req))
        .then(
          (reply) => this.reply(reply, req.method),
          (err: unknown) => this.conn?.destroy('error', err instanceof Error ? err : new Error(String(err))),
        );
    };
    if (interceptor.delayMs > 0) this.timer = setTimeout(run, interceptor.delayMs);
    else run();
  }

  private reply(reply: MockReply, method: string): void {
    if (this.destroyed) return;
    let bytes: Buffer;
    try {
      bytes = responseBytes(reply, method);
    } catch (err) {
      this.conn?.destroy('error', err as Error);
      return;
    }
    this.push(bytes);
  }

  /** No interceptor, network allowed: the request goes to the real origin, its response comes back. */
  private passThrough(): void {
    const t = this.target;
    if (this.conn?.current) this.conn.current.mocked = false;
    const upstream = t.secure
      ? tls.connect({
          host: t.hostname,
          port: t.port,
          servername: t.tls?.servername ?? (net.isIP(t.hostname) === 0 ? t.hostname : undefined),
          ca: t.tls?.ca,
          cert: t.tls?.cert,
          key: t.tls?.key,
          rejectUnauthorized: t.tls?.rejectUnauthorized,
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host: t.hostname, port: t.port });
    this.upstream = upstream;
    upstream.on('data', (d: Buffer) => this.push(d));
    upstream.on('end', () => this.push(null));
    upstream.on('error', (err) => this.destroy(err));
    upstream.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
    for (const b of this.received) upstream.write(b);
    this.received = [];
  }
}

/** A chunked body from `start`, decoded; undefined until its last chunk is here. */
function dechunk(buf: Buffer, start: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = start;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(buf.toString('latin1', at, lineEnd), 16);
    if (size === 0) return buf.indexOf('\r\n', lineEnd + 2) < 0 ? undefined : Buffer.concat(parts);
    const end = lineEnd + 2 + size;
    if (buf.length < end + 2) return undefined;
    parts.push(buf.subarray(lineEnd + 2, end));
    at = end + 2;
  }
}
