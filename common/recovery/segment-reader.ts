import { ErrorCode, SrlabError } from "../errors/index.js";
import { decodeSegment, SegmentIntegrityError } from "../segment/index.js";
import { type BlobStore, isStorageNotFound } from "../storage/index.js";
import type { WriteRecord } from "../../proto/index.js";
import type { SegmentRef } from "./segment-catalog.js";

export interface SegmentReaderOptions {
  store: BlobStore;
  segmentKeys: (keyId: string) => Buffer | undefined;
  machineId: string;
  /** Segments downloaded and decoded ahead of the consumer. */
  readAhead?: number;
}

async function readOne(o: SegmentReaderOptions, ref: SegmentRef): Promise<WriteRecord[]> {
  let buf: Buffer;
  try {
    buf = await o.store.getObject(ref.name);
  } catch (err) {
    if (isStorageNotFound(err)) {
      throw new SrlabError(
        ErrorCode.OUT_OF_RANGE,
        `log segment ${ref.name} (sequences ${ref.firstSequence}..${ref.lastSequence}) is no longer in storage (removed by retention meanwhile?); resolve the recovery target again`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    return (await decodeSegment(buf, o.segmentKeys, { machineId: o.machineId, firstSequence: ref.firstSequence })).records;
  } catch (err) {
    if (err instanceof SegmentIntegrityError) {
      throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `log segment ${ref.name} cannot be used: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/**
 * Yields each segment's records in the given order. Downloads and decryption of the next few
 * segments overlap with the consumer's work (replay writes to storage while the next segment is
 * fetched); a consumer that stops early leaves no unhandled rejection behind.
 */
export async function* readSegments(o: SegmentReaderOptions, refs: SegmentRef[]): AsyncGenerator<{ ref: SegmentRef; records: WriteRecord[] }> {
  const ahead = Math.max(1, o.readAhead ?? 2);
  const pending: Promise<WriteRecord[]>[] = [];
  let next = 0;
  const fill = () => {
    while (next < refs.length && pending.length < ahead) {
      const p = readOne(o, refs[next++]!);
      p.catch(() => {}); // handled when awaited; silenced if never awaited
      pending.push(p);
    }
  };
  for (let i = 0; i < refs.length; i++) {
    fill();
    const records = await pending.shift()!;
    fill();
    yield { ref: refs[i]!, records };
  }
}
