/**
 * The TLS options as a pool key: which fields change a connection, how each is named in a key (by its
 * whole content), and how a request's `tls` merges over its Client's and its Agent's.
 */
import { hash } from 'node:crypto';
import type { TlsOptions } from '../dial/dial.js';

/**
 * Every TlsOptions field, each of which changes what connection you get: all are in the pool key. A
 * field added to TlsOptions must be added here (and dial() passes it to tls.connect).
 */
export const TLS_KEY_FIELDS = [
  'servername',
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'rejectUnauthorized',
  'ciphers',
  'minVersion',
  'maxVersion',
  'ecdhCurve',
  'sigalgs',
  'checkServerIdentity',
  'secureOptions',
] as const satisfies ReadonlyArray<keyof TlsOptions>;

/**
 * What names a TLS option's value in a pool key: a SHA-256 digest of its whole content, so two values
 * share a key only when they are equal (every PEM starts alike: a length and a prefix once let one
 * client certificate, or one CA, stand for another). A string or Buffer is hashed as its bytes (a PEM
 * as a string and as a Buffer make the same connection); an array, as the digests of its elements in
 * order, marked as an array; a function (checkServerIdentity) or any other object (a `{ pem,
 * passphrase }` entry), by its identity: two functions with the same source may close over different
 * pins. Numbers and booleans as themselves. Computed once per distinct value: by value for strings (a
 * bounded map), by object for Buffers and arrays, so a Buffer or array changed in place after its first
 * use keeps the digest of what it held then (pass a new one instead).
 */
const objectDigests = new WeakMap<object, string>();
const stringDigests = new Map<string, string>();
const MAX_STRING_DIGESTS = 256;
let nextObjectId = 1;
export function digestOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') {
    let d = stringDigests.get(value);
    if (d === undefined) {
      d = hash('sha256', value, 'base64');
      if (stringDigests.size >= MAX_STRING_DIGESTS) stringDigests.clear();
      stringDigests.set(value, d);
    }
    return d;
  }
  if (typeof value !== 'object' && typeof value !== 'function') return `(${typeof value} ${String(value)})`;
  let d = objectDigests.get(value);
  if (d === undefined) {
    if (ArrayBuffer.isView(value)) {
      d = hash('sha256', new Uint8Array(value.buffer, value.byteOffset, value.byteLength), 'base64');
    } else if (Array.isArray(value)) {
      let parts = '';
      for (let i = 0; i < value.length; i++) parts += `${digestOf(value[i])},`;
      d = `[${hash('sha256', parts, 'base64')}]`;
    } else {
      d = `#${nextObjectId++}`;
    }
    objectDigests.set(value, d);
  }
  return d;
}

/** The pool key part of a TLS origin's options: every field by its full content, in a fixed order. */
export function tlsKey(t: TlsOptions): string {
  const name = t.servername === undefined ? '-' : `${String(t.servername).length}:${t.servername}`;
  let key = `${name}|${t.rejectUnauthorized === false ? 0 : 1}`;
  // servername and rejectUnauthorized are above; every other field by its digest ('' when unset).
  for (const f of TLS_KEY_FIELDS) {
    if (f !== 'servername' && f !== 'rejectUnauthorized') key += `|${digestOf(t[f])}`;
  }
  return key;
}

/** The values of TlsOptions a pool key is made of, as they were when the key was made. */
export type TlsFields = unknown[];
const NO_FIELDS: TlsFields = TLS_KEY_FIELDS.map(() => undefined);
export function tlsFields(t: TlsOptions | undefined): TlsFields {
  if (t === undefined) return NO_FIELDS;
  const f = new Array<unknown>(TLS_KEY_FIELDS.length);
  for (let i = 0; i < TLS_KEY_FIELDS.length; i++) f[i] = t[TLS_KEY_FIELDS[i]];
  return f;
}
/** Same key parts (an options object changed in place makes another key). */
export function sameTlsFields(t: TlsOptions, f: TlsFields): boolean {
  for (let i = 0; i < TLS_KEY_FIELDS.length; i++) if (t[TLS_KEY_FIELDS[i]] !== f[i]) return false;
  return true;
}

interface Merged {
  merged: TlsOptions;
  baseFields: TlsFields;
  overFields: TlsFields;
}
const merges = new WeakMap<TlsOptions, WeakMap<TlsOptions, Merged>>();

/**
 * `over`'s fields (those not undefined) over `base`'s: a request's `tls` adds to its Client's and
 * its Agent's instead of replacing them (a request that sets `servername` keeps the Agent's `ca`).
 * The merged object is made once per (base, over) pair and kept while both live, so a request
 * that passes the same objects each time gets the same merged one (the pool's last-pool shortcut
 * compares objects); made again when either was changed in place.
 */
export function mergeTls(base: TlsOptions | undefined, over: TlsOptions | undefined): TlsOptions | undefined {
  if (over === undefined || over === base) return base;
  if (base === undefined) return over;
  let byOver = merges.get(base);
  if (byOver === undefined) {
    byOver = new WeakMap();
    merges.set(base, byOver);
  }
  const m = byOver.get(over);
  if (m !== undefined && sameTlsFields(base, m.baseFields) && sameTlsFields(over, m.overFields)) {
    return m.merged;
  }
  const merged: TlsOptions = { ...base };
  for (const f of TLS_KEY_FIELDS) {
    const v = over[f];
    if (v !== undefined) (merged as Record<string, unknown>)[f] = v;
  }
  byOver.set(over, { merged, baseFields: tlsFields(base), overFields: tlsFields(over) });
  return merged;
}
