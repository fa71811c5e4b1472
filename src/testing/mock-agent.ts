import type { DialTarget } from '../dial/dial.js';
import { InvalidArgumentError, MockPendingInterceptorsError } from '../errors.js';
import { Agent } from '../pool/agent.js';
import type { Connector } from '../pool/dialer.js';
import type { AgentOptions } from '../pool/options.js';
import {
  type MockBody,
  type MockInterceptOptions,
  MockInterceptor,
  type MockMatcher,
  type MockReply,
  type MockReplyFunction,
  type MockRequest,
  MockScope,
  checkReply,
  normalizeOrigin,
} from './interceptors.js';
import { MockConnection, MockSocket } from './mock-connection.js';

/** What intercept() returns: say how to answer. */
export interface MockInterception {
  /** Answer with this status, body (a string, bytes, or a value sent as JSON) and headers. */
  reply(status: number, body?: MockBody, headers?: Record<string, string | readonly string[]>): MockScope;
  /** Answer with what `fn` returns for the request (it may be async). */
  reply(fn: MockReplyFunction): MockScope;
  /** Fail the request with `err` (it is rejected with that error, as is). */
  replyWithError(err: Error): MockScope;
}

/**
 * An Agent that answers from interceptors instead of the network, for users' tests. Give it to a
 * Client (`new Client({ agent: mock })`), to request() through setGlobalAgent(mock), or to a
 * WarmpoolDispatcher. Its pool, queue, timeouts and stats are a real Agent's; only the socket is
 * not (see mock-connection.ts), so responses are real Responses (res.connection.mocked is true).
 *
 * A request that matches no interceptor fails with WARMPOOL_MOCK_NOT_MATCHED, naming it, unless
 * network access is enabled for its origin (enableNetConnect): then it goes to the real origin.
 */
export class MockAgent extends Agent {
  private readonly interceptors: MockInterceptor[] = [];
  private netConnect: MockMatcher[] | true = [];

  constructor(options: AgentOptions = {}) {
    super(options);
  }

  /** Answers requests that match `options` (each part a string, RegExp or function). */
  intercept(options: MockInterceptOptions): MockInterception {
    const interceptor = new MockInterceptor(options);
    this.interceptors.push(interceptor);
    const scope = new MockScope(interceptor);
    return {
      reply(
        statusOrFn: number | MockReplyFunction,
        body?: MockBody,
        headers?: Record<string, string | readonly string[]>,
      ) {
        if (typeof statusOrFn === 'function') interceptor.answer = { kind: 'function', fn: statusOrFn };
        else {
          const reply: MockReply = { status: statusOrFn, body, headers };
          checkReply(reply);
          interceptor.answer = { kind: 'reply', reply };
        }
        return scope;
      },
      replyWithError(err: Error) {
        if (!(err instanceof Error)) throw new InvalidArgumentError('replyWithError() needs an Error');
        interceptor.answer = { kind: 'error', error: err };
        return scope;
      },
    } as MockInterception;
  }

  /**
   * Lets requests that match no interceptor go to the network: to every origin (no argument), or to
   * origins equal to a string (`http://host:port`), matched by a RegExp, or accepted by a function.
   */
  enableNetConnect(origin?: MockMatcher): void {
    if (origin === undefined) {
      this.netConnect = true;
      return;
    }
    const m = typeof origin === 'string' ? normalizeOrigin(origin) : origin;
    if (this.netConnect === true) return;
    this.netConnect.push(m);
  }

  /** Back to the default: a request that matches no interceptor fails. */
  disableNetConnect(): void {
    this.netConnect = [];
  }

  /** Interceptors not used up: with answers left, or persistent and never used. */
  pendingInterceptors(): string[] {
    return this.describePending();
  }

  /** Throws a MockPendingInterceptorsError listing the interceptors never used up. */
  assertNoPendingInterceptors(): void {
    const pending = this.describePending();
    if (pending.length === 0) return;
    throw new MockPendingInterceptorsError(
      `${pending.length} interceptor${pending.length === 1 ? ' is' : 's are'} pending:\n  ${pending.join('\n  ')}`,
    );
  }

  /** @internal MockRegistry */
  take(req: MockRequest): MockInterceptor | undefined {
    for (const i of this.interceptors) {
      if (i.matches(req)) {
        i.take();
        return i;
      }
    }
    return undefined;
  }

  /** @internal MockRegistry */
  netConnectAllowed(origin: string): boolean {
    if (this.netConnect === true) return true;
    return this.netConnect.some((m) =>
      typeof m === 'string' ? m === origin : m instanceof RegExp ? m.test(origin) : m(origin) === true,
    );
  }

  /** @internal MockRegistry */
  describePending(): string[] {
    return this.interceptors.filter((i) => i.pending).map((i) => i.describe());
  }

  /** @internal Connections answered from the interceptors. */
  protected override connector(target: DialTarget, origin: string): Connector {
    const options = this.options;
    const limits = { maxHeaderSize: options.maxHeaderSize, maxHeaderCount: options.maxHeaderCount };
    return (owner, id) => {
      const conn = new MockConnection(id, new MockSocket(this, origin, target), owner, options.clock, limits);
      return Promise.resolve({ conn, timings: { dnsMs: undefined, connectMs: undefined, tlsMs: undefined } });
    };
  }
}
