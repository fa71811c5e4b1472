/**
 * fault-server: a raw `net` HTTP/1.1 server for fault injection.
 *
 * It parses requests itself (request line, headers, Content-Length or chunked bodies, pipelined
 * requests answered in order) so that a test controls every byte and every close:
 *   - keep-alive timeouts, advertised (`Keep-Alive: timeout=N`) or silent;
 *   - a cap of requests per connection, announced with `Connection: close` or not;
 *   - closing with FIN (socket.end) or RST (socket.resetAndDestroy);
 *   - per request, through `handler`: respond (Content-Length or chunked, with a delay), stall before
 *     the head, send the head then stall the body, reset mid-body, close or reset without answering,
 *     or write raw bytes.
 *
 * It records everything a test needs to prove a pool behaved: connection counters, per-connection
 * request counts, an event log, and above all any bytes that arrive on a connection *after the server
 * decided to close it* (`write-after-close`): after a FIN close the server keeps reading (for
 * `lingerMs`) precisely to catch a client that wrote on a connection it should have known was dead.
 * Request ids (the `x-request-id` header by default) are counted so a soak test can prove that no
 * request was processed twice.
 */
import { STATUS_CODES } from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export type HeaderMap = Record<string, string | number | readonly string[]>;

/** One parsed request, as the handler sees it. */
export interface FaultRequest {
  connId: number;
  /** 1-based index of this request on its connection. */
  seq: number;
  method: string;
  path: string;
  httpVersion: string;
  /** Lowercased names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  rawHeaders: [string, string][];
  body: Buffer;
  requestId: string | undefined;
}

export interface FaultContext {
  connId: number;
  /** Requests seen on this connection so far, including this one. */
  requestsOnConnection: number;
  server: FaultServer;
}

/** What happens after a response has been written. */
export type AfterResponse = 'keep' | 'close' | 'close-silently' | 'reset';

interface HeadParts {
  status?: number;
  headers?: HeaderMap;
  /** Wait this long before doing anything. */
  delayMs?: number;
}

export type FaultAction =
  /** A normal response. `after: 'close'` adds `Connection: close` and closes (FIN or RST per options). */
  | (HeadParts & {
      type: 'respond';
      body?: string | Buffer;
      /** Send with Transfer-Encoding: chunked; `chunks` gives explicit pieces (else `body` is one chunk). */
      chunked?: boolean;
      chunks?: (string | Buffer)[];
      trailers?: HeaderMap;
      after?: AfterResponse;
    })
  /** Never answer; the connection stays open until the client or close() ends it. */
  | { type: 'stall'; delayMs?: number }
  /** Send the head (Content-Length of the full body) and `bytesBeforeStall` bytes of body, then nothing. */
  | (HeadParts & { type: 'stall-body'; body: string | Buffer; bytesBeforeStall?: number })
  /** Send the head (Content-Length of the full body) and `bytesBeforeReset` bytes of body, then RST. */
  | (HeadParts & { type: 'reset-mid-body'; body: string | Buffer; bytesBeforeReset?: number })
  /** Close (FIN, or RST with resetInsteadOfFin) without responding. */
  | { type: 'close'; delayMs?: number }
  /** RST without responding. */
  | { type: 'reset'; delayMs?: number }
  /** Write these exact bytes as the response, then `after` (default 'keep'). */
  | { type: 'raw'; data: string | Buffer; delayMs?: number; after?: AfterResponse };

export type FaultHandler = (
  req: FaultRequest,
  ctx: FaultContext,
) => FaultAction | undefined | Promise<FaultAction | undefined>;

export interface FaultServerOptions {
  /** Close a connection idle this long (FIN unless resetInsteadOfFin). */
  keepAliveTimeoutMs?: number;
  /** Send `Keep-Alive: timeout=N`: true = floor(keepAliveTimeoutMs / 1000), a number = that N (may lie). */
  advertiseKeepAlive?: boolean | number;
  /** Close idle connections silently after this long (never advertised). */
  closeIdleAfterMs?: number;
  /** Close after this many requests on one connection. */
  maxRequestsPerConnection?: number;
  /** With maxRequestsPerConnection: send `Connection: close` on the last response (else just close). */
  announceClose?: boolean;
  /** Every server-initiated close is an RST (socket.resetAndDestroy()) instead of a FIN. */
  resetInsteadOfFin?: boolean;
  /** After a FIN close, keep reading this long to catch writes after close, then destroy. Default 1000. */
  lingerMs?: number;
  /** Header whose value is logged and counted as the request id. Default 'x-request-id'. */
  requestIdHeader?: string;
  /** Keep request bodies in `requests` (default true; turn off for long soaks). */
  keepBodies?: boolean;
  /** Default: 200 "ok\n" with Content-Length. */
  handler?: FaultHandler;
  /** Port to listen on (default 0 = any free port). */
  port?: number;
}

