// Loopback port helpers for integration tests. Only 127.0.0.1 is ever bound.
import net from 'node:net';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP port that was free on 127.0.0.1 a moment ago (bind :0, read the port, close). Racy by nature: retry on EADDRINUSE. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: no address'));
        return;
      }
      srv.close((err) => (err ? reject(err) : resolve(addr.port)));
    });
  });
}

/** A UDP port that was free on 127.0.0.1 a moment ago. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.unref();
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

/** True when a TCP connection to 127.0.0.1:port is accepted. */
export function canConnect(port: number, timeout_ms = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.removeAllListeners();
      sock.on('error', () => undefined);
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeout_ms, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** True when 127.0.0.1:port can be bound for listening right now (i.e. nobody listens on it). */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Poll until 127.0.0.1:port accepts a TCP connection; `alive()` returning false aborts (process died). */
export async function waitForPort(
  port: number,
  opts: { timeout_ms?: number; interval_ms?: number; alive?: () => boolean; what?: string } = {},
): Promise<void> {
  const { timeout_ms = 10_000, interval_ms = 20, alive, what = `port ${port}` } = opts;
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    if (alive && !alive()) throw new Error(`${what}: process exited before 127.0.0.1:${port} accepted connections`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`${what}: 127.0.0.1:${port} not accepting connections after ${timeout_ms} ms`);
    await sleep(interval_ms);
  }
}

/** Poll until nobody listens on 127.0.0.1:port any more (used before restarting a server on the same port). */
export async function waitForPortFree(port: number, opts: { timeout_ms?: number; interval_ms?: number } = {}): Promise<void> {
  const { timeout_ms = 10_000, interval_ms = 20 } = opts;
  const deadline = Date.now() + timeout_ms;
  while (!(await canListen(port))) {
    if (Date.now() > deadline) throw new Error(`127.0.0.1:${port} still in use after ${timeout_ms} ms`);
    await sleep(interval_ms);
  }
}
