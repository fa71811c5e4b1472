/**
 * An HTTP/2 session's liveness check. A session idle for a while (or whose idle age the two clocks
 * disagree on: a VM freeze or a clock step) may be dead without having said so. Before reuse it is
 * PINGed; the exchanges dispatched meanwhile hold their slots here (their liveness turn), and are
 * sent on it when the answer comes, or elsewhere if none does (they were never sent here).
 */
import type { ClientHttp2Session } from 'node:http2';
import type { Exchange } from '../exchange/exchange.js';

/** Sessions idle at least this long are PINGed before reuse. */
const PING_AFTER_IDLE_MS = 1000;
/** ...and so are sessions whose idle age the two clocks disagree on by this much (a freeze, a step). */
const CLOCK_DISAGREEMENT_MS = 250;
/** A PING unanswered this long means the session is dead. */
export const PING_TIMEOUT_MS = 2000;

/**
 * Idle long enough to be at risk, or the clocks disagree on how long (DESIGN.md invariant 4): idle
 * `mono` ms by the monotonic clock, `wall` ms by the wall clock.
 */
export function needsLivenessCheck(mono: number, wall: number): boolean {
  const gap = mono > wall ? mono - wall : wall - mono;
  return mono >= PING_AFTER_IDLE_MS || wall >= PING_AFTER_IDLE_MS || gap >= CLOCK_DISAGREEMENT_MS;
}

/** What the session is told when its PING is answered, or is not. */
export interface LivenessOwner {
  /** The answer came: `held` can be sent. */
  onPingAnswered(held: Exchange[]): void;
  /** No answer within PING_TIMEOUT_MS, or the PING could not be sent. */
  onPingFailed(err: Error): void;
}

/** One session's PING, and the exchanges holding a slot while it is out. */
export class LivenessPing {
  /** A PING is out. */
  pinging = false;
  private held: Exchange[] = [];
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(private readonly owner: LivenessOwner) {
    this.onPong = this.onPong.bind(this);
    this.onTimeout = this.onTimeout.bind(this);
  }

  /** How many exchanges wait for the answer. */
  get holding(): number {
    return this.held.length;
  }

  /** `ex` waits for the answer (the caller has moved it to its liveness turn). */
  hold(ex: Exchange): void {
    this.held.push(ex);
  }

  /** `ex` stops waiting (the caller aborted); false if it was not waiting. */
  drop(ex: Exchange): boolean {
    const i = this.held.indexOf(ex);
    if (i === -1) return false;
    this.held.splice(i, 1);
    return true;
  }

  /** Sends a PING on `session`. */
  send(session: ClientHttp2Session): void {
    this.pinging = true;
    let sent = false;
    let failure: unknown;
    try {
      sent = session.ping(this.onPong);
    } catch (err) {
      failure = err;
    }
    if (!sent) {
      this.onPong((failure as Error | undefined) ?? new Error('PING not sent'));
      return;
    }
    this.timer = setTimeout(this.onTimeout, PING_TIMEOUT_MS);
    this.timer.unref();
  }

  /** Stops waiting for an answer and hands back the exchanges that waited for it. */
  stop(): Exchange[] {
    const held = this.held;
    this.held = [];
    this.pinging = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    return held;
  }

  private onTimeout(): void {
    this.timer = undefined;
    this.onPong(new Error(`no PING answer within ${PING_TIMEOUT_MS} ms`));
  }

  private onPong(err: Error | null): void {
    if (!this.pinging) return;
    if (err !== null) {
      this.pinging = false;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.owner.onPingFailed(err);
      return;
    }
    this.owner.onPingAnswered(this.stop());
  }
}
