/** Loopback ports for servers the tests start as programs of their own (nginx, squid, tinyproxy). */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** A port free on 127.0.0.1 right now (the OS picks it; the caller binds it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Waits until something accepts connections on `port`, `child` (the server) exits, or `ms` pass.
 * `exited` resolves when the child has exited (for its stop()).
 */
export async function waitForListener(
  child: ChildProcess,
  port: number,
  ms: number,
): Promise<{ up: boolean; exited: Promise<void> }> {
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
  });
  const deadline = Date.now() + ms;
  let up = false;
  while (!up && !exitedEarly && Date.now() < deadline) {
    up = await canConnect(port);
    if (!up) await new Promise((r) => setTimeout(r, 25));
  }
  return { up, exited };
}
