import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { RequestBody } from '../request/body.js';

/**
 * fetch()'s body, "extracted" as the fetch standard says (§5 Body mixin, extract a body): what to
 * send, the Content-Type it implies, and its length when known. Only the shapes differ from
 * request()'s bodies: the result is a RequestBody, so the writers and the retry rules are the same.
 */
export interface ExtractedBody {
  body: RequestBody;
  /** The Content-Type the body implies, sent unless the caller set one. */
  contentType: string | null;
  /** Byte length for a stream with a known size (Blob, FormData), sent as content-length; else -1. */
  length: number;
  /** The body is a one-shot stream (a ReadableStream, a Readable, an async iterable). */
  streamed: boolean;
}

/** Thrown as fetch's own TypeErrors are: the caller passed something fetch cannot send. */
export class FetchInputError extends TypeError {}

const NONE: ExtractedBody = { body: undefined, contentType: null, length: -1, streamed: false };

export function extractBody(init: unknown, duplex: unknown): ExtractedBody {
  if (init === undefined || init === null) return NONE;
  if (typeof init === 'string') {
    return { body: init, contentType: 'text/plain;charset=UTF-8', length: -1, streamed: false };
  }
  if (init instanceof URLSearchParams) {
    return {
      body: init.toString(),
      contentType: 'application/x-www-form-urlencoded;charset=UTF-8',
      length: -1,
      streamed: false,
    };
  }
  // The standard sends a copy of the bytes as they were at the call: a caller that reuses its buffer
  // while the request is queued or retried must not change what is sent.
  if (init instanceof ArrayBuffer) return bytes(Buffer.from(init.slice(0)));
  if (ArrayBuffer.isView(init)) {
    return bytes(Buffer.from(init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength)));
  }
  if (init instanceof Blob) {
    // Read when sent, and again on a retry or a 307/308: a Blob can be read any number of times.
    return {
      body: () => blobChunks(init),
      contentType: init.type === '' ? null : init.type,
      length: init.size,
      streamed: false,
    };
  }
  if (init instanceof FormData) return multipart(init);
  if (init instanceof ReadableStream) {
    // The standard's rule: a streamed request body must say it is half duplex (the response may
    // start before the body ends, and nothing else is offered).
    if (duplex !== 'half') {
      throw new FetchInputError(
        "RequestInit: duplex option is required when sending a body (set duplex: 'half')",
      );
    }
    if (init.locked) throw new FetchInputError('the body ReadableStream is locked or has been read');
    return {
      body: init as unknown as AsyncIterable<Uint8Array>,
      contentType: null,
      length: -1,
      streamed: true,
    };
  }
  // Beyond the standard, as Node users expect: a Node Readable or any async iterable of bytes.
  if (
    init instanceof Readable ||
    typeof (init as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  ) {
    return { body: init as AsyncIterable<Uint8Array>, contentType: null, length: -1, streamed: true };
  }
  // Anything else is converted to a string, as the standard's USVString conversion does.
  return { body: String(init), contentType: 'text/plain;charset=UTF-8', length: -1, streamed: false };
}

function bytes(buf: Buffer): ExtractedBody {
  return { body: buf, contentType: null, length: -1, streamed: false };
}

async function* blobChunks(blob: Blob): AsyncIterable<Uint8Array> {
  yield* blob.stream() as unknown as AsyncIterable<Uint8Array>;
}

/**
 * multipart/form-data (RFC 7578) as the HTML standard encodes a FormData: each entry a part with a
 * Content-Disposition naming it; a file's part also names the file and its type. The length is known
 * in advance (the strings' bytes plus the files' sizes), so it is sent with content-length.
 */
function multipart(form: FormData): ExtractedBody {
  const boundary = `----warmpool-formdata-${randomBytes(12).toString('hex')}`;
  const parts: Array<Buffer | Blob> = [];
  let length = 0;
  for (const [name, value] of form) {
    const disposition = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeQuoted(normalizeNewlines(name))}"`;
    if (typeof value === 'string') {
      const part = Buffer.from(`${disposition}\r\n\r\n${normalizeNewlines(value)}\r\n`);
      parts.push(part);
      length += part.length;
    } else {
      const file = value as Blob & { name?: string };
      const head = Buffer.from(
        `${disposition}; filename="${escapeQuoted(file.name ?? 'blob')}"\r\n` +
          `Content-Type: ${file.type === '' ? 'application/octet-stream' : file.type}\r\n\r\n`,
      );
      parts.push(head, file, CRLF);
      length += head.length + file.size + 2;
    }
  }
  const tail = Buffer.from(`--${boundary}--\r\n`);
  parts.push(tail);
  length += tail.length;
  return {
    body: () => multipartChunks(parts),
    contentType: `multipart/form-data; boundary=${boundary}`,
    length,
    streamed: false,
  };
}

const CRLF = Buffer.from('\r\n');

async function* multipartChunks(parts: ReadonlyArray<Buffer | Blob>): AsyncIterable<Uint8Array> {
  for (const part of parts) {
    if (part instanceof Uint8Array) yield part;
    else yield* blobChunks(part);
  }
}

/** Line breaks in names and string values are sent as CRLF, whatever the caller used. */
function normalizeNewlines(s: string): string {
  return s.replace(/\r\n|\r|\n/g, '\r\n');
}

/** A quoted name or filename cannot end its quotes or its line: '"', CR and LF are percent-encoded. */
function escapeQuoted(s: string): string {
  return s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
}
