// One class on purpose (about 520 lines): recovery, group commit, the in-memory tail, reads and
// release share the file list, the durable position and the mutex that orders them. The format of a
// single log file (name, sparse index, scan, lookup) lives in log-file.ts.
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "winston";
import type { WriteRecord } from "../../proto/index.js";
import { decodeWriteRecordView } from "../../common/wire/index.js";
import { CacheUnavailableError, SequenceGapError } from "./errors.js";
import { FRAME_HEADER, type FramedRecord, FrameReader, frameRecords, parseFrameHeader } from "./frame.js";
import { LOG_RE, type LogFile, locateSequence, logName, scanLogFile, wantsIndexEntry } from "./log-file.js";
import { fsyncDir, writeFileAtomic } from "../../common/fs/index.js";
import { Mutex } from "../../common/async/index.js";

const STATE_FILE = "state.json";
/**
 * Durable frames kept in memory after their write, newest kept, until released: the uploader
 * reads what just arrived from here (the appended records themselves) instead of reading the file
 * back, checking CRCs again and decoding every payload. A backlog beyond this is read from the file.
 */
export const DEFAULT_TAIL_BYTES = 32 * 1024 * 1024;

/** Read beyond a request's payload bytes, for the frame headers in between. */
const READ_SLACK_BYTES = 256 * 1024;

/** A record queued for the log and then kept in the tail; read() hands out `record` itself. */
type Queued = FramedRecord;

const frameLength = (q: Queued) => FRAME_HEADER + q.payload.length;

interface Waiter {
  sequence: number;
  resolve: (durable: number) => void;
  reject: (err: Error) => void;
}

export interface MachineLogCounters {
  fsyncs: number;
  appendedRecords: number;
  appendedBytes: number;
}

/**
 * The cache of one machine: append-only, checksummed log files named by their first sequence,
 * plus state.json holding the released (uploaded) position. Appends that arrive while a write is
 * in flight are group-committed: one writev + one fdatasync for all of them.
 */
export class MachineLog {
  private files: LogFile[] = [];
  private active: { file: LogFile; fh: FileHandle; dirSyncPending: boolean } | undefined;
  private released = 0;
  private lastDurable = 0;
  private lastAccepted = 0;
  private oldestPending: number | undefined;
  private queue: Queued[] = [];
  private waiters: Waiter[] = [];
  private flushing = false;
  private flushScheduled = false;
  private drained: (() => void)[] = [];
  private broken: Error | undefined;
  private dirExists = false;
  private readonly mutex = new Mutex();
  /** Durable, unreleased frames, contiguous and ending at lastDurable; live from tailHead on. */
  private tail: Queued[] = [];
  private tailHead = 0;
  private tailBytes = 0;
  bytes = 0;

  constructor(
    readonly machineId: string,
    private readonly dir: string,
    private readonly parentDir: string,
    private readonly fileSizeBytes: number,
    private readonly counters: MachineLogCounters,
    private readonly log: Logger,
    private readonly tailLimit = DEFAULT_TAIL_BYTES,
  ) {}

  get lastSequence(): number {
    return this.lastDurable;
  }

  get releasedSequence(): number {
    return this.released;
  }

  get oldestPendingCapturedAtMs(): number | undefined {
    return this.oldestPending;
  }

  // ---- recovery ----

  /** Loads an existing machine directory: verifies every frame, truncates a torn tail. */
  async recover(): Promise<void> {
    this.dirExists = true;
    let releasedKnown = false;
    try {
      const state = JSON.parse(await readFile(join(this.dir, STATE_FILE), "utf8")) as { released?: unknown };
      if (typeof state.released === "number" && Number.isSafeInteger(state.released) && state.released >= 0) {
        this.released = state.released;
        releasedKnown = true;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        this.log.error("cache state file unreadable; treating all cached records as pending", { machineId: this.machineId, error: String(err) });
      }
    }
    const names = (await readdir(this.dir)).filter((n) => LOG_RE.test(n)).sort();
    await rm(join(this.dir, `${STATE_FILE}.tmp`), { force: true });
    const firsts = names.map((n) => Number(LOG_RE.exec(n)![1]));
    if (!releasedKnown && firsts.length) this.released = firsts[0]! - 1;

    let expected: number | undefined;
    for (let i = 0; i < names.length; i++) {
      const path = join(this.dir, names[i]!);
      const first = firsts[i]!;
      const nextFirst = firsts[i + 1];
      // Wholly released files (their successor starts at or below released + 1) need no scan.
      if (nextFirst !== undefined && nextFirst - 1 <= this.released) {
        await unlink(path);
        continue;
      }
      if (expected !== undefined && first !== expected) {
        // Only disk corruption gets here (the writer never leaves a hole); keep the evidence.
        this.log.error("cache log files are not contiguous; moving the rest aside", {
          machineId: this.machineId,
          expected,
          file: names[i],
        });
        for (const n of names.slice(i)) await rename(join(this.dir, n), join(this.dir, `${n}.corrupt`));
        break;
      }
      const file = await scanLogFile(path, first, (torn) =>
        this.log.warn("cache log has a torn tail; truncating", { machineId: this.machineId, ...torn }),
      );
      expected = file.last + 1;
      if (file.last <= this.released) {
        await unlink(path);
        continue;
      }
      this.files.push(file);
      this.bytes += file.size;
    }
    const firstFile = this.files[0];
    if (firstFile && firstFile.first > this.released + 1) {
      this.log.error("cache is missing records before its oldest file", {
        machineId: this.machineId,
        released: this.released,
        oldest: firstFile.first,
      });
      this.released = firstFile.first - 1;
    }
    this.lastDurable = Math.max(this.released, expected !== undefined ? expected - 1 : 0);
    this.lastAccepted = this.lastDurable;
    await this.refreshOldestPending();
  }

