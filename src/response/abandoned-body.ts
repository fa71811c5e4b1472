/**
 * A response body whose reader stopped reading (its socket or stream paused) and then dropped every
 * reference to it would hold its connection or stream forever. While paused, the connection holds the
 * body only weakly and registers it here; if the body is garbage-collected, its watcher is told, and
 * closes what the body held. One registry and one warning for the process, whichever protocol
 * noticed first: the warning is promised once.
 */

/** What is told when a body it registered is collected unread. */
export interface AbandonedBodyWatcher {
  onBodyCollected(): void;
}

const registry = new FinalizationRegistry<AbandonedBodyWatcher>((w) => w.onBodyCollected());
let warned = false;

/** Tells `watcher` if `body` is collected, until forgetBody(watcher). */
export function watchBody(body: object, watcher: AbandonedBodyWatcher): void {
  registry.register(body, watcher, watcher);
}

export function forgetBody(watcher: AbandonedBodyWatcher): void {
  registry.unregister(watcher);
}

/** The process warning, once per process. `what` names what was closed ('connection', 'HTTP/2 stream'). */
export function warnBodyAbandoned(what: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `warmpool: a response body was garbage-collected before it was read; its ${what} was closed. ` +
      'Read, dump() or destroy() every response body.',
    { code: 'WARMPOOL_BODY_ABANDONED' },
  );
}
