/**
 * Writing an HTTP/1.1 request: the head and its body, in as few writes as the body allows.
 */
import type { Socket } from 'node:net';
import { RequestBodyError } from '../errors.js';
import type { Exchange } from '../exchange/exchange.js';
import { BODY_KIND_BYTES, BODY_KIND_STREAM } from '../request/body.js';
import { encodeRequestHead } from './request-head.js';
import { writeInTurn } from './write-turn.js';

/** Bodies up to this size are copied into the head's buffer and sent in one write. */
const COALESCE_LIMIT = 64 * 1024;
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

/**
 * Writes the head and a body of bytes. A small body goes in the head's buffer, one write: head and
 * body leave in the same segment (no Nagle/delayed-ACK stall on the server). A request written whole
 * leaves with the others of its loop turn (write-turn.ts). Returns true when the body is a stream,
 * which writeStreamBody() sends next.
 */
export function writeRequest(socket: Socket, ex: Exchange): boolean {
  const body = ex.body;
  // Validated but not serialized when the request was made for an HTTP/2 pool (Client.request);
  // the origin has since answered with HTTP/1.1. Encoding with the final framing gives the same head.
  if (ex.head === '') {
    ex.head = encodeRequestHead(ex.method, ex.path, ex.authority, ex.headers, ex.bodyFraming).head;
  }
  const head = ex.head;
  if (body.kind === BODY_KIND_BYTES && body.length <= COALESCE_LIMIT) {
    const bytes = body.bytes!;
    const headLength = head.length;
    const buf = Buffer.allocUnsafe(headLength + body.length);
    buf.write(head, 0, 'latin1');
    if (typeof bytes === 'string') buf.write(bytes, headLength, 'utf8');
    else buf.set(bytes, headLength);
    writeInTurn(socket, buf);
    return false;
  }
  if (body.kind === BODY_KIND_BYTES) {
    socket.cork();
    socket.write(head, 'latin1');
    socket.write(body.bytes!);
    socket.uncork();
    return false;
  }
  if (body.kind === BODY_KIND_STREAM) {
    socket.write(head, 'latin1'); // the body's chunks follow on this socket: the head cannot wait
    return true;
  }
  writeInTurn(socket, head);
  return false;
}

/**
 * `Expect: 100-continue`: writes the head alone; the body follows with writeWithheldBody() once the
 * server says 100 Continue or the wait runs out, or never, when a final response comes first.
 */
export function writeHeadOnly(socket: Socket, ex: Exchange): void {
  if (ex.head === '') {
    ex.head = encodeRequestHead(ex.method, ex.path, ex.authority, ex.headers, ex.bodyFraming).head;
  }
  socket.write(ex.head, 'latin1');
}

/** The body writeHeadOnly() held back. Returns true when it is a stream, which writeStreamBody() sends. */
export function writeWithheldBody(socket: Socket, ex: Exchange): boolean {
  const body = ex.body;
  if (body.kind === BODY_KIND_BYTES) {
    socket.write(body.bytes!);
    return false;
  }
  return body.kind === BODY_KIND_STREAM;
}

/** What a streamed request body needs of its connection. */
export interface StreamBodyHost {
  readonly socket: Socket;
  /** A streamed body is being written (the connection cannot be reused if the response comes first). */
  sendingBody: boolean;
  /** Is `ex` still the connection's exchange, and the connection open? */
  carries(ex: Exchange): boolean;
  /** Resolves when the socket has drained. */
  waitDrain(): Promise<void>;
  /** The body failed: the exchange ends with `err`. */
  bodyFailed(err: Error): void;
}

/**
 * Streams a request body (chunked, or raw when the caller set Content-Length) with backpressure,
 * until it ends or the exchange is no longer the connection's.
 */
export async function writeStreamBody(host: StreamBodyHost, ex: Exchange): Promise<void> {
  const chunked = ex.bodyFraming === -2;
  // With a caller-given Content-Length the stream must yield exactly that many bytes: one byte more
  // would be read by the server as the start of the next request, one fewer leaves it waiting.
  const declared = chunked ? -1 : ex.bodyFraming;
  let sent = 0;
  host.sendingBody = true;
  try {
    for await (const chunk of ex.body.openStream()) {
      if (!host.carries(ex)) return;
      if (chunk.length === 0) continue;
      sent += chunk.length;
      if (declared >= 0 && sent > declared) {
        throw new Error(
          `the stream yielded more than the ${declared} bytes its content-length header declared`,
        );
      }
      const socket = host.socket;
      let flushed: boolean;
      if (chunked) {
        socket.cork();
        socket.write(chunk.length.toString(16) + CRLF, 'latin1');
        socket.write(chunk);
        flushed = socket.write(CRLF, 'latin1');
        socket.uncork();
      } else {
        flushed = socket.write(chunk);
      }
      if (!flushed) await host.waitDrain();
    }
    if (!host.carries(ex)) return;
    if (declared >= 0 && sent !== declared) {
      throw new Error(
        `the stream ended after ${sent} of the ${declared} bytes its content-length header declared`,
      );
    }
    if (chunked) host.socket.write(LAST_CHUNK, 'latin1');
  } catch (err) {
    if (host.carries(ex)) {
      host.bodyFailed(
        new RequestBodyError(`request body stream failed: ${(err as Error).message}`, {
          origin: ex.origin,
          cause: err,
        }),
      );
    }
  } finally {
    host.sendingBody = false;
  }
}
