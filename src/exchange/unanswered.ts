/**
 * Errors of requests whose connection closed or was reset before any byte of the response arrived:
 * the server gave no answer at all, so a retry policy may send an idempotent request again (a
 * timeout, a parse error or a cut-short response is not this). The connections mark them where they
 * know it (H1Connection.fail, H2Stream.failClosed); a WeakSet, because only failures pay for it and
 * an error object says nothing of how it came about.
 */
const unanswered = new WeakSet<Error>();

export function markUnanswered(err: Error): void {
  unanswered.add(err);
}

/** The request failed because its connection closed or reset before any response byte. */
export function isUnanswered(err: unknown): boolean {
  return typeof err === 'object' && err !== null && unanswered.has(err as Error);
}
