import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, createReadStream, ftruncateSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { sleep } from "../../common/async/index.js";
import { replicaBlobName } from "../../common/storage-layout/index.js";
import { RecoveryEngine } from "../../common/recovery/index.js";
import { createBlobStore } from "../../common/storage/index.js";
import { fixedVhdFooter, rawSizeOfBlob, VHD_FOOTER_BYTES, vhdVirtualSize } from "../../common/vhd/index.js";
import { type Machine, ReplicationDirection, ReplicationState } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { formatBytes, ProgressLine } from "../output.js";

const CHUNK = 4 * 1024 * 1024;

/**
 * Writes a replica disk (latest processed point), a recovery point's snapshot or a failed-over disk
 * to a raw, VHD or qcow2 image: sparse where the page blob has no pages, byte-exact elsewhere.
 * Returns the file's SHA-256.
 */
export interface ExportSource {
  /** The failed-over ("Azure") disk, or the test failover's with test. */
  failedOver?: boolean;
  test?: boolean;
  /** A recovery point id, or latest-processed / latest-app-consistent. */
  point?: string;
  /** How long the replica may take to process what was received (default 10 minutes). */
  waitMs?: number;
}

/** States in which the replica keeps following the source, so "everything received" moves. */
const FOLLOWING = new Set([
  ReplicationState.REPLICATION_STATE_PROTECTED,
  ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
  ReplicationState.REPLICATION_STATE_RESYNCING,
]);

function follows(m: Machine): boolean {
  return FOLLOWING.has(m.state) && m.direction !== ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES;
}

/**
 * Waits until the replica has processed every write the source had made when export was asked
 * for (what `latest` failover replays first), so the export is the source as of that write.
 */
async function waitProcessed(client: AdminClient, machine: Machine, waitMs: number, progress: boolean): Promise<number> {
  const s = machine.stats;
  const target = Math.max(s?.capturedSequence ?? 0, s?.receivedSequence ?? 0);
  const line = new ProgressLine(progress);
  const until = Date.now() + waitMs;
  try {
    for (let m = machine; ; ) {
      const st = m.stats;
      const processed = st?.processedSequence ?? 0;
      if (processed >= target) return processed;
      if (Date.now() > until) {
        throw new Error(
          `the replica of ${m.name} processed up to sequence ${processed} of ${target} within ${waitMs / 1000} s ` +
            `(${formatBytes(st?.unprocessedBytes ?? 0)} unprocessed, RPO ${(st?.rpoSeconds ?? 0).toFixed(1)} s); ` +
            "export a recovery point with --point latest-processed, or retry later",
        );
      }
      line.update(
        `waiting for the replica to process sequence ${target}: at ${processed}, ${formatBytes(st?.unprocessedBytes ?? 0)} uploaded and not yet applied, ` +
          `processed lag ${(st?.processedLagSeconds ?? 0).toFixed(1)} s`,
      );
      await sleep(250);
      const { machine: next } = await client.call(client.client.getMachine, { machine: m.machineId });
      if (!next) throw new Error(`machine ${m.name} disappeared`);
      m = next;
    }
  } finally {
    line.done();
  }
}

