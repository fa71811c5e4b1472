/**
 * The life of requests and connections on node:diagnostics_channel, under `warmpool:`. Every publish
 * site checks its channel's `hasSubscribers` first: with nobody listening, a request pays one property
 * read per step and builds nothing. The messages are built here, not at the publish sites, so the hot
 * modules carry one guarded call each.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { CloseReason, PoolConnection } from '../exchange/connection.js';
import type { Exchange } from '../exchange/exchange.js';
import { type IncomingHeaders, type OutgoingHeaders, outgoingEntries } from '../headers.js';
import type { Response } from '../response/response.js';

/** The request every `warmpool:request:*` message is about: the same object from create to end. */
export interface DiagnosticsRequest {
  readonly method: string;
  /** The full URL requested. */
  readonly url: string;
  /** scheme://host:port */
  readonly origin: string;
  /** Path and query, as sent. */
  readonly path: string;
}

/** `warmpool:request:create`: a request was made; its head is not encoded yet. */
export interface RequestCreateMessage {
  readonly request: DiagnosticsRequest;
  /** The caller's headers (with the Client's defaults), as given. */
  readonly headers: OutgoingHeaders | undefined;
  /**
   * Adds a request header (say, `traceparent`) before the head is encoded. Validated like the
   * caller's own: a name or value with CR/LF fails the request with an InvalidArgumentError.
   */
  addHeader(name: string, value: string): void;
}

/**
 * A connection, in `warmpool:connection:*` and `request:headers-sent` messages: the same object from
 * opened to closed. `id` is unique within its Agent.
 */
export interface DiagnosticsConnection {
  readonly id: number;
  readonly origin: string;
  readonly protocol: 'http/1.1' | 'h2';
}

/** `warmpool:request:headers-sent`: the head was handed to a connection (one per attempt). */
export interface RequestHeadersSentMessage {
  readonly request: DiagnosticsRequest;
  readonly connection: DiagnosticsConnection;
  /** The connection had served an earlier request. */
  readonly reused: boolean;
  /** The connection was idle this long before this request, ms (0 for a new one). */
  readonly idleMs: number;
  /** Requests on the connection, this one included. */
  readonly requestCount: number;
  /** 1 for the first attempt; a retry on another connection is 2. */
  readonly attempt: number;
  /** Waited for a connection, ms. */
  readonly queuedMs: number;
}

/** `warmpool:request:response`: the final response head arrived (the caller's promise resolves with it). */
export interface RequestResponseMessage {
  readonly request: DiagnosticsRequest;
  /** status, headers, httpVersion, connection, timings, retried; do not read its body here. */
  readonly response: Response;
}

/** `warmpool:request:end`: the response body was received whole. */
export interface RequestEndMessage {
  readonly request: DiagnosticsRequest;
  readonly trailers: IncomingHeaders | undefined;
}

/** `warmpool:request:error`: the request failed, before its head or while its body was received. */
export interface RequestErrorMessage {
  readonly request: DiagnosticsRequest;
  readonly error: Error;
  /** The response head had arrived (the body failed). */
  readonly afterResponse: boolean;
}

/** Why a request went out again. */
export type RetryReason =
  | 'stale-connection' // a reused connection died before any response byte (idempotent requests only)
  | 'refused-stream'; // HTTP/2: the server did not process it (REFUSED_STREAM, above GOAWAY's last id)

/** `warmpool:request:retry`: the request will be sent again, on another connection. */
export interface RequestRetryMessage {
  readonly request: DiagnosticsRequest;
  readonly reason: RetryReason;
  /** The attempt about to be made: 2 for the first retry. */
  readonly attempt: number;
  /** What ended the previous attempt. */
  readonly error: Error;
}

/** `warmpool:request:queued`: no connection was free; the request waits in the origin's queue. */
export interface RequestQueuedMessage {
  readonly request: DiagnosticsRequest;
  /** Requests waiting for this origin, this one included. */
  readonly waiting: number;
}

