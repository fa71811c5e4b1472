/**
 * TLS session tickets per pool key, so a second cold connection to an origin resumes its TLS
 * session instead of doing a full handshake. Bounded: the most recent `maxOrigins` keys, one ticket
 * each (the newest ticket is the most likely to still be valid on the server).
 */
export class TlsSessionCache {
  private readonly sessions = new Map<string, Buffer>();

  constructor(private readonly maxOrigins = 256) {}

  get(key: string): Buffer | undefined {
    return this.sessions.get(key);
  }

  set(key: string, session: Buffer): void {
    // Re-insert to move the key to the end: Map iteration order is insertion order, so the first
    // key is the least recently stored one.
    this.sessions.delete(key);
    this.sessions.set(key, session);
    if (this.sessions.size > this.maxOrigins) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
  }

  delete(key: string): void {
    this.sessions.delete(key);
  }
}
