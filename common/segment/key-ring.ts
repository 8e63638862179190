/** One segment key: its id is written in every segment header it encrypts. */
export interface SegmentKeyEntry {
  keyId: string;
  key: Buffer;
}

/**
 * The segment keys a process server holds: the current one, which encrypts new segments, and
 * the older ones, which still decrypt segments written before a rotation. The configuration
 * server replaces the ring at registration and with every heartbeat answer.
 */
export class SegmentKeyRing {
  private keys = new Map<string, Buffer>();
  private currentId = "";

  /** Replaces the ring; a malformed update (no usable current key) is refused and changes nothing. */
  update(currentKeyId: string, keys: readonly SegmentKeyEntry[]): void {
    const next = new Map<string, Buffer>();
    for (const k of keys) {
      if (!k.keyId || k.key.length !== 32) throw new RangeError(`segment key "${k.keyId}" must have an id and 32 bytes`);
      next.set(k.keyId, Buffer.from(k.key));
    }
    if (!next.has(currentKeyId)) throw new RangeError(`the current segment key "${currentKeyId}" is not among the keys sent`);
    // Keys are never dropped here: a segment in the cache or in storage may still need one the
    // configuration server stopped sending.
    for (const [id, key] of this.keys) if (!next.has(id)) next.set(id, key);
    this.keys = next;
    this.currentId = currentKeyId;
  }

  /** The key new segments are written with. */
  current(): SegmentKeyEntry {
    const key = this.keys.get(this.currentId);
    if (!key) throw new Error("no segment key yet: the component has not registered");
    return { keyId: this.currentId, key };
  }

  get currentKeyId(): string {
    return this.currentId;
  }

  /** The key of a segment's header key id, if known (decodeSegment's lookup). */
  readonly lookup = (keyId: string): Buffer | undefined => this.keys.get(keyId);

  static of(keyId: string, key: Buffer): SegmentKeyRing {
    const ring = new SegmentKeyRing();
    ring.update(keyId, [{ keyId, key }]);
    return ring;
  }
}
