// A TCP proxy for fault tests: forwards to a target and cuts connections a bounded number of
// times, either in the middle of a request (after a random number of bytes from the client: the
// broker never sees it whole) or right after the broker answered (the response is dropped: the
// broker did the work but the client must retry — what idempotence has to deduplicate).

import { connect, createServer, type Server, type Socket } from "node:net";

export interface CuttingProxy {
  readonly port: number;
  cuts: number;
  close(): Promise<void>;
}

export async function startCuttingProxy(
  targetPort: number,
  opts: { cutsMax: number; bytesMin: number; bytesMax: number; responseCutProbability: number },
): Promise<CuttingProxy> {
  const sockets = new Set<Socket>();
  const state = { cuts: 0 };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    let budget = opts.bytesMin + Math.floor(Math.random() * (opts.bytesMax - opts.bytesMin));
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (d: Buffer) => {
      if (state.cuts < opts.cutsMax && d.length >= budget) {
        // Forward part of the request, then cut: the broker sees a truncated frame.
        upstream.write(d.subarray(0, Math.max(1, budget >> 1)));
        state.cuts++;
        setImmediate(cut);
        return;
      }
      budget -= d.length;
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (state.cuts < opts.cutsMax && Math.random() < opts.responseCutProbability) {
        state.cuts++;
        cut();
        return;
      }
      client.write(d);
    });
    for (const s of [client, upstream]) {
      s.on("error", cut);
      s.on("close", () => {
        sockets.delete(s);
        cut();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get cuts() {
      return state.cuts;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
