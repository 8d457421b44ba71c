/** A TCP server that counts connections and never answers: an SSRF canary / a tarpit. */
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';

export interface Canary {
  port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function startCanary(): Promise<Canary> {
  const sockets = new Set<Socket>();
  let count = 0;
  const srv: NetServer = createNetServer((s) => {
    count += 1;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as { port: number }).port,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}
