import { isPromise } from "../../common/async/index.js";
import { NBD as P } from "../../common/nbd/index.js";
import type { Logger } from "../../common/logger.js";
import type { NbdExport } from "./nbd-export.js";
import { MAX_PAYLOAD } from "./option-haggling.js";
import type { Access } from "./overlap-tracker.js";

/** One parsed transmission request. `data` is the WRITE payload (a view of a socket chunk). */
export interface NbdRequest {
  type: number;
  flags: number;
  cookie: Buffer;
  offset: number;
  length: number;
  data?: Buffer;
}

/** What the client hears: an errno (0 = success) and, for a successful read, the bytes. */
export interface Outcome {
  errno: number;
  data?: Buffer;
}

export interface NbdCounters {
  reads: number;
  writes: number;
  bytesWritten: number;
}

const OK: Outcome = { errno: 0 };

/** How a command takes its place among concurrent ones (see OverlapTracker). */
export function accessOf(type: number): Access | undefined {
  switch (type) {
    case P.NBD_CMD_READ:
      return "read";
    case P.NBD_CMD_WRITE:
    case P.NBD_CMD_WRITE_ZEROES:
    case P.NBD_CMD_TRIM:
      return "write";
    case P.NBD_CMD_FLUSH:
      return "flush";
    default:
      return undefined;
  }
}

/**
 * The transmission commands against one export: validation first (a refused request never touches
 * the export), then the export call, its errors mapped to NBD errnos. Synchronous exports answer
 * synchronously, so a file-backed request costs no promise.
 */
export class NbdCommands {
  constructor(
    private readonly e: NbdExport,
    private readonly counters: NbdCounters,
    private readonly log: Logger,
  ) {}

  /** The errno a request gets without running (0: it may run). Decided before a WRITE payload is read. */
  refusal(type: number, flags: number, offset: number, length: number): number {
    const e = this.e;
    const inRange = offset + length <= e.size;
    const allowed = P.NBD_CMD_FLAG_FUA | (type === P.NBD_CMD_WRITE_ZEROES ? P.NBD_CMD_FLAG_NO_HOLE : 0);
    const badFlags = (flags & ~allowed) !== 0;
    switch (type) {
      case P.NBD_CMD_READ:
        return badFlags || !inRange || length > MAX_PAYLOAD ? P.NBD_EINVAL : 0;
      case P.NBD_CMD_WRITE:
        return badFlags ? P.NBD_EINVAL : length > MAX_PAYLOAD ? P.NBD_EOVERFLOW : !inRange ? P.NBD_ENOSPC : this.blocked();
      case P.NBD_CMD_WRITE_ZEROES:
        return badFlags ? P.NBD_EINVAL : !inRange ? P.NBD_ENOSPC : this.blocked();
      case P.NBD_CMD_TRIM:
        return badFlags || !inRange ? P.NBD_EINVAL : this.blocked();
      case P.NBD_CMD_FLUSH:
        return badFlags ? P.NBD_EINVAL : 0;
      default:
        // Unknown commands (CACHE, BLOCK_STATUS, ...) were not advertised; only WRITE carries a payload.
        return P.NBD_EINVAL;
    }
  }

  /** Runs a request that passed `refusal`. Never rejects. */
  run(r: NbdRequest): Outcome | Promise<Outcome> {
    const e = this.e;
    const fua = (r.flags & P.NBD_CMD_FLAG_FUA) !== 0;
    const counters = this.counters;
    try {
      switch (r.type) {
        case P.NBD_CMD_READ: {
          const data = e.read(r.offset, r.length);
          return isPromise<Buffer>(data) ? data.then((d) => this.readDone(d, r.length), (err) => this.failed(err)) : this.readDone(data, r.length);
        }
        case P.NBD_CMD_WRITE:
        case P.NBD_CMD_WRITE_ZEROES: {
          const done = r.type === P.NBD_CMD_WRITE ? e.write(r.offset, r.data!, fua) : e.writeZeroes(r.offset, r.length, fua);
          const counted = () => {
            counters.writes++;
            counters.bytesWritten += r.length;
            return OK;
          };
          return isPromise(done) ? done.then(counted, (err) => this.failed(err)) : counted();
        }
        case P.NBD_CMD_TRIM: {
          const done = e.trim(r.offset, r.length);
          if (isPromise(done)) return done.then(() => (fua ? this.flush() : OK)).catch((err) => this.failed(err));
          return fua ? this.flush() : OK;
        }
        case P.NBD_CMD_FLUSH:
          return this.flush();
        default:
          return { errno: P.NBD_EINVAL };
      }
    } catch (err) {
      return this.failed(err);
    }
  }

  private flush(): Outcome | Promise<Outcome> {
    try {
      const done = this.e.flush();
      return isPromise(done) ? done.then(() => OK, (err) => this.failed(err)) : OK;
    } catch (err) {
      return this.failed(err);
    }
  }

  private readDone(data: Buffer, length: number): Outcome {
    if (data.length !== length) {
      this.log.error("export returned a short read", { export: this.e.name, got: data.length, wanted: length });
      return { errno: P.NBD_EIO };
    }
    this.counters.reads++;
    return { errno: 0, data };
  }

  private blocked(): number {
    const reason = this.e.writeBlockedReason?.();
    if (reason === undefined) return 0;
    this.log.debug("write refused", { export: this.e.name, reason });
    return P.NBD_EPERM;
  }

  private failed(err: unknown): Outcome {
    const e = err as { nbdErrno?: number; code?: string; message?: string };
    const errno = typeof e?.nbdErrno === "number" ? e.nbdErrno : (P.nbdErrnoFromCode(e?.code) ?? P.NBD_EIO);
    this.log.warn("export operation failed", { export: this.e.name, error: e?.message ?? String(err), errno: P.nbdErrnoName(errno) });
    return { errno };
  }
}
