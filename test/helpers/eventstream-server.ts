/**
 * An HTTP/2 TLS server that speaks the AWS event-stream protocol as a bidirectional operation does
 * (Bedrock Runtime's InvokeModelWithBidirectionalStream): it answers each stream's head at once with
 * `application/vnd.amazon.eventstream`, then reads the client's signed frames (an outer message whose
 * body is the event) and echoes each event back as a `chunk` event, while the request is still being
 * sent; the client's end (an empty signed frame, then END_STREAM) ends the response. Counts sessions.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { TEST_CERT, TEST_KEY } from './h2-server.js';

const codec = new EventStreamCodec(
  (bytes) => Buffer.from(bytes).toString('utf8'),
  (text) => new Uint8Array(Buffer.from(text, 'utf8')),
);

export interface EventStreamServer {
  port: number;
  /** HTTP/2 sessions (connections) opened so far. */
  readonly sessions: number;
  /** Streams (operations) served so far. */
  readonly streams: number;
  resetCounts(): void;
  close(): Promise<void>;
}

export async function startEventStreamServer(maxConcurrentStreams = 100): Promise<EventStreamServer> {
  let sessions = 0;
  let streams = 0;
  const open = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({
    cert: TEST_CERT,
    key: TEST_KEY,
    settings: { maxConcurrentStreams },
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions++;
    open.add(session);
    session.on('error', () => {});
    session.once('close', () => open.delete(session));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    streams++;
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/vnd.amazon.eventstream' });
    let buffered: Buffer = Buffer.alloc(0);
    stream.on('data', (data: Buffer) => {
      buffered = buffered.length === 0 ? data : Buffer.concat([buffered, data]);
      while (buffered.length >= 4) {
        const length = buffered.readUInt32BE(0);
        if (buffered.length < length) break;
        const outer = codec.decode(buffered.subarray(0, length));
        buffered = buffered.subarray(length);
        if (outer.body.length === 0) continue; // the client's closing frame
        const event = codec.decode(outer.body);
        stream.write(
          codec.encode({
            headers: {
              ':message-type': { type: 'string', value: 'event' },
              ':event-type': { type: 'string', value: 'chunk' },
              ':content-type': { type: 'string', value: 'application/json' },
            },
            body: event.body,
          }),
        );
      }
    });
    stream.on('end', () => stream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get sessions() {
      return sessions;
    },
    get streams() {
      return streams;
    },
    resetCounts: () => {
      sessions = 0;
      streams = 0;
    },
    close: () => {
      for (const s of open) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
