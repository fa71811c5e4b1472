/**
 * One 'abort' listener per AbortSignal, however many requests share the signal.
 *
 * An EventTarget keeps its listeners in a list and checks it for duplicates on every add and
 * remove, so a listener per request made n requests on one signal cost O(n²): 100 000 requests on
 * one signal took minutes, starved the event loop into false connect timeouts and tripped
 * MaxListenersExceededWarning. Here the signal gets a single listener, the requests that share it
 * are kept in a Set (O(1) to add and to remove), and the listener goes when the last of them is done.
 */

/** What is told when the signal aborts. */
export interface SignalWatcher {
  onSignalAborted(): void;
}

/**
 * The watchers of one signal. The first is kept in a field: a signal per request (the common case)
 * costs no Set.
 */
class SignalWatch {
  one: SignalWatcher | null = null;
  many: Set<SignalWatcher> | null = null;

  constructor(readonly signal: AbortSignal) {}

  /** The signal's 'abort' listener. */
  handleEvent(): void {
    watches.delete(this.signal);
    this.signal.removeEventListener('abort', this);
    const many = this.many;
    const one = this.one;
    this.one = null;
    this.many = null;
    // Each watcher unwatches as it settles; this watch is already out of the map, so that is a no-op.
    if (many !== null) for (const w of many) w.onSignalAborted();
    else if (one !== null) one.onSignalAborted();
  }
}

const watches = new WeakMap<AbortSignal, SignalWatch>();

/** Tells `watcher` when `signal` aborts (once), until unwatchSignal(). */
export function watchSignal(signal: AbortSignal, watcher: SignalWatcher): void {
  let watch = watches.get(signal);
  if (watch === undefined) {
    watch = new SignalWatch(signal);
    watches.set(signal, watch);
    watch.one = watcher;
    signal.addEventListener('abort', watch);
    return;
  }
  if (watch.many === null) {
    watch.many = new Set();
    if (watch.one !== null) watch.many.add(watch.one);
    watch.one = null;
  }
  watch.many.add(watcher);
}

/** Stops telling `watcher`; the signal's listener goes with its last watcher. */
export function unwatchSignal(signal: AbortSignal, watcher: SignalWatcher): void {
  const watch = watches.get(signal);
  if (watch === undefined) return;
  if (watch.many !== null) {
    watch.many.delete(watcher);
    if (watch.many.size > 0) return;
  } else if (watch.one === watcher) {
    watch.one = null;
  } else {
    return;
  }
  watches.delete(signal);
  signal.removeEventListener('abort', watch);
}
