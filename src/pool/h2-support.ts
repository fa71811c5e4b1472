/**
 * Whether ALPN may offer h2: set by the HTTP/2 module when it is loaded. A module of its own, with no
 * imports, so the flag exists before anything in the import cycle agent -> pool -> h2 connection
 * runs (a `let` in agent.ts would still be uninitialised when the HTTP/2 module calls enableH2()).
 */
let h2Supported = false;

export function h2Available(): boolean {
  return h2Supported;
}

export function enableH2(): void {
  h2Supported = true;
}