  // ---- append / group commit ----

  append(records: WriteRecord[]): Promise<number> {
    if (this.broken) return Promise.reject(this.broken);
    let accepted = this.lastAccepted;
    let waitFor = 0;
    const fresh: WriteRecord[] = [];
    // Validate the whole batch first so a gap rejects it without side effects.
    for (const r of records) {
      if (!Number.isSafeInteger(r.sequence) || r.sequence <= 0) {
        return Promise.reject(new RangeError(`machine "${this.machineId}": invalid sequence ${r.sequence}`));
      }
      if (r.sequence <= accepted) {
        waitFor = Math.max(waitFor, r.sequence);
        continue;
      }
      if (r.sequence !== accepted + 1) return Promise.reject(new SequenceGapError(this.machineId, accepted + 1, r.sequence));
      accepted = r.sequence;
      waitFor = r.sequence;
      fresh.push(r);
    }
    if (fresh.length) {
      if (this.lastAccepted === this.released) this.oldestPending = fresh[0]!.capturedAtMs;
      this.lastAccepted = accepted;
      for (const framed of frameRecords(fresh)) this.queue.push(framed);
      this.scheduleFlush();
    }
    if (waitFor <= this.lastDurable) return Promise.resolve(this.lastDurable);
    return new Promise((resolve, reject) => this.waiters.push({ sequence: waitFor, resolve, reject }));
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate lets every append issued in this tick join the same write and fsync.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    while (this.queue.length) {
      const batch = this.queue;
      this.queue = [];
      await this.mutex.run(() => this.writeBatch(batch));
    }
    this.flushing = false;
    for (const d of this.drained.splice(0)) d();
  }

