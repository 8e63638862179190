import type { ByteRange } from "./block-plan.js";

/**
 * Bytes the applier knows a replica disk holds, so a block-wise apply need not read them back
 * before rewriting the block around new writes. Every method takes 512-byte aligned ranges.
 */
export interface KnownReplica {
  /** The parts of [start, end) whose bytes are not known, in order. */
  missing(start: number, end: number): ByteRange[];
  /** Copies the known bytes of [offset, offset + into.length) into `into`; returns the ranges copied, in order. */
  copyKnown(offset: number, into: Buffer): ByteRange[];
  /** The replica holds `data` at `offset` now (a write or read of it succeeded). */
  learn(offset: number, data: Buffer): void;
  /** The range may hold anything now (a clear, a failed call). */
  forget(offset: number, length: number): void;
}

/**
 * One process server's cache of replica bytes, least recently used out first, in units of
 * `unitBytes`, at most `budgetBytes` in all. Random small writes make the applier rewrite the
 * same 4 MiB blocks pass after pass; without it each rewrite reads the block from storage first,
 * which on Azurite costs twice the write. Each view is one replica disk as seen by one applier:
 * a new view starts empty, so nothing learnt before a restart, a handover or a resize is trusted.
 */
export class ReplicaBlockCache {
  /** Key `${view}/${unit}`; Map order is use order (oldest first). */
  private readonly units = new Map<string, Buffer>();
  private readonly spare: Buffer[] = [];
  private views = 0;

  constructor(
    readonly budgetBytes: number,
    readonly unitBytes = 64 * 1024,
  ) {
    if (!Number.isSafeInteger(unitBytes) || unitBytes <= 0 || unitBytes % 512 !== 0) throw new RangeError(`unit ${unitBytes} must be a positive multiple of 512`);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.units.size * this.unitBytes;
  }

  /** An empty view of a disk of `sizeBytes` (a multiple of 512). */
  view(sizeBytes: number): CachedReplica {
    return new CachedReplica(this, String(++this.views), sizeBytes);
  }

  /** Forgets everything of a view. */
  drop(view: CachedReplica): void {
    const prefix = `${view.id}/`;
    for (const [key, buf] of this.units) {
      if (!key.startsWith(prefix)) continue;
      this.units.delete(key);
      this.spare.push(buf);
    }
  }

  /** @internal */
  get(key: string): Buffer | undefined {
    const buf = this.units.get(key);
    if (buf) {
      // Used now: to the young end.
      this.units.delete(key);
      this.units.set(key, buf);
    }
    return buf;
  }

  /** @internal The unit's buffer, existing or new (evicting the oldest past the budget); undefined when the budget holds none. */
  slot(key: string): Buffer | undefined {
    const held = this.get(key);
    if (held) return held;
    if (this.budgetBytes < this.unitBytes) return undefined;
    while (this.units.size > 0 && (this.units.size + 1) * this.unitBytes > this.budgetBytes) {
      const [oldest, buf] = this.units.entries().next().value as [string, Buffer];
      this.units.delete(oldest);
      this.spare.push(buf);
    }
    const buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.unitBytes);
    this.units.set(key, buf);
    return buf;
  }

  /** @internal */
  delete(key: string): void {
    const buf = this.units.get(key);
    if (!buf) return;
    this.units.delete(key);
    this.spare.push(buf);
  }
}

/** One replica disk's bytes in a ReplicaBlockCache. */
export class CachedReplica implements KnownReplica {
  constructor(
    private readonly cache: ReplicaBlockCache,
    readonly id: string,
    readonly sizeBytes: number,
  ) {}

  missing(start: number, end: number): ByteRange[] {
    const out: ByteRange[] = [];
    this.eachUnit(start, end, (unit, from, to) => {
      if (this.cache.get(this.key(unit))) return;
      const last = out[out.length - 1];
      if (last && last.end === from) last.end = to;
      else out.push({ start: from, end: to });
    });
    return out;
  }

  copyKnown(offset: number, into: Buffer): ByteRange[] {
    const out: ByteRange[] = [];
    const u = this.cache.unitBytes;
    this.eachUnit(offset, offset + into.length, (unit, from, to) => {
      const buf = this.cache.get(this.key(unit));
      if (!buf) return;
      buf.copy(into, from - offset, from - unit * u, to - unit * u);
      const last = out[out.length - 1];
      if (last && last.end === from) last.end = to;
      else out.push({ start: from, end: to });
    });
    return out;
  }

  learn(offset: number, data: Buffer): void {
    const u = this.cache.unitBytes;
    this.eachUnit(offset, offset + data.length, (unit, from, to, whole) => {
      const key = this.key(unit);
      // A unit only partly in `data` is kept up to date when held, and not started.
      const buf = whole ? this.cache.slot(key) : this.cache.get(key);
      buf?.set(data.subarray(from - offset, to - offset), from - unit * u);
    });
  }

  forget(offset: number, length: number): void {
    this.eachUnit(offset, offset + length, (unit) => this.cache.delete(this.key(unit)));
  }

  private key(unit: number): string {
    return `${this.id}/${unit}`;
  }

  /** Visits the units [start, end) touches with the part of them inside it; `whole`: all of the unit (clipped at the disk's end). */
  private eachUnit(start: number, end: number, visit: (unit: number, from: number, to: number, whole: boolean) => void): void {
    const u = this.cache.unitBytes;
    const stop = Math.min(end, this.sizeBytes);
    for (let unit = Math.floor(start / u); unit * u < stop; unit++) {
      const us = unit * u;
      const ue = Math.min(us + u, this.sizeBytes);
      const from = Math.max(us, start);
      const to = Math.min(ue, stop);
      visit(unit, from, to, from === us && to === ue);
    }
  }
}
