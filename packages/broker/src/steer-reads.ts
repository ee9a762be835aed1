// Steering an accepted socket's reads (see @sluice/protocol frame-reader.ts for why): Node offers
// `onread` only for sockets built from options, not for the ones a net.Server accepts.

import { Socket, type SocketConstructorOpts } from "node:net";
import { ApiKey } from "@sluice/protocol";
import type { FrameReader } from "@sluice/protocol/frame-reader.ts";
import { bufferPool } from "@sluice/storage";

/** Sockets whose reads were steered, and those left on the default path (tests, metrics). */
export const steerCounts = { steered: 0, fallback: 0 };

/**
 * Where a whole request frame lives: a Produce request of 64 KiB or more in a buffer from the
 * pool (its record bytes are then kept by the log and the tail cache, which hold references:
 * buffer-pool.ts); anything else in a fresh buffer, since what handles it may keep views of it
 * without references (group metadata, for one).
 */
export function allocateRequestFrame(size: number, head: Uint8Array): Buffer {
  const produce = head.length >= 2 && ((head[0]! << 8) | head[1]!) === ApiKey.Produce;
  // The pool itself hands out fresh buffers below its POOLED_BYTES_MIN (64 KiB).
  return produce ? bufferPool.acquire(size) : Buffer.allocUnsafe(size);
}

/**
 * Makes an accepted socket's reads go into the reader's targets and returns the socket to use.
 * Node offers `onread` only for sockets built from options, so the accepted socket's handle is
 * moved into a new Socket built with it; the accepted one (never read from: the server accepts
 * with pauseOnConnect) is destroyed without its handle, which also settles the server's count of
 * connections. Where the handle cannot be moved (a Node without it), the reader is fed the
 * default read path's chunks instead: the same frames, with one more copy.
 */
export function steerReads(accepted: Socket, reader: FrameReader, onActivity: () => void): Socket {
  const holder = accepted as unknown as { _handle: unknown };
  const handle = holder._handle;
  // Only a plain TCP socket: a TLS socket's handle wraps the TCP one and must stay where it is.
  if (accepted.constructor === Socket && handle !== null && typeof handle === "object") {
    let steered: Socket | null = null;
    try {
      steered = new Socket({
        handle,
        readable: true,
        writable: true,
        onread: {
          buffer: () => reader.nextTarget(),
          callback: (n: number, buf: Uint8Array) => {
            onActivity();
            reader.onRead(n, buf as Buffer);
          },
        },
      } as unknown as SocketConstructorOpts);
    } catch {
      steered = null;
    }
    if (steered !== null) {
      holder._handle = null;
      accepted.destroy();
      steerCounts.steered++;
      return steered;
    }
  }
  steerCounts.fallback++;
  accepted.on("data", (d: Buffer) => {
    onActivity();
    reader.feed(d);
  });
  accepted.resume();
  return accepted;
}
