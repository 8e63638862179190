import type { Registry } from "prom-client";

/**
 * Removes every series whose `label` equals `value` from every metric of the registry, so a
 * daemon stops exporting something it no longer serves (a machine moved away or unprotected)
 * instead of freezing its last values.
 */
export async function forgetSeries(registry: Registry, label: string, value: string): Promise<number> {
  let removed = 0;
  for (const metric of registry.getMetricsAsArray()) {
    const m = metric as unknown as {
      labelNames?: readonly string[];
      get(): Promise<{ values: Array<{ labels: Record<string, string | number> }> }>;
      remove(labels: Record<string, string | number>): void;
    };
    if (!m.labelNames?.includes(label)) continue;
    const { values } = await m.get();
    const seen = new Set<string>();
    for (const v of values) {
      if (String(v.labels[label]) !== value) continue;
      // A histogram lists one value per bucket: its series is the labels without `le`.
      const { le: _le, quantile: _q, ...labels } = v.labels;
      const key = JSON.stringify(labels);
      if (seen.has(key)) continue;
      seen.add(key);
      m.remove(labels);
      removed++;
    }
  }
  return removed;
}
