import { deriveSegmentKey, type SegmentKeyEntry } from "../common/segment/index.js";
import type { ConfigStore } from "./store/index.js";

const SETTING = "segment-keys";
/** The key id of every deployment made before rotation existed. */
const FIRST_KEY_ID = "k1";

export interface SegmentKeyRecord {
  keyId: string;
  createdAt: Date;
}

/**
 * The deployment's segment keys. Each is HKDF(deployment secret, key id), so the store keeps only
 * the ids (settings `segment-keys`, oldest first; the last one is current). A rotation adds an id
 * and never removes one: segments written with an older key stay readable for as long as
 * retention keeps them. Ids are never reused, because the same id would give the same key.
 */
export class SegmentKeys {
  /** Which key id each process server last said it writes with (its heartbeat). */
  private readonly inUse = new Map<string, string>();
  private readonly derived = new Map<string, Buffer>();

  constructor(
    private readonly store: ConfigStore,
    private readonly deploymentSecret: string,
  ) {
    if (this.records().length === 0) this.save([{ keyId: FIRST_KEY_ID, createdAt: new Date() }]);
  }

  records(): SegmentKeyRecord[] {
    const raw = this.store.getSetting(SETTING);
    if (!raw) return [];
    return (JSON.parse(raw) as Array<{ keyId: string; createdAt: string }>).map((r) => ({ keyId: r.keyId, createdAt: new Date(r.createdAt) }));
  }

  get currentKeyId(): string {
    return this.records().at(-1)!.keyId;
  }

  /** Every key, the current one last: what process servers and master targets receive. */
  entries(): SegmentKeyEntry[] {
    return this.records().map((r) => ({ keyId: r.keyId, key: this.derive(r.keyId) }));
  }

  /** The key of a segment header's key id; undefined for an id this deployment never made. */
  readonly lookup = (keyId: string): Buffer | undefined =>
    this.records().some((r) => r.keyId === keyId) ? this.derive(keyId) : undefined;

  /** Adds a new current key id (k<n+1>) and returns it with the one it replaces. */
  rotate(): { key: SegmentKeyRecord; previousKeyId: string } {
    const records = this.records();
    const previousKeyId = records.at(-1)!.keyId;
    const highest = Math.max(0, ...records.map((r) => Number(/^k(\d+)$/.exec(r.keyId)?.[1] ?? 0)));
    const key = { keyId: `k${highest + 1}`, createdAt: new Date() };
    this.save([...records, key]);
    return { key, previousKeyId };
  }

  noteInUse(componentId: string, keyId: string): void {
    if (keyId) this.inUse.set(componentId, keyId);
  }

  /** Component ids whose last heartbeat named keyId. */
  usedBy(keyId: string): string[] {
    return [...this.inUse].filter(([, k]) => k === keyId).map(([c]) => c);
  }

  private derive(keyId: string): Buffer {
    let key = this.derived.get(keyId);
    if (!key) {
      key = deriveSegmentKey(this.deploymentSecret, keyId);
      this.derived.set(keyId, key);
    }
    return key;
  }

  private save(records: SegmentKeyRecord[]): void {
    this.store.setSetting(SETTING, JSON.stringify(records.map((r) => ({ keyId: r.keyId, createdAt: r.createdAt.toISOString() }))));
  }
}