  private async writeBatch(batch: Queued[]): Promise<void> {
    try {
      if (this.broken) throw this.broken;
      const active = await this.ensureActive();
      const bufs = batch.flatMap((q) => [q.header, q.payload]);
      const total = bufs.reduce((a, b) => a + b.length, 0);
      let written = 0;
      while (written < total) {
        // Partial writev is legal; resume at the first unwritten byte.
        let skip = written;
        const rest: Buffer[] = [];
        for (const b of bufs) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        const { bytesWritten } = await active.fh.writev(rest, active.file.size + written);
        if (bytesWritten === 0) throw new Error("writev wrote nothing");
        written += bytesWritten;
      }
      await active.fh.datasync();
      this.counters.fsyncs++;
      if (active.dirSyncPending) {
        await fsyncDir(this.dir);
        active.dirSyncPending = false;
      }
      // Durable: publish.
      const file = active.file;
      let offset = file.size;
      for (const q of batch) {
        if (wantsIndexEntry(file, q.record.sequence, offset)) file.index.push({ sequence: q.record.sequence, offset });
        offset += frameLength(q);
      }
      file.size = offset;
      file.last = batch[batch.length - 1]!.record.sequence;
      this.bytes += total;
      this.lastDurable = file.last;
      this.keepInTail(batch);
      this.counters.appendedRecords += batch.length;
      this.counters.appendedBytes += total;
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.sequence <= this.lastDurable) w.resolve(this.lastDurable);
        else still.push(w);
      }
      this.waiters = still;
    } catch (err) {
      await this.rollback(err as Error);
    }
  }

  /** After a failed write or fsync: drop everything not durable and cut the file back. */
  private async rollback(err: Error): Promise<void> {
    this.log.error("cache append failed; rejecting unacknowledged records", { machineId: this.machineId, error: err.message });
    if (this.active) {
      try {
        await this.active.fh.truncate(this.active.file.size);
        await this.active.fh.datasync();
      } catch (e) {
        // The file may now hold bytes we never acknowledged; stop until a restart re-scans it.
        this.broken = new CacheUnavailableError(`machine "${this.machineId}": cache log unusable after I/O error (${(e as Error).message}); restart the process server`);
      }
    }
    this.queue = [];
    this.lastAccepted = this.lastDurable;
    if (this.lastAccepted === this.released) this.oldestPending = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (w.sequence <= this.lastDurable) w.resolve(this.lastDurable);
      else w.reject(err);
    }
  }

  private async ensureActive(): Promise<NonNullable<MachineLog["active"]>> {
    if (this.active && this.active.file.size >= this.fileSizeBytes) {
      await this.active.fh.close();
      this.active = undefined;
    }
    if (this.active) return this.active;
    if (!this.dirExists) {
      await mkdir(this.dir, { recursive: true });
      await fsyncDir(this.parentDir);
      this.dirExists = true;
    }
    const last = this.files[this.files.length - 1];
    if (last && last.size < this.fileSizeBytes) {
      this.active = { file: last, fh: await open(last.path, "r+"), dirSyncPending: false };
      return this.active;
    }
    const first = this.lastDurable + 1;
    const file: LogFile = { first, last: first - 1, path: join(this.dir, logName(first)), size: 0, index: [] };
    // "w": a file of this name could only hold records we already recovered as invalid.
    const fh = await open(file.path, "w");
    this.files.push(file);
    this.active = { file, fh, dirSyncPending: true };
    return this.active;
  }

  // ---- in-memory tail ----

  private keepInTail(batch: Queued[]): void {
    const newest = this.tail[this.tail.length - 1];
    // Contiguous or nothing: after a rollback or rebase the tail starts again.
    if (newest && newest.record.sequence + 1 !== batch[0]!.record.sequence) this.clearTail();
    for (const q of batch) {
      this.tail.push(q);
      this.tailBytes += frameLength(q);
    }
    while (this.tailBytes > this.tailLimit && this.tailHead < this.tail.length) this.dropTailHead();
    this.compactTail();
  }

  private dropTailHead(): void {
    this.tailBytes -= frameLength(this.tail[this.tailHead]!);
    this.tail[this.tailHead++] = undefined as unknown as Queued;
  }

  private compactTail(): void {
    if (this.tailHead === this.tail.length) this.clearTail();
    else if (this.tailHead > 1024 && this.tailHead * 2 > this.tail.length) {
      this.tail = this.tail.slice(this.tailHead);
      this.tailHead = 0;
    }
  }

  private clearTail(): void {
    this.tail = [];
    this.tailHead = 0;
    this.tailBytes = 0;
  }

  private tailEntry(sequence: number): Queued | undefined {
    const first = this.tail[this.tailHead];
    if (!first || sequence < first.record.sequence) return undefined;
    return this.tail[this.tailHead + (sequence - first.record.sequence)];
  }

  // ---- read / release ----

  /** Durable records from fromSequence on, up to about maxBytes of payload (at least one record). */
  async read(fromSequence: number, maxBytes: number): Promise<WriteRecord[]> {
    const out: WriteRecord[] = [];
    if (fromSequence > this.lastDurable) return out;
    const oldest = this.files[0]?.first ?? this.lastDurable + 1;
    if (fromSequence < oldest) {
      throw new RangeError(`machine "${this.machineId}": sequence ${fromSequence} is no longer cached (oldest is ${oldest})`);
    }
    const limit = this.lastDurable;
    if (this.tailEntry(fromSequence)) {
      // The appended records themselves: nothing changes a record once appended.
      let bytes = 0;
      for (let want = fromSequence; want <= limit && bytes < maxBytes; want++) {
        const q = this.tailEntry(want)!;
        out.push(q.record);
        bytes += q.payload.length;
      }
      return out;
    }
    let bytes = 0;
    let want = fromSequence;
    for (const file of [...this.files]) {
      if (file.last < want) continue;
      const fh = await open(file.path, "r");
      try {
        const start = await locateSequence(fh, file, want, this.machineId);
        // One read for the whole request (plus room for frame headers): the records stay views of
        // the reader's chunks, so smaller chunks would only copy each frame cut at a boundary.
        const reader = new FrameReader(fh, start, file.size, maxBytes - bytes + READ_SLACK_BYTES);
        for (;;) {
          const f = await reader.next();
          if (f === "end") break;
          if (f === "torn" || f.sequence !== want) {
            throw new Error(`machine "${this.machineId}": cache file ${file.path} is corrupt at offset ${reader.offset}`);
          }
          // A view: the reader never writes into a chunk it has handed out.
          out.push(decodeWriteRecordView(f.frame.subarray(FRAME_HEADER)));
          bytes += f.payloadLength;
          want++;
          if (want > limit || bytes >= maxBytes) return out;
        }
      } finally {
        await fh.close();
      }
    }
    return out;
  }

  /** Records through throughSequence are safely in storage: persist that, then free whole files. */
  async release(throughSequence: number): Promise<void> {
    if (throughSequence > this.lastDurable) {
      throw new RangeError(`machine "${this.machineId}": cannot release through ${throughSequence}, only ${this.lastDurable} is durable`);
    }
    if (throughSequence <= this.released) return;
    await this.mutex.run(async () => {
      if (throughSequence <= this.released) return;
      await this.persistReleased(throughSequence);
      this.released = throughSequence;
      while (this.tailHead < this.tail.length && this.tail[this.tailHead]!.record.sequence <= throughSequence) this.dropTailHead();
      this.compactTail();
      await this.dropReleasedFiles();
      await this.refreshOldestPending();
    });
  }

  /** For a machine whose stream does not start at 1 (moved PS, re-enabled protection). */
  async setBase(lastSequence: number): Promise<void> {
    if (!Number.isSafeInteger(lastSequence) || lastSequence < 0) throw new RangeError(`invalid base sequence ${lastSequence}`);
    await this.mutex.run(async () => {
      if (this.lastAccepted !== this.released) {
        throw new Error(`machine "${this.machineId}": cannot rebase while records ${this.released + 1}..${this.lastAccepted} are pending`);
      }
      await this.persistReleased(lastSequence);
      this.released = this.lastDurable = this.lastAccepted = lastSequence;
      this.clearTail();
      await this.dropAllFiles();
      this.oldestPending = undefined;
    });
  }

  private async persistReleased(released: number): Promise<void> {
    if (!this.dirExists) {
      await mkdir(this.dir, { recursive: true });
      await fsyncDir(this.parentDir);
      this.dirExists = true;
    }
    const path = join(this.dir, STATE_FILE);
    // A fixed staging name, so opening the log removes what a crash mid-write left behind.
    await writeFileAtomic(path, JSON.stringify({ version: 1, machineId: this.machineId, released }), { tmpPath: `${path}.tmp` });
  }

  private async dropReleasedFiles(): Promise<void> {
    const keep: LogFile[] = [];
    let dropped = false;
    for (const f of this.files) {
      // The active file goes too once fully released (we hold the mutex, so no write is in
      // flight); the next flush starts a new file at lastDurable + 1.
      if (f.last <= this.released) {
        await this.removeFile(f);
        dropped = true;
      } else keep.push(f);
    }
    this.files = keep;
    if (dropped) await fsyncDir(this.dir);
  }

  private async dropAllFiles(): Promise<void> {
    for (const f of this.files) await this.removeFile(f);
    this.files = [];
    await fsyncDir(this.dir);
  }

  private async removeFile(f: LogFile): Promise<void> {
    if (this.active?.file === f) {
      await this.active.fh.close();
      this.active = undefined;
    }
    await unlink(f.path);
    this.bytes -= f.size;
  }

  private async refreshOldestPending(): Promise<void> {
    const next = this.released + 1;
    if (next > this.lastAccepted) {
      this.oldestPending = undefined;
      return;
    }
    const queued = this.tailEntry(next) ?? this.queue.find((q) => q.record.sequence === next);
    if (queued) {
      this.oldestPending = queued.record.capturedAtMs;
      return;
    }
    const file = this.files.find((f) => f.first <= next && next <= f.last);
    if (!file) return;
    const fh = await open(file.path, "r");
    try {
      const offset = await locateSequence(fh, file, next, this.machineId);
      const h = Buffer.alloc(FRAME_HEADER);
      await fh.read(h, 0, FRAME_HEADER, offset);
      this.oldestPending = parseFrameHeader(h)?.capturedAtMs;
    } finally {
      await fh.close();
    }
  }

  // ---- shutdown ----

  /** Closes the log and deletes its directory: the machine is no longer served here. */
  async destroy(): Promise<void> {
    await this.close();
    await this.mutex.run(async () => {
      await rm(this.dir, { recursive: true, force: true });
      this.clearTail();
      this.files = [];
      this.bytes = 0;
      this.dirExists = false;
      await fsyncDir(this.parentDir);
    });
  }

  async close(): Promise<void> {
    if (this.flushing || this.flushScheduled || this.queue.length) {
      await new Promise<void>((resolve) => this.drained.push(resolve));
    }
    await this.mutex.run(async () => {
      await this.active?.fh.close();
      this.active = undefined;
    });
  }
}
