/**
 * A histogram for the hot paths (every HTTP request, every store operation). prom-client's
 * Histogram checks and hashes the labels on every observation, which showed in the CSS's CPU
 * profile under load; here a series is looked up once by its caller (`series()`), and an
 * observation is a bucket search and three additions, without allocating. It registers on a
 * prom-client Registry like any metric and is written out in the same text format.
 */
import type { Registry } from 'prom-client';

export interface LiteSeries {
  observe(seconds: number): void;
}

interface Series<L extends string> extends LiteSeries {
  labels: Record<L, string>;
  counts: Float64Array;
  sum: number;
  count: number;
}

type Sample = { metricName: string; labels: Record<string, string | number>; value: number };

export class LiteHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bySeries = new Map<string, Series<L>>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly buckets: readonly number[],
    registers: readonly Registry[],
  ) {
    // The Registry takes any object with a name and get(); its typings want prom-client's own classes.
    for (const r of registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of these label values, made on first use; the caller keeps it. */
  series(labels: Record<L, string>): LiteSeries {
    const key = this.labelNames.map((n) => labels[n]).join('\u0000');
    let s = this.bySeries.get(key);
    if (s === undefined) {
      const counts = new Float64Array(this.buckets.length);
      const buckets = this.buckets;
      const created: Series<L> = {
        labels: { ...labels },
        counts,
        sum: 0,
        count: 0,
        observe(seconds: number): void {
          created.sum += seconds;
          created.count += 1;
          for (let i = 0; i < buckets.length; i++) {
            if (seconds <= buckets[i]!) {
              counts[i]! += 1;
              return;
            }
          }
        },
      };
      s = created;
      this.bySeries.set(key, s);
    }
    return s;
  }

  /** For the Registry: the cumulative buckets, sum and count of every series. */
  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    for (const s of this.bySeries.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** For the Registry's resetMetrics(): every series back to zero (callers keep their series). */
  reset(): void {
    for (const s of this.bySeries.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
