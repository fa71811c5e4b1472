/**
 * An HTTP/2 session's timers, beside its idle timer (a ReusableTimer) and its PING's (liveness.ts):
 * one timer for every stream's deadline, and the end-of-turn unref of an idle session.
 */
import type { ClientHttp2Session } from 'node:http2';
import type { Clock } from '../clock.js';

/**
 * One timer per session for every stream's headers and body timeouts, armed for the earliest
 * deadline; its owner scans the open streams when it fires (at most the stream limit) and re-arms.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined = undefined;
  private at = 0;

  constructor(
    private readonly clock: Clock,
    private readonly onFire: () => void,
  ) {
    this.fire = this.fire.bind(this);
  }

  /** Fires at `at` (monotonic ms), unless it is already armed for earlier. */
  arm(at: number): void {
    if (this.timer !== undefined) {
      if (this.at <= at) return;
      clearTimeout(this.timer);
    }
    this.at = at;
    const ms = at - this.clock.monotonicMs();
    this.timer = setTimeout(this.fire, ms > 1 ? ms : 1);
    this.timer.unref(); // an open stream keeps the session (and the process) alive
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    this.timer = undefined;
    this.onFire();
  }
}

/**
 * Whether the session keeps the process alive. An idle session must not, one with streams open
 * must. Over TLS each ref()/unref() goes through node's TLS method proxy, about 2 µs a pair in the
 * h2 profile, paid on every request at one stream at a time. So ref() is immediate, and unref()
 * waits for the end of the loop turn: a session handed its next request within the turn (the
 * caller's await on the body) is never unref'd.
 */
export class ProcessRef {
  /** What was last asked for. */
  keepsProcessAlive = true;
  /** What the socket was last told. */
  private socketRefd = true;
  private unrefScheduled = false;

  constructor(private readonly session: ClientHttp2Session) {}

  set(on: boolean): void {
    this.keepsProcessAlive = on;
    if (on) {
      if (!this.socketRefd) this.apply();
    } else if (this.socketRefd && !this.unrefScheduled) {
      this.unrefScheduled = true;
      setImmediate(applyDeferredUnref, this);
    }
  }

  /** The loop turn in which the session went idle is over. */
  onTurnEnd(): void {
    this.unrefScheduled = false;
    this.apply();
  }

  /** Makes the socket's ref state what `keepsProcessAlive` asks for. */
  private apply(): void {
    const on = this.keepsProcessAlive;
    if (on === this.socketRefd || this.session.destroyed) return;
    this.socketRefd = on;
    if (on) this.session.ref();
    else this.session.unref();
  }
}

function applyDeferredUnref(ref: ProcessRef): void {
  ref.onTurnEnd();
}
