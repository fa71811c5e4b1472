// One HTTP/2 connection of the canned bench server: it answers each request (HEADERS) at once with a
// prebuilt head and body chosen by its :path, and does only what RFC 9113 requires of a server that
// never reads request bodies: the preface and SETTINGS exchange, PING answers, HPACK decoding of every
// block (to keep the clients' dynamic tables in step), and flow control on what it sends (the body
// waits for the client's WINDOW_UPDATE, stream by stream, frame by frame).
//
// Why not node:http2: a node:http2 server costs about 70 µs of CPU per request on the bench machine,
// a third of the whole round trip at one stream at a time, the same for every client. Ratios between
// clients shrink towards 1 by that much. This server costs what the HTTP/1.1 bench server does
// (bench/server.ts): about 45 µs, most of it node's TLS and socket I/O.
//
// Everything a connection writes while handling one read goes out in one socket write.
import type { Socket } from 'node:net';
import {
  ACK,
  COMPRESSION_ERROR,
  CONTINUATION,
  DATA,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  END_HEADERS,
  END_STREAM,
  FLOW_CONTROL_ERROR,
  FRAME_HEADER,
  FRAME_SIZE_ERROR,
  GOAWAY,
  HEADERS,
  PADDED,
  PING,
  PREFACE,
  PRIORITY_FLAG,
  PROTOCOL_ERROR,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  WINDOW_UPDATE,
  frame,
  goawayFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from './frames.js';
import { HpackDecoder, HpackError } from './hpack.js';

/** A canned response: its header block (see encodeHead) and its body. */
export interface CannedResponse {
  head: Buffer;
  body: Buffer;
}

export interface CannedServerOptions {
  /** The response for a request's :path. */
  respond(path: string): CannedResponse;
  /** Called once per request (a HEADERS frame opening a stream). */
  onRequest?(): void;
  /** SETTINGS_MAX_CONCURRENT_STREAMS: 100, as node:http2 servers announce. */
  maxStreams?: number;
}

/** A response whose body is not all sent yet. */
interface OutStream {
  id: number;
  body: Buffer;
  sent: number;
  /** What the client's window for this stream allows us to send now (may go below 0, 6.9.2). */
  window: number;
  /** Reset by the client, or done. */
  closed: boolean;
  /** In `blocked`. */
  queued: boolean;
}

class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Serves HTTP/2 on `socket` (TLS with ALPN h2, or cleartext prior knowledge) until it closes. */
export function serveCannedH2(socket: Socket, options: CannedServerOptions): void {
  new CannedConnection(socket, options).start();
}

class CannedConnection {
  private pending: Buffer | null = null;
  private prefaceSeen = false;
  private readonly hpack = new HpackDecoder();
  /** The connection-level window for what we send. */
  private window = DEFAULT_WINDOW;
  /** The client's SETTINGS_INITIAL_WINDOW_SIZE and SETTINGS_MAX_FRAME_SIZE. */
  private initialWindow = DEFAULT_WINDOW;
  private maxFrame = DEFAULT_MAX_FRAME;
  /** Responses still sending, by stream id. */
  private readonly open = new Map<number, OutStream>();
  /** Streams waiting for window, in the order they blocked. */
  private blocked: OutStream[] = [];
  private lastStreamId = 0;
  /** A header block being continued (CONTINUATION frames follow). */
  private continued: { id: number; fragments: Buffer[] } | null = null;
  private out: Buffer[] = [];
  private readonly maxStreams: number;

  constructor(
    private readonly socket: Socket,
    private readonly options: CannedServerOptions,
  ) {
    this.maxStreams = options.maxStreams ?? 100;
  }

  start(): void {
    this.socket.setNoDelay(true);
    this.socket.on('error', () => {}); // a client resetting its connection is not the server's problem
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.write(settingsFrame([[SETTINGS_MAX_CONCURRENT_STREAMS, this.maxStreams]]));
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    try {
      if (!this.prefaceSeen) {
        const n = Math.min(buf.length, PREFACE.length);
        if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) {
          throw new ConnectionError(PROTOCOL_ERROR, 'bad preface');
        }
        if (n < PREFACE.length) {
          this.pending = Buffer.from(buf); // a copy, as below
          return;
        }
        this.prefaceSeen = true;
        buf = buf.subarray(PREFACE.length);
      }
      let at = 0;
      while (buf.length - at >= FRAME_HEADER) {
        const length = (buf[at]! << 16) | (buf[at + 1]! << 8) | buf[at + 2]!;
        // We never raise SETTINGS_MAX_FRAME_SIZE: 16 384 is the most a client may send.
        if (length > DEFAULT_MAX_FRAME)
          throw new ConnectionError(FRAME_SIZE_ERROR, `frame of ${length} bytes`);
        if (buf.length - at < FRAME_HEADER + length) break;
        const type = buf[at + 3]!;
        const flags = buf[at + 4]!;
        const id = buf.readUInt32BE(at + 5) & 0x7fffffff;
        this.onFrame(type, flags, id, buf.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length));
        at += FRAME_HEADER + length;
      }
      if (at < buf.length) this.pending = Buffer.from(buf.subarray(at)); // a copy: the rest may be reused
    } catch (err) {
      const code = err instanceof ConnectionError ? err.code : PROTOCOL_ERROR;
      this.out.push(goawayFrame(this.lastStreamId, code));
      this.flush();
      this.socket.end();
      return;
    }
    this.flush();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.continued !== null && type !== CONTINUATION) {
      throw new ConnectionError(PROTOCOL_ERROR, 'header block interrupted');
    }
    switch (type) {
      case HEADERS:
        this.onHeaders(flags, id, payload);
        return;
      case CONTINUATION: {
        const c = this.continued;
        if (c === null || c.id !== id) throw new ConnectionError(PROTOCOL_ERROR, 'unexpected CONTINUATION');
        c.fragments.push(Buffer.from(payload)); // a copy: the read it came in may be reused
        if (flags & END_HEADERS) {
          this.continued = null;
          this.onHeaderBlock(id, Buffer.concat(c.fragments));
        }
        return;
      }
      case DATA:
        // Request bodies are not read. Give the connection's window back so that a client sending
        // one never stalls the others (its stream's window it will exhaust, by design: GET only).
        if (payload.length > 0) this.out.push(windowUpdateFrame(0, payload.length));
        return;
      case SETTINGS:
        if (flags & ACK) return;
        this.onSettings(payload);
        return;
      case PING:
        if (!(flags & ACK)) this.out.push(frame(PING, ACK, 0, payload));
        return;
      case WINDOW_UPDATE:
        this.onWindowUpdate(id, payload.readUInt32BE(0) & 0x7fffffff);
        return;
      case RST_STREAM: {
        const s = this.open.get(id);
        if (s !== undefined) this.finish(s);
        return;
      }
      case GOAWAY:
        // The client is leaving: it closes the connection when its streams are done.
        return;
      default:
        // PRIORITY, and frame types we do not know, are ignored (5.5).
        return;
    }
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || id % 2 === 0) throw new ConnectionError(PROTOCOL_ERROR, `HEADERS on stream ${id}`);
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      end -= payload[0]!;
      start = 1;
    }
    if (flags & PRIORITY_FLAG) start += 5;
    if (start > end) throw new ConnectionError(PROTOCOL_ERROR, 'HEADERS padding');
    const fragment = payload.subarray(start, end);
    if (flags & END_HEADERS) this.onHeaderBlock(id, fragment);
    else this.continued = { id, fragments: [Buffer.from(fragment)] };
  }

  private onHeaderBlock(id: number, block: Buffer): void {
    let fields: Array<[string, string]>;
    try {
      fields = this.hpack.decode(block);
    } catch (err) {
      if (err instanceof HpackError) throw new ConnectionError(COMPRESSION_ERROR, err.message);
      throw err;
    }
    if (id <= this.lastStreamId) return; // trailers of a request we have answered: nothing to do
    this.lastStreamId = id;
    this.options.onRequest?.();
    if (this.open.size >= this.maxStreams) {
      this.out.push(rstStreamFrame(id, REFUSED_STREAM));
      return;
    }
    let path = '';
    for (const [name, value] of fields) {
      if (name === ':path') {
        path = value;
        break;
      }
    }
    const res = this.options.respond(path);
    const head = Buffer.allocUnsafe(FRAME_HEADER + res.head.length);
    writeFrameHeader(
      head,
      0,
      res.head.length,
      HEADERS,
      END_HEADERS | (res.body.length === 0 ? END_STREAM : 0),
      id,
    );
    res.head.copy(head, FRAME_HEADER);
    this.out.push(head);
    if (res.body.length === 0) return;
    const s: OutStream = {
      id,
      body: res.body,
      sent: 0,
      window: this.initialWindow,
      closed: false,
      queued: false,
    };
    this.open.set(id, s);
    this.send(s);
  }

  /** Sends as much of the body as the windows allow; queues the stream for the rest. */
  private send(s: OutStream): void {
    const body = s.body;
    while (s.sent < body.length) {
      const n = Math.min(body.length - s.sent, this.maxFrame, s.window, this.window);
      if (n <= 0) {
        if (!s.queued) {
          s.queued = true;
          this.blocked.push(s);
        }
        return;
      }
      const last = s.sent + n === body.length;
      const header = Buffer.allocUnsafe(FRAME_HEADER);
      writeFrameHeader(header, 0, n, DATA, last ? END_STREAM : 0, s.id);
      this.out.push(header, body.subarray(s.sent, s.sent + n));
      s.sent += n;
      s.window -= n;
      this.window -= n;
    }
    this.finish(s);
  }

  private finish(s: OutStream): void {
    s.closed = true;
    this.open.delete(s.id);
  }

  private onSettings(payload: Buffer): void {
    if (payload.length % 6 !== 0) throw new ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS length');
    for (let i = 0; i < payload.length; i += 6) {
      const param = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (param === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > 0x7fffffff) throw new ConnectionError(FLOW_CONTROL_ERROR, 'initial window too large');
        // The change applies to every open stream's window (6.9.2).
        const delta = value - this.initialWindow;
        this.initialWindow = value;
        for (const s of this.open.values()) s.window += delta;
      } else if (param === SETTINGS_MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME || value > 0xffffff)
          throw new ConnectionError(PROTOCOL_ERROR, 'max frame size');
        this.maxFrame = value;
      }
      // The others (table size, push, concurrency of server pushes) do not concern a server that
      // indexes nothing in its responses and pushes nothing.
    }
    // The ACK goes before any DATA the new window lets out: the client counts its window by the new
    // value only from the ACK on (6.5.3), and would take that DATA for a flow-control violation.
    this.out.push(frame(SETTINGS, ACK, 0));
    this.resumeBlocked();
  }

  private onWindowUpdate(id: number, increment: number): void {
    if (increment === 0) throw new ConnectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    if (id === 0) this.window += increment;
    else {
      const s = this.open.get(id);
      if (s === undefined) return; // a stream we have finished sending
      s.window += increment;
    }
    this.resumeBlocked();
  }

  private resumeBlocked(): void {
    if (this.blocked.length === 0 || this.window <= 0) return;
    const blocked = this.blocked;
    this.blocked = [];
    for (const s of blocked) {
      s.queued = false;
      if (!s.closed) this.send(s);
    }
  }

  private flush(): void {
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }
}
