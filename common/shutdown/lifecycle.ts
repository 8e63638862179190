import type { Logger } from "../logger.js";

/** Anything with the library-class shape every srlab component has. */
export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface Part {
  name: string;
  part: Startable;
}

/**
 * Starts parts in the order they were added and stops them in reverse, so a part can rely on the
 * ones added before it for its whole life. A failed start stops what already started.
 */
export class Lifecycle implements Startable {
  private readonly parts: Part[] = [];
  private started: Part[] = [];

  constructor(private readonly logger?: Logger) {}

  add(name: string, part: Startable): this {
    this.parts.push({ name, part });
    return this;
  }

  async start(): Promise<void> {
    for (const entry of this.parts) {
      if (this.started.includes(entry)) continue;
      try {
        await entry.part.start();
      } catch (err) {
        this.logger?.error("start failed, stopping what started", { part: entry.name, error: messageOf(err) });
        await this.stop().catch(() => undefined);
        throw err;
      }
      this.started.push(entry);
      this.logger?.debug("started", { part: entry.name });
    }
  }

  /** Stops every started part, newest first; continues past failures and rethrows the first. */
  async stop(): Promise<void> {
    let firstError: unknown;
    while (this.started.length > 0) {
      const entry = this.started.pop()!;
      try {
        await entry.part.stop();
        this.logger?.debug("stopped", { part: entry.name });
      } catch (err) {
        firstError ??= err;
        this.logger?.error("stop failed", { part: entry.name, error: messageOf(err) });
      }
    }
    if (firstError !== undefined) throw firstError;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
