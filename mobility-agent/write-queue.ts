import { WriteKind, type WriteRecord } from "../proto/index.js";
import { isMarker } from "../common/replica/index.js";

/**
 * Captured records not yet acknowledged, in sequence order. Records before `sentIndex` went out on
 * the current stream; a reconnect rewinds so everything unacknowledged is resent.
 */
export class WriteQueue {
  private items: WriteRecord[] = [];
  private head = 0;
  private sentIndex = 0;
  /** Payload bytes held in memory (what the memory budget limits). */
  memoryBytes = 0;
  /** Bytes of disk the queued records change (for the 50%-of-disk rule). */
  changeBytes = 0;
  /** Payload bytes sent on the current stream and not yet acknowledged. */
  inFlightBytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get first(): WriteRecord | undefined {
    return this.items[this.head];
  }

  get last(): WriteRecord | undefined {
    return this.length > 0 ? this.items[this.items.length - 1] : undefined;
  }

  /** The first record not yet sent on the current stream. */
  get firstUnsent(): WriteRecord | undefined {
    return this.items[Math.max(this.sentIndex, this.head)];
  }

  get hasUnsent(): boolean {
    return Math.max(this.sentIndex, this.head) < this.items.length;
  }

  push(record: WriteRecord): void {
    this.items.push(record);
    this.memoryBytes += record.data.length;
    this.changeBytes += changeOf(record);
  }

  /** Unsent records, at least one, up to `maxBytes` of payload; undefined when nothing is unsent. */
  takeBatch(maxBytes: number): WriteRecord[] | undefined {
    this.sentIndex = Math.max(this.sentIndex, this.head);
    if (this.sentIndex >= this.items.length) return undefined;
    const batch: WriteRecord[] = [];
    let bytes = 0;
    while (this.sentIndex < this.items.length) {
      const r = this.items[this.sentIndex]!;
      if (batch.length > 0 && bytes + sendBytes(r) > maxBytes) break;
      batch.push(r);
      bytes += sendBytes(r);
      this.sentIndex++;
    }
    this.inFlightBytes += bytes;
    return batch;
  }

  /** Forgets every record up to and including `sequence`; returns them. */
  ackThrough(sequence: number): WriteRecord[] {
    const acked: WriteRecord[] = [];
    while (this.head < this.items.length && this.items[this.head]!.sequence <= sequence) {
      const r = this.items[this.head]!;
      if (this.head < this.sentIndex) this.inFlightBytes -= sendBytes(r);
      this.forget(r);
      this.items[this.head] = undefined as unknown as WriteRecord;
      this.head++;
      acked.push(r);
    }
    this.compact();
    return acked;
  }

  /** A new stream: everything still queued is unsent again. */
  rewind(): void {
    this.sentIndex = this.head;
    this.inFlightBytes = 0;
  }

  /** Empties the queue (bitmap mode, resync); returns the records and how many had been sent. */
  drain(): { records: WriteRecord[]; sent: number } {
    const records = this.items.slice(this.head);
    const sent = Math.max(0, Math.min(this.sentIndex, this.items.length) - this.head);
    this.items = [];
    this.head = 0;
    this.sentIndex = 0;
    this.memoryBytes = 0;
    this.changeBytes = 0;
    this.inFlightBytes = 0;
    return { records, sent };
  }

  /** Records not yet sent on the current stream, in order (a live view: do not push meanwhile). */
  *unsent(): Generator<WriteRecord> {
    for (let i = Math.max(this.sentIndex, this.head); i < this.items.length; i++) yield this.items[i]!;
  }

  /** A queued record's payload was dropped (metadata mode) or read back in: adjust the memory figure. */
  payloadChanged(before: number, after: number): void {
    this.memoryBytes += after - before;
  }

  /** Renumbers every queued record consecutively from `first`; returns the number after the last. */
  renumberFrom(first: number): number {
    let n = first;
    for (let i = this.head; i < this.items.length; i++) this.items[i]!.sequence = n++;
    return n;
  }

  private forget(r: WriteRecord): void {
    this.memoryBytes -= r.data.length;
    this.changeBytes -= changeOf(r);
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.sentIndex = Math.max(0, this.sentIndex - this.head);
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.sentIndex = Math.max(0, this.sentIndex - this.head);
      this.head = 0;
    }
  }
}

/** Payload bytes a record puts on the stream: a metadata-mode DATA record is read just before it goes. */
function sendBytes(r: WriteRecord): number {
  return r.kind === WriteKind.WRITE_KIND_DATA ? r.length : 0;
}

function changeOf(r: WriteRecord): number {
  return isMarker(r) ? 0 : r.length;
}