/** `warmpool:connection:opened`: a connection is ready (over HTTP/2: the server's SETTINGS arrived). */
export interface ConnectionOpenedMessage {
  readonly connection: DiagnosticsConnection;
  /** Dial steps, ms; absent when skipped (no DNS for an IP, no TLS in cleartext). */
  readonly timings: { readonly dnsMs?: number; readonly connectMs?: number; readonly tlsMs?: number };
  /** Over TLS: whether the session was resumed. */
  readonly tls: { readonly resumed: boolean } | undefined;
}

/** `warmpool:connection:closed`: a connection is gone from its pool. */
export interface ConnectionClosedMessage {
  readonly connection: DiagnosticsConnection;
  readonly reason: CloseReason;
  /** Requests it carried. */
  readonly requestCount: number;
  /** Open for, ms (monotonic). */
  readonly ageMs: number;
}

/** The channel names, for `diagnostics_channel.subscribe(name, fn)`. */
export const channelNames = {
  requestCreate: 'warmpool:request:create',
  requestQueued: 'warmpool:request:queued',
  requestHeadersSent: 'warmpool:request:headers-sent',
  requestResponse: 'warmpool:request:response',
  requestEnd: 'warmpool:request:end',
  requestError: 'warmpool:request:error',
  requestRetry: 'warmpool:request:retry',
  connectionOpened: 'warmpool:connection:opened',
  connectionClosed: 'warmpool:connection:closed',
} as const;

export const requestCreate = diagnosticsChannel.channel(channelNames.requestCreate);
export const requestQueued = diagnosticsChannel.channel(channelNames.requestQueued);
export const requestHeadersSent = diagnosticsChannel.channel(channelNames.requestHeadersSent);
export const requestResponse = diagnosticsChannel.channel(channelNames.requestResponse);
export const requestEnd = diagnosticsChannel.channel(channelNames.requestEnd);
export const requestError = diagnosticsChannel.channel(channelNames.requestError);
export const requestRetry = diagnosticsChannel.channel(channelNames.requestRetry);
export const connectionOpened = diagnosticsChannel.channel(channelNames.connectionOpened);
export const connectionClosed = diagnosticsChannel.channel(channelNames.connectionClosed);

// ---- the request object ---------------------------------------------------------------------------

class RequestRecord implements DiagnosticsRequest {
  /** Retries announced so far: the attempt under way is retries + 1. */
  retries = 0;
  constructor(
    readonly method: string,
    readonly url: string,
    readonly origin: string,
    readonly path: string,
  ) {}
}

/**
 * An exchange's request object, made on its first message. Kept beside the exchange, not in it: a
 * request nobody listens to never has one.
 */
const records = new WeakMap<Exchange, RequestRecord>();

function recordOf(ex: Exchange): RequestRecord {
  let r = records.get(ex);
  if (r === undefined) {
    r = new RequestRecord(ex.method, ex.url, ex.origin, ex.path);
    records.set(ex, r);
  }
  return r;
}

const connections = new WeakMap<PoolConnection, DiagnosticsConnection>();

function connectionOf(conn: PoolConnection, origin: string): DiagnosticsConnection {
  let c = connections.get(conn);
  if (c === undefined) {
    c = Object.freeze({ id: conn.id, origin, protocol: conn.protocol });
    connections.set(conn, c);
  }
  return c;
}

/**
 * What Client.request() gets back from publishing `request:create`: the headers to encode (the
 * caller's, plus any a subscriber added) and the request object to bind to the exchange once made.
 */
export interface CreatedRequest {
  headers: OutgoingHeaders | undefined;
  record: RequestRecord;
}

