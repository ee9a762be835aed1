// Latency samples for benchmarks: every sample is kept (a Float64Array that grows by doubling)
// and sorted once, so percentiles are exact rather than bucketed. A run of a million samples is
// 8 MB, far below what a benchmark run allocates anyway; exact percentiles keep p99.9 honest.

export class Samples {
  private data = new Float64Array(1024);
  private n = 0;
  private sorted = true;

  get count(): number {
    return this.n;
  }

  add(value: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = value;
    this.sorted = false;
  }

  /** The q-quantile (0 ≤ q ≤ 1) by the nearest-rank method; NaN without samples. */
  quantile(q: number): number {
    if (this.n === 0) return Number.NaN;
    if (!this.sorted) {
      this.data.subarray(0, this.n).sort();
      this.sorted = true;
    }
    const rank = Math.min(this.n, Math.max(1, Math.ceil(q * this.n)));
    return this.data[rank - 1] as number;
  }

  max(): number {
    return this.quantile(1);
  }

  mean(): number {
    let sum = 0;
    for (let i = 0; i < this.n; i++) sum += this.data[i] as number;
    return this.n === 0 ? Number.NaN : sum / this.n;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
