/**
 * Every error warmpool raises is a WarmpoolError with a stable `code`. Callers branch on `code`
 * (or `instanceof` the subclass), never on message text. `origin` names the origin involved, when
 * there is one; `cause` carries the lower-level error (a socket error, a TLS error) where one exists.
 */
export interface WarmpoolErrorOptions {
  origin?: string | undefined;
  cause?: unknown;
}

export class WarmpoolError extends Error {
  readonly code: string;
  readonly origin: string | undefined;

  constructor(code: string, message: string, options: WarmpoolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.origin = options.origin;
  }
}

/** TCP/TLS connect did not finish within `connectTimeout`. */
export class ConnectTimeoutError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_CONNECT_TIMEOUT', message, options);
  }
}

/** Connecting failed (DNS, refused, TLS handshake); the socket error is the `cause`. */
export class ConnectError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_CONNECT_ERROR', message, options);
  }
}

/** The response head did not arrive within `headersTimeout` after the request was sent. */
export class HeadersTimeoutError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_HEADERS_TIMEOUT', message, options);
  }
}

/** The response body went silent for longer than `bodyTimeout`. */
export class BodyTimeoutError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_BODY_TIMEOUT', message, options);
  }
}

/** The request waited in the origin's queue for longer than `queueTimeout`. */
export class QueueTimeoutError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_QUEUE_TIMEOUT', message, options);
  }
}

/** The origin's wait queue already holds `maxQueued` requests. */
export class QueueFullError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_QUEUE_FULL', message, options);
  }
}

/** The peer sent bytes that are not valid HTTP. The connection was destroyed. */
export class ParseError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions, code = 'WARMPOOL_PARSE_ERROR') {
    super(code, message, options);
  }
}

/** The response head exceeded `maxHeaderSize` or `maxHeaderCount`. A ParseError with its own code. */
export class HeadersOverflowError extends ParseError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super(message, options, 'WARMPOOL_HEADERS_OVERFLOW');
  }
}

/** The connection closed (or reset) before the response, or its body, was complete. */
export class SocketClosedError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_SOCKET_CLOSED', message, options);
  }
}

/** The caller's AbortSignal fired. `cause` is the signal's reason. */
export class AbortedError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_ABORTED', message, options);
  }
}

/** A caller-supplied argument (URL, method, header, option) is invalid. Nothing was sent. */
export class InvalidArgumentError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_INVALID_ARGUMENT', message, options);
  }
}

/** The Agent was closed or destroyed; it accepts no new requests. */
export class AgentClosedError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_AGENT_CLOSED', message, options);
  }
}

/** The server asked for something warmpool does not do (101 Switching Protocols, for one). */
export class UnsupportedError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_UNSUPPORTED', message, options);
  }
}

/** An HTTP/2 stream or session failed; `cause` holds node:http2's error. */
export class Http2Error extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_HTTP2_ERROR', message, options);
  }
}

/** A request body stream failed (threw, or yielded more or fewer bytes than its content-length); the stream's error is the `cause`. */
export class RequestBodyError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_REQUEST_BODY_ERROR', message, options);
  }
}

/** A response body's content coding (gzip, deflate, br, zstd) could not be undone; `cause` is zlib's error. */
export class DecodeError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_DECODE_ERROR', message, options);
  }
}

/**
 * A redirect that was to be followed could not be: too many of them, a Location that is not an
 * http(s) URL, a body that cannot be sent again, or `redirect: 'error'`. `statusCode` is the redirect's.
 */
export class RedirectError extends WarmpoolError {
  readonly statusCode: number;
  constructor(message: string, statusCode: number, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_REDIRECT_ERROR', message, options);
    this.statusCode = statusCode;
  }
}

/** MockAgent (warmpool/testing): no interceptor matches the request, and network access is not enabled for its origin. */
export class MockNotMatchedError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_MOCK_NOT_MATCHED', message, options);
  }
}

/** MockAgent.assertNoPendingInterceptors(): some interceptors were never used up. */
export class MockPendingInterceptorsError extends WarmpoolError {
  constructor(message: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_MOCK_PENDING_INTERCEPTORS', message, options);
  }
}

/**
 * The proxy refused: it answered CONNECT with a status other than 2xx (`statusCode`: 407 for missing
 * or wrong credentials, 403 for a destination it does not allow, 502 when it could not reach the
 * origin), or with something that is not HTTP.
 */
export class ProxyError extends WarmpoolError {
  readonly statusCode: number;
  /** The proxy, as scheme://host:port (no credentials). */
  readonly proxy: string;
  constructor(message: string, statusCode: number, proxy: string, options?: WarmpoolErrorOptions) {
    super('WARMPOOL_PROXY_ERROR', message, options);
    this.statusCode = statusCode;
    this.proxy = proxy;
  }
}