export type FaultEventKind =
  | 'accept'
  | 'request'
  | 'response'
  | 'close-by-server'
  | 'close-by-client'
  | 'reset'
  | 'write-after-close';

export interface FaultEvent {
  /** ms since the server started (performance.now based). */
  t: number;
  connId: number;
  kind: FaultEventKind;
  method?: string;
  path?: string;
  requestId?: string;
  status?: number;
  /** Free text: why a close happened, how many bytes arrived after close, ... */
  detail?: string;
}

export interface FaultStats {
  connectionsAccepted: number;
  openConnections: number;
  maxOpenConnections: number;
  requestsTotal: number;
  /** connId -> requests received on it. */
  requestsPerConnection: Map<number, number>;
  /** Number of `write-after-close` events. */
  writesAfterClose: number;
}

const CRLF = '\r\n';
const MAX_HEAD = 64 * 1024;

class ParseError extends Error {}

/** One connection's state. */
class Conn {
  buf: Buffer = Buffer.alloc(0);
  queue: FaultRequest[] = [];
  busy = false;
  /** The server decided to close: any byte that arrives from now on is a write-after-close. */
  closing = false;
  requests = 0;
  idleTimer: NodeJS.Timeout | undefined;
  lingerTimer: NodeJS.Timeout | undefined;
  /** Head of a request whose body is still arriving. */
  pending: { req: FaultRequest; remaining: number; chunked: boolean; parts: Buffer[] } | undefined;
  constructor(
    readonly id: number,
    readonly socket: net.Socket,
  ) {}
}

export class FaultServer {
  readonly stats: FaultStats = {
    connectionsAccepted: 0,
    openConnections: 0,
    maxOpenConnections: 0,
    requestsTotal: 0,
    requestsPerConnection: new Map(),
    writesAfterClose: 0,
  };
  readonly log: FaultEvent[] = [];
  /** Every request received, in arrival order. */
  readonly requests: FaultRequest[] = [];
  /** request id -> times received. */
  readonly requestIdCounts = new Map<string, number>();

  private server: net.Server;
  private readonly conns = new Map<number, Conn>();
  private nextConnId = 1;
  private readonly t0 = performance.now();
  private _port = 0;
  private readonly opts: FaultServerOptions;

  constructor(opts: FaultServerOptions = {}) {
    this.opts = opts;
    this.server = this.makeServer();
  }

  get port(): number {
    return this._port;
  }
  get url(): string {
    return `http://127.0.0.1:${this._port}`;
  }

  /** Request ids seen more than once. */
  duplicateRequestIds(): string[] {
    return [...this.requestIdCounts].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** Log entries of one kind (or several). */
  events(...kinds: FaultEventKind[]): FaultEvent[] {
    return this.log.filter((e) => kinds.includes(e.kind));
  }

  async listen(port = this.opts.port ?? 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this._port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** Close the listener and every socket (without lingering), then listen again on the same port. */
  async restart(): Promise<void> {
    await this.close('restart');
    this.server = this.makeServer();
    await this.listen(this._port);
  }

  /** Close the listener and destroy every socket. */
  async close(why = 'server-close'): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.conns.values()) {
      if (!c.closing) this.record(c, 'close-by-server', { detail: why });
      c.closing = true;
      c.socket.destroy();
    }
    await closed;
  }

