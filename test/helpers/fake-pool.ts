/**
 * fake-pool: an OriginPool driven without sockets, as hyper-util tests its pool. A clock that moves
 * only when told, connections that answer only when told, dials that complete only when told: queue
 * order, caps, freshness and retry routing are then facts about the pool alone, with numbers.
 */
import type { Clock } from '../../src/clock.js';
import type { CloseReason, ConnectionOwner, PoolConnection } from '../../src/exchange/connection.js';
import {
  EX_SENT,
  Exchange,
  type ExchangeAbortTarget,
  type ExchangeInit,
} from '../../src/exchange/exchange.js';
import type { Dialed } from '../../src/pool/dialer.js';
import { type AgentOptions, resolveAgentOptions } from '../../src/pool/options.js';
import { OriginPool, type PoolParent } from '../../src/pool/origin-pool.js';
import { PreparedBody } from '../../src/request/body.js';

/** Both readings stand still until moved. */
export class NumberClock implements Clock {
  mono = 1_000;
  wall = 1_700_000_000_000;
  monotonicMs(): number {
    return this.mono;
  }
  wallMs(): number {
    return this.wall;
  }
  advance(ms: number): void {
    this.mono += ms;
    this.wall += ms;
  }
}

/** A connection that does what the test says: it answers, closes or fails only when told. */
export class FakeConnection implements PoolConnection, ExchangeAbortTarget {
  readonly protocol: 'http/1.1' | 'h2';
  readonly multiplexed: boolean;
  capacity: number;
  active = 0;
  closed = false;
  closeReason: CloseReason | undefined = undefined;
  requestCount = 0;
  readonly createdMono: number;
  readonly createdWall: number;
  idleSinceMono: number;
  idleSinceWall: number;
  serverIdleTimeoutMs: number | undefined = undefined;
  serverMaxRequests: number | undefined = undefined;
  inFreeStack = false;
  /** Exchanges on it now, in the order they came. */
  readonly exchanges: Exchange[] = [];
  /** Every exchange it ever carried (by url), in order. */
  readonly carried: string[] = [];

  constructor(
    readonly id: number,
    private readonly owner: ConnectionOwner,
    private readonly clock: NumberClock,
    multiplexed = false,
    capacity = multiplexed ? 100 : 1,
  ) {
    this.protocol = multiplexed ? 'h2' : 'http/1.1';
    this.multiplexed = multiplexed;
    this.capacity = capacity;
    this.createdMono = this.idleSinceMono = clock.mono;
    this.createdWall = this.idleSinceWall = clock.wall;
  }

  wantsLivenessTurn(): boolean {
    return false;
  }

  countsAsNewFor(ex: Exchange): boolean {
    return this.requestCount === 0 || (this.multiplexed && this.createdMono > ex.dispatchedAt);
  }

  dispatch(ex: Exchange): void {
    if (!ex.moveTo(EX_SENT, this, this)) throw new Error('dispatched a settled exchange');
    this.active++;
    this.requestCount++;
    this.exchanges.push(ex);
    this.carried.push(ex.url);
  }

  /** The response to `ex` (default: the oldest) arrived whole: the exchange ends, the slot frees. */
  answer(ex: Exchange = this.exchanges[0]!): void {
    this.exchanges.splice(this.exchanges.indexOf(ex), 1);
    ex.finish();
    this.active--;
    if (this.active === 0) {
      this.idleSinceMono = this.clock.mono;
      this.idleSinceWall = this.clock.wall;
    }
    this.owner.onConnectionReleased(this);
  }

  /** The exchange failed before any response byte; `retryable`: the connection's view (it was reused). */
  failBeforeHead(err: Error, retryable: boolean, ex: Exchange = this.exchanges[0]!): void {
    this.exchanges.splice(this.exchanges.indexOf(ex), 1);
    this.active--;
    this.closed = true;
    this.closeReason = 'server-close';
    this.owner.onConnectionClosed(this, 'server-close');
    this.owner.onExchangeFailed(ex, err, retryable);
  }

