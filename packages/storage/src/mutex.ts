// A FIFO async mutex: `run` executes its function after every previously queued one has settled.
// The partition log serialises its mutations (writes, rolls, truncation, segment swaps) with one.

export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(fn).finally(() => {
      this.queued--;
    });
    this.tail = result.catch(() => {});
    return result;
  }

  /** Operations queued or running. */
  get pending(): number {
    return this.queued;
  }
}