  private makeServer(): net.Server {
    return net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  private now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  private record(c: Conn, kind: FaultEventKind, extra: Omit<FaultEvent, 't' | 'connId' | 'kind'> = {}): void {
    this.log.push({ t: this.now(), connId: c.id, kind, ...extra });
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const c = new Conn(this.nextConnId++, socket);
    this.conns.set(c.id, c);
    const s = this.stats;
    s.connectionsAccepted++;
    s.openConnections++;
    s.maxOpenConnections = Math.max(s.maxOpenConnections, s.openConnections);
    s.requestsPerConnection.set(c.id, 0);
    this.record(c, 'accept', { detail: `${socket.remoteAddress}:${socket.remotePort}` });

    let clientError: string | undefined;
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clientError = err.code ?? err.message;
    });
    socket.on('end', () => {
      if (!c.closing) {
        this.record(c, 'close-by-client', { detail: 'fin' });
        c.closing = true;
      }
    });
    socket.on('close', () => {
      if (!c.closing) this.record(c, 'close-by-client', { detail: clientError ?? 'close' });
      c.closing = true;
      clearTimeout(c.idleTimer);
      clearTimeout(c.lingerTimer);
      this.conns.delete(c.id);
      s.openConnections--;
    });
    this.armIdle(c);
  }

  private onData(c: Conn, chunk: Buffer): void {
    if (c.closing) {
      this.stats.writesAfterClose++;
      const firstLine = chunk.toString('latin1', 0, Math.min(chunk.length, 200)).split(CRLF)[0];
      const [method, path] = firstLine.split(' ');
      this.record(c, 'write-after-close', {
        method,
        path,
        detail: `${chunk.length} bytes: ${JSON.stringify(firstLine)}`,
      });
      return;
    }
    clearTimeout(c.idleTimer);
    c.idleTimer = undefined;
    c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
    try {
      this.parse(c);
    } catch (err) {
      const msg = err instanceof ParseError ? err.message : String(err);
      c.socket.write(
        `HTTP/1.1 400 Bad Request${CRLF}Connection: close${CRLF}Content-Length: 0${CRLF}${CRLF}`,
      );
      this.serverClose(c, `parse error: ${msg}`);
      return;
    }
    this.pump(c);
    if (!c.busy && c.queue.length === 0) this.armIdle(c);
  }

  /** Pull as many complete requests out of c.buf as there are. */
  private parse(c: Conn): void {
    for (;;) {
      if (c.pending) {
        if (!this.readBody(c)) return;
        continue;
      }
      const end = c.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (c.buf.length > MAX_HEAD) throw new ParseError('head too large');
        return;
      }
      const lines = c.buf.toString('latin1', 0, end).split(CRLF);
      c.buf = c.buf.subarray(end + 4);
      const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0]);
      if (!m) throw new ParseError(`bad request line ${JSON.stringify(lines[0])}`);
      const rawHeaders: [string, string][] = [];
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) throw new ParseError(`bad header line ${JSON.stringify(line)}`);
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        rawHeaders.push([name, value]);
        const k = name.toLowerCase();
        headers[k] = k in headers ? `${headers[k]}, ${value}` : value;
      }
      const idHeader = (this.opts.requestIdHeader ?? 'x-request-id').toLowerCase();
      c.requests++;
      const req: FaultRequest = {
        connId: c.id,
        seq: c.requests,
        method: m[1],
        path: m[2],
        httpVersion: m[3],
        headers,
        rawHeaders,
        body: Buffer.alloc(0),
        requestId: headers[idHeader],
      };
      const chunked = /\bchunked\b/i.test(headers['transfer-encoding'] ?? '');
      const cl = headers['content-length'];
      if (cl !== undefined && !/^\d+$/.test(cl)) throw new ParseError(`bad content-length ${cl}`);
      const remaining = chunked ? 0 : Number(cl ?? 0);
      if (/100-continue/i.test(headers.expect ?? '')) c.socket.write(`HTTP/1.1 100 Continue${CRLF}${CRLF}`);
      c.pending = { req, remaining, chunked, parts: [] };
    }
  }

  /** Consume body bytes of c.pending; true when the request is complete (and queued). */
  private readBody(c: Conn): boolean {
    const p = c.pending!;
    if (!p.chunked) {
      const n = Math.min(p.remaining, c.buf.length);
      if (n > 0) p.parts.push(c.buf.subarray(0, n));
      c.buf = c.buf.subarray(n);
      p.remaining -= n;
      if (p.remaining > 0) return false;
    } else {
      for (;;) {
        const eol = c.buf.indexOf(CRLF);
        if (eol < 0) return false;
        const sizeText = c.buf.toString('latin1', 0, eol).split(';')[0].trim();
        if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new ParseError(`bad chunk size ${sizeText}`);
        const size = Number.parseInt(sizeText, 16);
        if (size === 0) {
          // Last chunk: skip trailers up to the empty line.
          const rest = c.buf.subarray(eol + 2);
          const endOfTrailers = rest.subarray(0, 2).equals(Buffer.from(CRLF)) ? 0 : rest.indexOf('\r\n\r\n');
          if (endOfTrailers < 0) return false;
          c.buf = rest.subarray(endOfTrailers === 0 ? 2 : endOfTrailers + 4);
          break;
        }
        if (c.buf.length < eol + 2 + size + 2) return false;
        p.parts.push(c.buf.subarray(eol + 2, eol + 2 + size));
        c.buf = c.buf.subarray(eol + 2 + size + 2);
      }
    }
    const req = p.req;
    req.body = Buffer.concat(p.parts);
    c.pending = undefined;
    this.onRequest(c, req);
    return true;
  }

  private onRequest(c: Conn, req: FaultRequest): void {
    const s = this.stats;
    s.requestsTotal++;
    s.requestsPerConnection.set(c.id, c.requests);
    if (req.requestId !== undefined) {
      this.requestIdCounts.set(req.requestId, (this.requestIdCounts.get(req.requestId) ?? 0) + 1);
    }
    this.requests.push(this.opts.keepBodies === false ? { ...req, body: Buffer.alloc(0) } : req);
    this.record(c, 'request', { method: req.method, path: req.path, requestId: req.requestId });
    c.queue.push(req);
  }

  /** Answer queued requests one at a time, in order. */
  private pump(c: Conn): void {
    if (c.busy || c.closing || c.queue.length === 0) return;
    const req = c.queue.shift()!;
    c.busy = true;
    void this.answer(c, req).then(
      (keep) => {
        c.busy = false;
        if (!keep || c.closing) return;
        if (c.queue.length > 0) this.pump(c);
        else if (!c.pending && c.buf.length === 0) this.armIdle(c);
      },
      (err) => {
        c.busy = false;
        this.serverClose(c, `handler threw: ${String(err)}`, true);
      },
    );
  }

  /** Run the handler's action; resolves false when the connection must not be used again. */
  private async answer(c: Conn, req: FaultRequest): Promise<boolean> {
    const handler = this.opts.handler;
    const action: FaultAction = (handler
      ? await handler(req, { connId: c.id, requestsOnConnection: c.requests, server: this })
      : undefined) ?? { type: 'respond', body: 'ok\n' };
    if (action.delayMs) await sleep(action.delayMs);
    if (c.closing || c.socket.destroyed) return false;
    const max = this.opts.maxRequestsPerConnection;
    const lastByCap = max !== undefined && c.requests >= max;
    // A client that asked to close (Connection: close, or HTTP/1.0 without keep-alive) gets a close.
    const conn = (req.headers.connection ?? '').toLowerCase();
    const clientWantsClose =
      /\bclose\b/.test(conn) || (req.httpVersion === '1.0' && !/keep-alive/.test(conn));
    const meta = { method: req.method, path: req.path, requestId: req.requestId };

    switch (action.type) {
      case 'stall':
        return false;
      case 'close':
        this.serverClose(c, 'handler: close without response');
        return false;
      case 'reset':
        this.serverClose(c, 'handler: reset without response', true);
        return false;
      case 'stall-body':
      case 'reset-mid-body': {
        const body = Buffer.from(action.body);
        const n = action.type === 'stall-body' ? action.bytesBeforeStall : action.bytesBeforeReset;
        const head = this.head(action.status ?? 200, action.headers, { 'content-length': body.length });
        c.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body.subarray(0, n ?? body.length >> 1)]));
        this.record(c, 'response', { ...meta, status: action.status ?? 200, detail: action.type });
        if (action.type === 'reset-mid-body') {
          // Let the partial body leave before the RST discards the send queue.
          await new Promise<void>((r) => c.socket.write('', () => r()));
          await sleep(10);
          this.serverClose(c, 'handler: reset mid-body', true);
        }
        return false;
      }
      case 'raw': {
        c.socket.write(action.data);
        this.record(c, 'response', { ...meta, detail: 'raw' });
        return this.after(c, action.after ?? (lastByCap || clientWantsClose ? 'close-silently' : 'keep'));
      }
      case 'respond': {
        const status = action.status ?? 200;
        let after: AfterResponse = action.after ?? 'keep';
        if (after === 'keep' && clientWantsClose) after = 'close';
        if (after === 'keep' && lastByCap) after = this.opts.announceClose ? 'close' : 'close-silently';
        const extra: HeaderMap = {};
        if (after === 'close') extra.connection = 'close';
        const noBody = req.method === 'HEAD' || status === 204 || status === 304 || status < 200;
        let payload: Buffer;
        if (action.chunked) {
          extra['transfer-encoding'] = 'chunked';
          const pieces = action.chunks ?? (action.body !== undefined ? [action.body] : []);
          const parts: Buffer[] = [];
          for (const p of pieces) {
            const b = Buffer.from(p);
            if (b.length === 0) continue;
            parts.push(Buffer.from(`${b.length.toString(16)}${CRLF}`), b, Buffer.from(CRLF));
          }
          let trailer = '';
          for (const [k, v] of Object.entries(action.trailers ?? {})) trailer += `${k}: ${v}${CRLF}`;
          parts.push(Buffer.from(`0${CRLF}${trailer}${CRLF}`, 'latin1'));
          payload = noBody ? Buffer.alloc(0) : Buffer.concat(parts);
        } else {
          const body = Buffer.from(action.body ?? '');
          if (!(status === 204 || status === 304 || status < 200)) extra['content-length'] = body.length;
          payload = noBody ? Buffer.alloc(0) : body;
        }
        const head = this.head(status, action.headers, extra, after === 'keep');
        c.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), payload]));
        this.record(c, 'response', { ...meta, status });
        return this.after(c, after);
      }
    }
  }

  private after(c: Conn, after: AfterResponse): boolean {
    if (after === 'keep') return true;
    this.serverClose(c, `after response: ${after}`, after === 'reset');
    return false;
  }

  /** Build a response head. Caller headers win over `extra` (so a test can send a wrong Content-Length). */
  private head(status: number, headers: HeaderMap = {}, extra: HeaderMap = {}, keep = false) {
    const merged: HeaderMap = { ...extra };
    const adv = this.opts.advertiseKeepAlive;
    if (keep && adv !== undefined && adv !== false) {
      const n = typeof adv === 'number' ? adv : Math.floor((this.opts.keepAliveTimeoutMs ?? 5000) / 1000);
      merged['keep-alive'] = `timeout=${n}`;
    }
    const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
    for (const k of Object.keys(merged)) if (lower.has(k)) delete merged[k];
    Object.assign(merged, headers);
    let out = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}${CRLF}`;
    for (const [k, v] of Object.entries(merged)) {
      for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}${CRLF}`;
    }
    return out + CRLF;
  }

  /** Start the idle timer: whichever of keepAliveTimeoutMs / closeIdleAfterMs is shorter. */
  private armIdle(c: Conn): void {
    clearTimeout(c.idleTimer);
    const { keepAliveTimeoutMs: ka, closeIdleAfterMs: idle } = this.opts;
    const ms = Math.min(ka ?? Number.POSITIVE_INFINITY, idle ?? Number.POSITIVE_INFINITY);
    if (!Number.isFinite(ms) || c.closing) return;
    const why = ka !== undefined && ms === ka ? 'keep-alive timeout' : 'idle close';
    c.idleTimer = setTimeout(() => this.serverClose(c, why), ms);
    c.idleTimer.unref();
  }

  /**
   * The server decides to close. From here on every incoming byte is a write-after-close.
   * FIN: end our side and keep reading for lingerMs (to catch late writes), then destroy.
   * RST: resetAndDestroy(); the kernel answers later writes with RST, so none can be seen.
   */
  private serverClose(c: Conn, why: string, reset = false): void {
    if (c.closing) return;
    c.closing = true;
    clearTimeout(c.idleTimer);
    if (reset || this.opts.resetInsteadOfFin) {
      this.record(c, 'reset', { detail: why });
      c.socket.resetAndDestroy();
      return;
    }
    this.record(c, 'close-by-server', { detail: why });
    c.socket.end();
    c.lingerTimer = setTimeout(() => c.socket.destroy(), this.opts.lingerMs ?? 1000);
    c.lingerTimer.unref();
  }
}

/** An unref'd sleep: a pending delay never keeps the process alive after close(). */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Create and start a FaultServer on 127.0.0.1. */
export function startFaultServer(opts: FaultServerOptions = {}): Promise<FaultServer> {
  return new FaultServer(opts).listen();
}
