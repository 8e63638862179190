import type { Logger } from "../../common/logger.js";
import { Health } from "../../proto/index.js";
import { type CacheHealth, measureCacheHealth } from "./cache-health.js";
import type { DiskCache } from "./disk-cache.js";

export interface CacheHealthWatchOptions {
  dir: string;
  /** When set, free space is measured against this instead of the cache volume. */
  capacityBytes?: number;
  warningFreePercent: number;
  criticalFreePercent: number;
  logger: Logger;
}

/** The cache's health, measured now and then on a timer: heartbeats and streams read the last figure. */
export class CacheHealthWatch {
  /** Normal until the first measurement. */
  state: CacheHealth = { health: Health.HEALTH_NORMAL, issues: [], freePercent: 100, capacityBytes: 0 };
  private timer?: NodeJS.Timeout;

  constructor(private readonly options: CacheHealthWatchOptions) {}

  /** Measures once, then every intervalMs until stop(). */
  async start(cache: DiskCache, intervalMs: number): Promise<void> {
    await this.refresh(cache);
    this.timer = setInterval(() => void this.refresh(cache), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async refresh(cache: DiskCache): Promise<void> {
    const o = this.options;
    try {
      this.state = await measureCacheHealth({
        dir: o.dir,
        usedBytes: cache.usedBytes(),
        capacityBytes: o.capacityBytes,
        warningFreePercent: o.warningFreePercent,
        criticalFreePercent: o.criticalFreePercent,
        aboveHighWater: cache.isAboveHighWater(),
      });
    } catch (err) {
      o.logger.warn("cache health check failed", { error: (err as Error).message });
    }
  }
}
