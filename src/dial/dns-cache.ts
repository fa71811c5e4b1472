/**
 * A DNS cache in front of a `lookup` (dns.lookup's shape): answers are kept for `ttl` ms (or the
 * records' own TTL when the resolver gives one, whichever is shorter), and each new connection starts
 * at the next address of the answer (round-robin), so the connections to a name that resolves to
 * several addresses spread over all of them. An address a dial failed on is put last for
 * `failedAddressTimeout` ms (skipped while another one is healthy). When an answer expires, the next
 * dial asks again and follows the new answer; the connections already open are left alone (the
 * Agent's `maxConnectionAge` rotates those). Time is read from the Agent's clock.
 */
import dns from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction, Socket } from 'node:net';
import type { Clock } from '../clock.js';

export interface DnsOptions {
  /** How long an answer is kept, ms (at most: a resolver's own `ttl`, in seconds, can shorten it). */
  ttl: number;
  /** How long an address a connection failed to reach is tried last, ms. Default 10 000. */
  failedAddressTimeout?: number;
}

/** An address in a resolver's answer; `ttl` (seconds) when the resolver knows it (dns.Resolver does). */
export type ResolvedAddress = LookupAddress & { ttl?: number };

type LookupCallback = (err: NodeJS.ErrnoException | null, addresses: ResolvedAddress[]) => void;

interface Entry {
  addresses: ResolvedAddress[];
  expiresAt: number;
  /** Where the next connection starts in `addresses`. */
  next: number;
}

/** Names (and failed addresses) kept at most; past it, the expired ones are dropped, then all. */
const MAX_ENTRIES = 1024;
export const DEFAULT_FAILED_ADDRESS_TIMEOUT = 10_000;

export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  /** Lookups under way, per name: the dials waiting for them. */
  private readonly pending = new Map<string, LookupCallback[]>();
  /** Address → the time until which it is tried last. */
  private readonly failed = new Map<string, number>();
  private readonly failedFor: number;

  constructor(
    private readonly resolver: LookupFunction,
    private readonly ttl: number,
    failedAddressTimeout: number | undefined,
    private readonly clock: Clock,
  ) {
    this.failedFor = failedAddressTimeout ?? DEFAULT_FAILED_ADDRESS_TIMEOUT;
  }

  /** dns.lookup's shape, for net.connect's `lookup`: `all` gets the rotated answer, else its first. */
  readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    this.addresses(hostname, (err, all) => {
      if (err !== null) {
        callback(err, options.all === true ? [] : '', undefined);
        return;
      }
      const family = options.family === 4 || options.family === 6 ? options.family : 0;
      const list = family === 0 ? all : all.filter((a) => a.family === family);
      if (list.length === 0) {
        const e: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        e.code = 'ENOTFOUND';
        callback(e, options.all === true ? [] : '', undefined);
        return;
      }
      if (options.all === true) callback(null, list);
      else callback(null, list[0].address, list[0].family);
    });
  };

  /** The addresses of `hostname`, the healthy ones first, starting at the next one in turn. */
  private addresses(hostname: string, callback: LookupCallback): void {
    const now = this.clock.monotonicMs();
    const entry = this.entries.get(hostname);
    if (entry !== undefined && entry.expiresAt > now) {
      callback(null, this.rotate(entry, now));
      return;
    }
    const waiting = this.pending.get(hostname);
    if (waiting !== undefined) {
      waiting.push(callback);
      return;
    }
    const callbacks: LookupCallback[] = [callback];
    this.pending.set(hostname, callbacks);
    const done = (err: NodeJS.ErrnoException | null, answer: string | ResolvedAddress[], family?: number) => {
      this.pending.delete(hostname);
      let addresses: ResolvedAddress[] = [];
      if (err === null) {
        addresses = Array.isArray(answer) ? answer : [{ address: answer, family: family ?? 4 }];
        if (addresses.length === 0) {
          err = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
          err.code = 'ENOTFOUND';
        }
      }
      if (err !== null) {
        for (const cb of callbacks) cb(err, []);
        return;
      }
      // The records' own TTL, when the resolver gives one, caps ours (errors are not kept).
      let ttl = this.ttl;
      for (const a of addresses) if (typeof a.ttl === 'number' && a.ttl * 1000 < ttl) ttl = a.ttl * 1000;
      const at = this.clock.monotonicMs();
      const fresh: Entry = { addresses, expiresAt: at + ttl, next: 0 };
      if (this.entries.size >= MAX_ENTRIES) prune(this.entries, at, (e) => e.expiresAt);
      this.entries.set(hostname, fresh);
      // Each waiting dial takes its own turn of the answer.
      for (const cb of callbacks) cb(null, this.rotate(fresh, at));
    };
    try {
      this.resolver(hostname, { all: true, family: 0 }, done as never);
    } catch (err) {
      done(err as NodeJS.ErrnoException, []);
    }
  }

  private rotate(entry: Entry, now: number): ResolvedAddress[] {
    const all = entry.addresses;
    const start = entry.next++ % all.length;
    const healthy: ResolvedAddress[] = [];
    const failing: ResolvedAddress[] = [];
    for (let i = 0; i < all.length; i++) {
      const a = all[(start + i) % all.length];
      const until = this.failed.get(a.address);
      if (until !== undefined && until > now) failing.push(a);
      else healthy.push(a);
    }
    // A failed address is still tried, last: better than no connection when all of them failed.
    return failing.length === 0 ? healthy : healthy.concat(failing);
  }

  /** A connection could not be made to `address`: try it last for a while. */
  addressFailed(address: string): void {
    const now = this.clock.monotonicMs();
    if (this.failed.size >= MAX_ENTRIES) prune(this.failed, now, (until) => until);
    this.failed.set(address, now + this.failedFor);
  }

  /**
   * What a finished dial tells about addresses: the ones net tried before the one that connected (with
   * autoSelectFamily), or the ones in its error, failed.
   */
  noteDial(socket: Socket, err: Error | null): void {
    if (err === null) {
      const tried = (socket as Socket & { autoSelectFamilyAttemptedAddresses?: string[] })
        .autoSelectFamilyAttemptedAddresses;
      if (tried !== undefined)
        for (let i = 0; i < tried.length - 1; i++) this.addressFailed(hostOf(tried[i]));
      return;
    }
    const cause = (err as { cause?: unknown }).cause ?? err;
    const errors = cause instanceof AggregateError ? cause.errors : [cause];
    for (const e of errors) {
      const address = (e as { address?: unknown } | null)?.address;
      if (typeof address === 'string') this.addressFailed(address);
    }
  }
}

/** 'ip:port' (IPv6 unbracketed, as net writes it) → ip. */
function hostOf(addressAndPort: string): string {
  const i = addressAndPort.lastIndexOf(':');
  return i === -1 ? addressAndPort : addressAndPort.slice(0, i);
}

function prune<V>(map: Map<string, V>, now: number, until: (v: V) => number): void {
  for (const [k, v] of map) if (until(v) <= now) map.delete(k);
  if (map.size >= MAX_ENTRIES) map.clear();
}

/** dns.lookup, as a LookupFunction. */
export const systemLookup: LookupFunction = dns.lookup as unknown as LookupFunction;