/** Publishes `request:create` (the caller checked hasSubscribers). */
export function publishRequestCreate(
  method: string,
  url: string,
  origin: string,
  path: string,
  headers: OutgoingHeaders | undefined,
): CreatedRequest {
  const record = new RequestRecord(method, url, origin, path);
  let added: Array<[string, string]> | undefined;
  const message: RequestCreateMessage = {
    request: record,
    headers,
    addHeader(name: string, value: string): void {
      // Checked when the head is encoded (CR/LF, token characters); here only that they are strings.
      if (added === undefined) added = [];
      added.push([String(name), String(value)]);
    },
  };
  requestCreate.publish(message);
  if (added === undefined) return { headers, record };
  const all: Array<[string, string]> = [];
  if (headers !== undefined) for (const entry of outgoingEntries(headers)) all.push(entry);
  for (const entry of added) all.push(entry);
  return { headers: all, record };
}

/** Ties the request object `request:create` made to its exchange, for the messages that follow. */
export function bindRequest(ex: Exchange, created: CreatedRequest): void {
  records.set(ex, created.record);
}

// ---- publishers (each called only when its channel has subscribers) ---------------------------------

export function publishRequestQueued(ex: Exchange, waiting: number): void {
  const message: RequestQueuedMessage = { request: recordOf(ex), waiting };
  requestQueued.publish(message);
}

export function publishHeadersSent(ex: Exchange, conn: PoolConnection, origin: string): void {
  const request = recordOf(ex);
  const message: RequestHeadersSentMessage = {
    request,
    connection: connectionOf(conn, origin),
    reused: ex.connReused,
    idleMs: ex.connIdleMs,
    requestCount: ex.connRequestCount,
    attempt: request.retries + 1,
    queuedMs: ex.dispatchedAt - ex.queuedAt,
  };
  requestHeadersSent.publish(message);
}

export function publishResponse(ex: Exchange, response: Response): void {
  const message: RequestResponseMessage = { request: recordOf(ex), response };
  requestResponse.publish(message);
}

export function publishRequestEnd(ex: Exchange, trailers: IncomingHeaders | undefined): void {
  const message: RequestEndMessage = { request: recordOf(ex), trailers };
  requestEnd.publish(message);
}

export function publishRequestError(ex: Exchange, error: Error, afterResponse: boolean): void {
  const message: RequestErrorMessage = { request: recordOf(ex), error, afterResponse };
  requestError.publish(message);
}

/** A request that `request:create` announced failed before it became an exchange (invalid headers, aborted). */
export function publishCreatedFailed(created: CreatedRequest, error: Error): void {
  if (!requestError.hasSubscribers) return;
  const message: RequestErrorMessage = { request: created.record, error, afterResponse: false };
  requestError.publish(message);
}

export function publishRetry(ex: Exchange, reason: RetryReason, error: Error): void {
  const request = recordOf(ex);
  const message: RequestRetryMessage = { request, reason, attempt: ++request.retries + 1, error };
  requestRetry.publish(message);
}

export interface DialFacts {
  dnsMs: number | undefined;
  connectMs: number | undefined;
  tlsMs: number | undefined;
  tlsResumed?: boolean;
}

export function publishConnectionOpened(conn: PoolConnection, origin: string, dial: DialFacts): void {
  const timings: { dnsMs?: number; connectMs?: number; tlsMs?: number } = {};
  if (dial.dnsMs !== undefined) timings.dnsMs = dial.dnsMs;
  if (dial.connectMs !== undefined) timings.connectMs = dial.connectMs;
  if (dial.tlsMs !== undefined) timings.tlsMs = dial.tlsMs;
  const message: ConnectionOpenedMessage = {
    connection: connectionOf(conn, origin),
    timings,
    tls: dial.tlsMs !== undefined ? { resumed: dial.tlsResumed === true } : undefined,
  };
  connectionOpened.publish(message);
}

export function publishConnectionClosed(
  conn: PoolConnection,
  origin: string,
  reason: CloseReason,
  nowMono: number,
): void {
  const message: ConnectionClosedMessage = {
    connection: connectionOf(conn, origin),
    reason,
    requestCount: conn.requestCount,
    ageMs: nowMono - conn.createdMono,
  };
  connectionClosed.publish(message);
}