  abortExchange(ex: Exchange, err: Error): void {
    this.exchanges.splice(this.exchanges.indexOf(ex), 1);
    ex.reject(err);
    this.active--;
    this.close('aborted');
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.owner.onConnectionClosed(this, reason);
  }

  destroy(reason: CloseReason, err: Error): void {
    for (const ex of this.exchanges.splice(0)) ex.reject(err);
    this.active = 0;
    this.close(reason);
  }

  armIdleTimer(): void {}
  setKeepsProcessAlive(): void {}
}

/** A dial the test completes (with a connection) or fails, when it chooses. */
export interface PendingDial {
  owner: ConnectionOwner;
  id: number;
  succeed(opts?: { multiplexed?: boolean; capacity?: number }): FakeConnection;
  fail(err: Error): void;
}

export interface FakePool {
  pool: OriginPool;
  clock: NumberClock;
  /** Dials started and not yet completed, oldest first. */
  dials: PendingDial[];
  /** Every connection the pool was given. */
  conns: FakeConnection[];
  /** Makes a request (an Exchange) and dispatches it; its promise never rejects unobserved. */
  request(path: string, init?: Partial<ExchangeInit>): Exchange;
  /** Lets the pool's promise continuations run (a dial's result reaches the pool after them). */
  settle(): Promise<void>;
}

export function fakePool(options: AgentOptions = {}, multiplexed: boolean | 'unknown' = false): FakePool {
  const clock = new NumberClock();
  const dials: PendingDial[] = [];
  const conns: FakeConnection[] = [];
  let ids = 0;
  const parent: PoolParent = {
    closing: false,
    reserveConnection: () => true,
    releaseConnection: () => {},
    roomWanted: () => false,
    onPoolEmpty: () => {},
    nextConnectionId: () => ++ids,
  };
  const connect = (owner: ConnectionOwner, id: number): Promise<Dialed> =>
    new Promise<Dialed>((resolve, reject) => {
      const dial: PendingDial = {
        owner,
        id,
        succeed(opts = {}) {
          dials.splice(dials.indexOf(dial), 1);
          const conn = new FakeConnection(
            id,
            owner,
            clock,
            opts.multiplexed ?? multiplexed === true,
            opts.capacity,
          );
          conns.push(conn);
          resolve({ conn, timings: { dnsMs: undefined, connectMs: 1, tlsMs: undefined } });
          return conn;
        },
        fail(err) {
          dials.splice(dials.indexOf(dial), 1);
          reject(err);
        },
      };
      dials.push(dial);
    });
  const expected = multiplexed === 'unknown' ? 'unknown' : multiplexed ? 'h2' : 'http/1.1';
  const pool = new OriginPool(
    'http://fake:1',
    'http://fake:1',
    expected,
    connect,
    resolveAgentOptions({ ...options, clock }),
    parent,
  );
  return {
    pool,
    clock,
    dials,
    conns,
    request(path, init = {}) {
      const ex = makeExchange({ url: `http://fake:1${path}`, path, ...init });
      pool.dispatch(ex);
      return ex;
    },
    settle: () => new Promise((r) => setImmediate(r)),
  };
}

/** An Exchange for a GET of http://fake:1/ unless `init` says otherwise; its promise never rejects unobserved. */
export function makeExchange(init: Partial<ExchangeInit> = {}): Exchange {
  const ex = new Exchange({
    url: 'http://fake:1/',
    origin: 'http://fake:1',
    method: 'GET',
    path: '/',
    head: '',
    bodyFraming: -1,
    body: PreparedBody.from(undefined),
    connectionClose: false,
    authority: 'fake:1',
    headers: undefined,
    idempotent: undefined,
    retryOnStale: true,
    headersTimeout: 0,
    bodyTimeout: 0,
    highWaterMark: 1024,
    bodyAsChunks: false,
    signal: undefined,
    onInformation: undefined,
    ...init,
  });
  ex.promise?.catch(() => {});
  return ex;
}
