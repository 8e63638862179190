import type { Logger } from "../../common/logger.js";
import { type BlobStore, isRecoverableStorageError } from "../../common/storage/index.js";
import { Health, HealthIssueCode, type HealthIssue } from "../../proto/index.js";

/** Name the probe asks about: a HEAD of an object that need not exist is the cheapest round trip. */
const PROBE_OBJECT = "srlab/storage-probe";

export interface StorageWatchOptions {
  /** How often the cheap probe runs while storage is unreachable. */
  probeIntervalMs: number;
  /** An outage longer than this makes the component Critical (Warning before). */
  criticalAfterMs: number;
  /**
   * How often the probe runs while storage is reachable (after start(); 0: never), so a restart
   * while nothing is uploaded is noticed too. A restart refuses connections for longer than this
   * (the lab's keeper restarts a daemon after 1 s at the soonest), so a probe lands in it.
   */
  idleProbeMs: number;
  logger?: Logger;
}

const DEFAULTS: StorageWatchOptions = { probeIntervalMs: 1_000, criticalAfterMs: 15 * 60_000, idleProbeMs: 0 };

/**
 * Nothing listened at storage's address: its process went away, not only the network. Such a
 * service may come back without writes it acknowledged just before (Azurite keeps its metadata in
 * memory and saves it every 5 s), so the return is reported as a possible loss.
 */
const PROCESS_GONE = /ECONNREFUSED/;
const watches = new WeakMap<BlobStore, StorageWatch>();

/**
 * Whether a process server's storage answers. A failed storage operation marks it unreachable
 * and starts a cheap probe every second; the probe's first success wakes every retry waiting in
 * its backoff, so uploads resume within about a second of storage returning, while the backoff
 * schedule still paces the expensive retries during the outage. Once started, the probe also runs
 * at a low rate while storage is reachable: an idle process server uploads nothing, and a storage
 * that restarted meanwhile would otherwise go unnoticed.
 */
export class StorageWatch {
  private downSince: number | undefined;
  private lastError = "";
  private waiters: Array<() => void> = [];
  private probing = false;
  private stopped = false;
  /** During the current outage, storage refused connections (its process was gone). */
  private refused = false;
  private readonly restartListeners: Array<(reason: string) => void> = [];
  private idleTimer?: NodeJS.Timeout;
  private wakeIdle?: () => void;

  private constructor(
    private readonly store: BlobStore,
    private options: StorageWatchOptions,
  ) {}

  /** The watch of a store (one per store, shared by every pipeline that uses it). */
  static of(store: BlobStore, options?: Partial<StorageWatchOptions>): StorageWatch {
    let w = watches.get(store);
    if (!w) {
      w = new StorageWatch(store, { ...DEFAULTS, ...options });
      watches.set(store, w);
    } else if (options) {
      w.options = { ...w.options, ...options };
    }
    return w;
  }

  get reachable(): boolean {
    return this.downSince === undefined;
  }

  /** A storage operation failed with an outage-like error. */
  reportFailure(err: unknown): void {
    this.lastError = err instanceof Error ? err.message : String(err);
    if (PROCESS_GONE.test(this.lastError)) this.refused = true;
    if (this.downSince !== undefined) return;
    this.downSince = Date.now();
    this.options.logger?.warn("storage unreachable; probing for its return", { error: this.lastError });
    void this.probe();
  }

  /**
   * Called when storage is back after an outage in which it refused connections: it restarted,
   * and may have lost writes it acknowledged before (the process server then resyncs).
   */
  onRestarted(listener: (reason: string) => void): () => void {
    this.restartListeners.push(listener);
    return () => {
      const at = this.restartListeners.indexOf(listener);
      if (at >= 0) this.restartListeners.splice(at, 1);
    };
  }

  /** A storage operation succeeded. */
  reportSuccess(): void {
    if (this.downSince !== undefined) this.markBack();
  }

  /** Resolves when storage is next seen back (never while it stays down). */
  whenBack(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The component's health issue while storage is unreachable. */
  issues(now = Date.now()): HealthIssue[] {
    if (this.downSince === undefined) return [];
    const seconds = Math.round((now - this.downSince) / 1000);
    const critical = now - this.downSince >= this.options.criticalAfterMs;
    return [
      {
        health: critical ? Health.HEALTH_CRITICAL : Health.HEALTH_WARNING,
        code: HealthIssueCode.HEALTH_ISSUE_CODE_STORAGE_UNREACHABLE,
        message: `storage unreachable for ${seconds} s: ${this.lastError}`,
      },
    ];
  }

  /** Starts the probe of reachable storage (idleProbeMs); stop() ends it. */
  start(): void {
    if (this.options.idleProbeMs <= 0 || this.idleTimer || this.wakeIdle) return;
    this.stopped = false;
    void this.probeWhileReachable();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    this.wakeIdle?.();
  }

  private async probeWhileReachable(): Promise<void> {
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        this.wakeIdle = resolve;
        this.idleTimer = setTimeout(resolve, this.options.idleProbeMs);
        this.idleTimer.unref();
      });
      this.idleTimer = undefined;
      this.wakeIdle = undefined;
      // During an outage the outage probe runs, faster.
      if (this.stopped || this.downSince !== undefined) continue;
      try {
        await this.store.objectExists(PROBE_OBJECT);
        this.reportSuccess();
      } catch (err) {
        // Only an outage counts; a refused connection is a restart, seen through on its return.
        if (isRecoverableStorageError(err) && !this.stopped) this.reportFailure(err);
      }
    }
  }

  private markBack(): void {
    const seconds = ((Date.now() - (this.downSince ?? Date.now())) / 1000).toFixed(1);
    this.downSince = undefined;
    this.options.logger?.info("storage reachable again", { outageSeconds: seconds });
    if (this.refused) {
      this.refused = false;
      const reason = `storage restarted (it refused connections for ${seconds} s): writes it acknowledged just before may be lost`;
      this.options.logger?.warn("storage restarted; its recent writes are not trusted", { reason });
      for (const listener of this.restartListeners) listener(reason);
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      while (this.downSince !== undefined && !this.stopped) {
        await new Promise((r) => setTimeout(r, this.options.probeIntervalMs).unref());
        try {
          await this.store.objectExists(PROBE_OBJECT);
          if (this.downSince !== undefined) this.markBack();
        } catch (err) {
          this.lastError = err instanceof Error ? err.message : String(err);
          if (PROCESS_GONE.test(this.lastError)) this.refused = true;
        }
      }
    } finally {
      this.probing = false;
    }
  }
}
