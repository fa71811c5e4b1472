/**
 * Response header fields: lowercase name -> value; a field that appears more than once is an array,
 * and set-cookie is always one.
 */
export type IncomingHeaders = Record<string, string | string[]>;

/** Request headers as callers pass them. `undefined` values are skipped. */
export type OutgoingHeaders =
  | Record<string, string | number | readonly string[] | undefined>
  | Iterable<readonly [string, string]>;

/**
 * Adds one field line to `target`. A second value makes an array; set-cookie is always one (its
 * values cannot be joined, as node:http and node:http2 also give it). Names are read as own
 * properties only: a server may send a field named `constructor`, `toString` or `__proto__`, which
 * a plain object would otherwise find on its prototype.
 */
export function addField(target: IncomingHeaders, name: string, value: string): void {
  const prev = Object.hasOwn(target, name) ? target[name] : undefined;
  if (prev === undefined) setOwn(target, name, name === 'set-cookie' ? [value] : value);
  else if (typeof prev === 'string') setOwn(target, name, [prev, value]);
  else prev.push(value);
}

export function getOwn(target: IncomingHeaders, name: string): string | string[] | undefined {
  return Object.hasOwn(target, name) ? target[name] : undefined;
}

/** Sets a field as an ordinary own property, `__proto__` included. */
export function setOwn(target: IncomingHeaders, name: string, value: string | string[]): void {
  if (name === '__proto__') {
    Object.defineProperty(target, name, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[name] = value;
  }
}

/** The [name, value] lines of caller-supplied headers, whichever form they came in. */
export function* outgoingEntries(h: OutgoingHeaders): Iterable<[string, string]> {
  if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [n, v] of h as Iterable<readonly [string, string]>) yield [n, v];
    return;
  }
  const rec = h as Record<string, string | number | readonly string[] | undefined>;
  for (const name of Object.keys(rec)) {
    const v = rec[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) yield [name, String(x)];
    else yield [name, String(v)];
  }
}

/** True when `h` has a field of this (lowercase) name. */
export function hasOutgoing(h: OutgoingHeaders | undefined, lowerName: string): boolean {
  if (h === undefined) return false;
  for (const [name] of outgoingEntries(h)) if (name.toLowerCase() === lowerName) return true;
  return false;
}