export const EXPORT_FORMATS = ["raw", "vhd", "qcow2"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export async function exportDisk(
  dir: string,
  machineRef: string,
  diskIndex: number,
  to: string,
  progress: boolean,
  source: ExportSource = {},
  format: ExportFormat = "raw",
) {
  if (!EXPORT_FORMATS.includes(format)) throw new Error(`unknown format "${format}": use ${EXPORT_FORMATS.join(", ")}`);
  const client = AdminClient.forDir(dir);
  try {
    const { machine } = await client.call(client.client.getMachine, { machine: machineRef });
    if (!machine) throw new Error(`no machine ${machineRef}`);
    const disk = machine.disks.find((d) => d.index === diskIndex);
    if (!disk) throw new Error(`machine ${machine.name} has no disk ${diskIndex} (it has ${machine.disks.map((d) => d.index).join(", ")})`);
    const s = client.manifest.storage;
    const store = createBlobStore({ kind: s.kind, connectionString: s.connectionString, directory: s.directory, container: "srlab" });
    await store.init();
    try {
      let blob = replicaBlobName(machine.machineId, diskIndex);
      let snapshot: string | undefined;
      /** The replica's sequence when it follows the source (checked again after the copy). */
      let sequence: number | undefined;
      /** Reading the live replica of a machine that still writes: nothing pins it while we copy. */
      let live = false;
      if (source.failedOver || source.test) {
        const info = source.test ? machine.testFailover : machine.failover;
        const d = info?.disks.find((x) => x.index === diskIndex);
        if (!d) throw new Error(`machine ${machine.name} has no ${source.test ? "test " : ""}failed-over disk ${diskIndex}`);
        blob = d.blobName;
      } else if (source.point) {
        const points = await new RecoveryEngine({ store, segmentKeys: () => undefined }).listPoints(machine.machineId);
        const wanted = source.point;
        const chosen =
          wanted === "latest-processed"
            ? points.at(-1)
            : wanted === "latest-app-consistent"
              ? points.filter((p) => p.type === "app-consistent").at(-1)
              : points.find((p) => p.recoveryPointId === wanted);
        if (!chosen) throw new Error(`machine ${machine.name} has no recovery point ${wanted} (see srlab points ${machine.name})`);
        snapshot = chosen.snapshots[String(diskIndex)];
        if (!snapshot) throw new Error(`recovery point ${chosen.recoveryPointId} does not cover disk ${diskIndex} (it covers ${chosen.disksCovered} of ${chosen.disksTotal} disks)`);
        sequence = chosen.sequence;
      } else if (follows(machine)) {
        live = true;
        sequence = await waitProcessed(client, machine, source.waitMs ?? 600_000, progress);
      } else {
        sequence = machine.stats?.processedSequence ?? 0;
      }
      const found = await rawSizeOfBlob(store, blob, snapshot);
      if (found === undefined) throw new Error(`machine ${machine.name} has no replica of disk ${diskIndex} yet: protect it first (srlab protect ${machine.name})`);
      const ranges = await store.getPageRanges(blob, snapshot);
      const read = (off: number, len: number) => store.readPages(blob, off, len, snapshot);
      const image = await writeFormat(to, format, found, ranges, read, progress);
      if (live) {
        // The live replica has no snapshot to pin it: if it moved while being read, the file mixes sequences.
        const { machine: after } = await client.call(client.client.getMachine, { machine: machine.machineId });
        const now = after?.stats?.processedSequence ?? 0;
        if (now !== sequence) {
          rmSync(to, { force: true });
          throw new Error(
            `the replica of ${machine.name} moved from sequence ${sequence} to ${now} while it was exported (the machine is still writing); ` +
              "export a recovery point instead (--point latest-processed), or stop the writes",
          );
        }
      }
      return { ...image, sequence };
    } finally {
      await store.close();
    }
  } finally {
    client.close();
  }
}

type Ranges = Array<{ offset: number; length: number }>;
type Reader = (offset: number, length: number) => Promise<Buffer>;

/**
 * The disk in the format asked for. raw: the disk's bytes. vhd: a fixed VHD as Azure imports it
 * (a failed-over disk already is one and is copied as it is). qcow2: the raw image converted by
 * qemu-img. `sha256` is always the hash of the file written.
 */
async function writeFormat(
  to: string,
  format: ExportFormat,
  found: { blobBytes: number; diskBytes: number; vhd?: unknown },
  ranges: Ranges,
  read: Reader,
  progress: boolean,
) {
  const diskRanges = clipRanges(ranges, found.diskBytes);
  if (format === "raw") return { format, diskBytes: found.diskBytes, ...(await writeImage(to, found.diskBytes, diskRanges, read, progress)) };
  if (format === "vhd") {
    if (found.vhd) return { format, diskBytes: found.diskBytes, ...(await writeImage(to, found.blobBytes, ranges, read, progress)) };
    const virtual = vhdVirtualSize(found.diskBytes);
    const footer = fixedVhdFooter({ sizeBytes: virtual });
    return { format, diskBytes: virtual, ...(await writeImage(to, virtual + VHD_FOOTER_BYTES, diskRanges, read, progress, footer)) };
  }
  // qcow2: qemu-img owns the format; it converts a sparse raw image written next to the target.
  const tmp = `${to}.raw-${process.pid}`;
  try {
    await writeImage(tmp, found.diskBytes, diskRanges, read, progress);
    try {
      execFileSync("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", tmp, to], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === "ENOENT") throw new Error("qcow2 export needs qemu-img (apt-get install qemu-utils); raw and vhd need nothing");
      throw new Error(`qemu-img convert to qcow2 failed: ${e.stderr?.toString().trim() || e.message}`);
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  return { format, diskBytes: found.diskBytes, path: to, sizeBytes: statSync(to).size, sha256: await hashFile(to), bytesCopied: diskRanges.reduce((n, r) => n + r.length, 0) };
}

function clipRanges(ranges: Ranges, size: number): Ranges {
  return ranges.filter((r) => r.offset < size).map((r) => ({ offset: r.offset, length: Math.min(r.length, size - r.offset) }));
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Copies the written ranges into a sparse file and hashes the whole image, holes included;
 * `tail` (a VHD footer) ends the file.
 */
export async function writeImage(
  to: string,
  size: number,
  ranges: Ranges,
  read: Reader,
  showProgress: boolean,
  tail?: Buffer,
): Promise<{ path: string; sizeBytes: number; sha256: string; bytesCopied: number }> {
  const fd = openSync(to, "w");
  const hash = createHash("sha256");
  const line = new ProgressLine(showProgress);
  const total = ranges.reduce((n, r) => n + r.length, 0);
  let copied = 0;
  let hashed = 0;
  const zeros = Buffer.alloc(CHUNK);
  const hashZeros = (upTo: number) => {
    while (hashed < upTo) {
      const n = Math.min(CHUNK, upTo - hashed);
      hash.update(n === CHUNK ? zeros : zeros.subarray(0, n));
      hashed += n;
    }
  };
  try {
    ftruncateSync(fd, size);
    for (const r of ranges) {
      for (let off = r.offset; off < r.offset + r.length; off += CHUNK) {
        const len = Math.min(CHUNK, r.offset + r.length - off);
        const data = await read(off, len);
        hashZeros(off);
        hash.update(data);
        hashed = off + len;
        writeSync(fd, data, 0, data.length, off);
        copied += len;
        line.update(`exporting: ${total ? ((copied / total) * 100).toFixed(0) : 100}% (${formatBytes(copied)} of ${formatBytes(total)} written data)`);
      }
    }
    if (tail) {
      hashZeros(size - tail.length);
      hash.update(tail);
      hashed = size;
      writeSync(fd, tail, 0, tail.length, size - tail.length);
    }
    hashZeros(size);
  } finally {
    closeSync(fd);
    line.done();
  }
  return { path: to, sizeBytes: size, sha256: hash.digest("hex"), bytesCopied: copied };
}
