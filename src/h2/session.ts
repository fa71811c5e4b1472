/**
 * An HTTP/2 session's setup and what its SETTINGS and GOAWAY frames say: opening the node:http2
 * session over a dialed socket (our SETTINGS: windows, header limits), when it is ready for
 * streams, how many streams it may carry, and which streams a GOAWAY left unprocessed.
 */
import http2, { type ClientHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { type H2HeaderLimits, nodeHeaderLimits } from './header-limits.js';

const { NGHTTP2_NO_ERROR } = http2.constants;

/** A server that sets no stream limit gets this many streams per session (as Go's transport does). */
const UNLIMITED_STREAMS = 1000;
/**
 * Flow-control windows we grant. HTTP/2's default, 65 535 bytes per stream and per session, makes a
 * server stop one byte short of a 64 KiB body and wait a round trip for our WINDOW_UPDATE, and lets
 * a session carry 64 KiB in flight across all its streams. A stream's window is also the most a
 * paused body (its reader not reading) can have buffered beyond its highWaterMark.
 */
const STREAM_WINDOW = 256 * 1024;
const SESSION_WINDOW = 8 * 1024 * 1024;

/** Opens a client session over `socket` with our SETTINGS. */
export function openSession(origin: string, socket: Socket, limits: H2HeaderLimits): ClientHttp2Session {
  // The Agent's limits, for node:http2 to enforce as the header block arrives (it resets the
  // stream with ENHANCE_YOUR_CALM: see closedReason in outcome.ts). The list size is also announced
  // to the server (SETTINGS_MAX_HEADER_LIST_SIZE); node:http2 applies it only to streams opened after
  // the server acknowledged it, so H2Stream checks it too.
  const { maxHeaderListPairs, maxHeaderListSize } = nodeHeaderLimits(limits);
  const session = http2.connect(origin, {
    createConnection: () => socket,
    maxHeaderListPairs,
    settings: { enablePush: false, initialWindowSize: STREAM_WINDOW, maxHeaderListSize },
  });
  session.once('connect', onSessionConnect);
  return session;
}

/** The session window is set once the session is up (node:http2 refuses it before). */
function onSessionConnect(this: ClientHttp2Session): void {
  try {
    this.setLocalWindowSize(SESSION_WINDOW);
  } catch {
    // the session is already closing: nothing to widen
  }
}

/** What the server's SETTINGS and GOAWAY frames have said so far. No sockets: state only. */
export class SessionSettings {
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS (capped at UNLIMITED_STREAMS). */
  streamLimit = 100;
  /** After a lone REFUSED_STREAM: at most this many streams until the server's next SETTINGS. */
  refusedCeiling = Number.POSITIVE_INFINITY;
  /** Ready for streams: the server's SETTINGS arrived and it acknowledged ours (see `ready`). */
  ready = false;
  private remoteSeen = false;
  private localAcked = false;
  /** The last GOAWAY's last-stream-id; -1 before any. */
  goawayLastStreamId = -1;
  goawayCode: number = NGHTTP2_NO_ERROR;

  /** The most streams the server allows now. */
  get limit(): number {
    return this.streamLimit < this.refusedCeiling ? this.streamLimit : this.refusedCeiling;
  }

  /**
   * The server's SETTINGS: its stream limit (a new one lifts a REFUSED_STREAM's ceiling). Returns
   * whether the limit was 0 before (the server allowed no streams).
   */
  onRemote(maxConcurrentStreams: number | undefined): boolean {
    const wasWithheld = this.streamLimit === 0;
    const max = maxConcurrentStreams;
    this.streamLimit = max === undefined || max > UNLIMITED_STREAMS ? UNLIMITED_STREAMS : max;
    this.refusedCeiling = Number.POSITIVE_INFINITY;
    this.remoteSeen = true;
    return wasWithheld;
  }

  /** The server acknowledged our SETTINGS: node:http2 now applies our header list size to new streams. */
  onLocalAcked(): void {
    this.localAcked = true;
  }

  /**
   * Becomes ready once the server's SETTINGS are known (its stream limit) and it has acknowledged
   * ours: node:http2 gives a stream the header list size in force when the stream opens, so one
   * opened before the ACK would take a header block of any size (a server that sends 1 MiB of fields
   * gets the whole session failed by nghttp2's CONTINUATION limit, rather than the one stream
   * reset). Servers send both in their first flight. True the one time it becomes ready.
   */
  becomeReady(): boolean {
    if (this.ready || !this.remoteSeen || !this.localAcked) return false;
    this.ready = true;
    return true;
  }

  /** The server refused a stream while `othersOpen` of ours were open: it is over its limit. */
  onRefused(othersOpen: number): void {
    this.refusedCeiling = othersOpen > 1 ? othersOpen : 1;
  }

  onGoaway(code: number, lastStreamId: number): void {
    this.goawayLastStreamId = lastStreamId;
    this.goawayCode = code;
  }

  get goaway(): boolean {
    return this.goawayLastStreamId >= 0;
  }

  /** The server never processed stream `id`: it is above the GOAWAY's last-stream-id. */
  aboveGoaway(id: number | undefined): boolean {
    return this.goawayLastStreamId >= 0 && id !== undefined && id > this.goawayLastStreamId;
  }
}
