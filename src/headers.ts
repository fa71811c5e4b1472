/**
 * Response header fields: lowercase name -> value; a field that appears more than once is an array,
 * and set-cookie is always one.
 */
export type IncomingHeaders = Record<string, string | string[]>;

/** Request headers as callers pass them. `undefined` values are skipped. */
export type OutgoingHeaders =
  | Record<string, string | number | readonly string[] | undefined>
  | Iterable<readonly [string, string]>;
