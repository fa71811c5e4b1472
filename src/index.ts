/**
 * warmpool: an HTTP/1.1 + HTTP/2 client for Node.js whose pool never hands out a stale connection.
 * See docs/architecture.md for the layers; every name exported here is part of the public contract.
 */
export { Client, request, fetch, type ClientOptions, type RequestInit } from './client/client.js';
export type { FetchInit, FetchInput } from './fetch/fetch.js';
export { fetchDetails, type FetchDetails } from './fetch/response.js';
export type { RetryOptions } from './client/retry.js';
export type { Middleware, MiddlewareNext, MiddlewareRequest } from './client/middleware.js';
export { Agent, getGlobalAgent, setGlobalAgent, type AgentStats } from './pool/agent.js';
export type { AgentOptions } from './pool/options.js';
export type { OriginStats } from './pool/origin-stats.js';
export type { CloseReason } from './exchange/connection.js';
export type { InformationalResponse } from './exchange/exchange.js';
export { Response, type ConnectionInfo, type Timings } from './response/response.js';
export { ResponseBody } from './response/body.js';
export type { RequestBody } from './request/body.js';
export type { IncomingHeaders, OutgoingHeaders } from './headers.js';
export type { TlsOptions } from './dial/dial.js';
export type { ProxyOption, ProxyObjectOption } from './dial/proxy-config.js';
export { proxyFromEnv, matchesNoProxy } from './dial/no-proxy.js';
export { systemClock, type Clock } from './clock.js';
export * from './errors.js';
export {
  probeKeepAlive,
  classifyKeepAlive,
  type KeepAliveProbeOptions,
  type KeepAliveProbeResult,
  type KeepAliveModeResult,
  type KeepAliveVerdict,
} from './probe/keep-alive-probe.js';
export {
  WarmpoolDispatcher,
  installGlobalDispatcher,
  type WarmpoolDispatcherOptions,
  type DispatchOptions,
  type DispatchHandler,
  type DispatchController,
} from './adapters/dispatcher.js';
export {
  channelNames,
  type DiagnosticsRequest,
  type DiagnosticsConnection,
  type RequestCreateMessage,
  type RequestQueuedMessage,
  type RequestHeadersSentMessage,
  type RequestResponseMessage,
  type RequestEndMessage,
  type RequestErrorMessage,
  type RequestRetryMessage,
  type RetryReason,
  type ConnectionOpenedMessage,
  type ConnectionClosedMessage,
} from './diagnostics/channels.js';
