import { ErrorCode, retryWithBackoff, SrlabError, toSrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { type Disk, Health, type ReplicateResponse } from "../proto/index.js";
import type { Capture } from "./capture.js";
import type { ProcessServerPort, ReplicateCall } from "./process-server-port.js";
import { RateMeter } from "../common/metrics/index.js";

export interface ReplicationClientOptions {
  capture: Capture;
  machineId: string;
  disks: Disk[];
  /** Opens the connection to a process server address (gRPC in the daemon, in-memory in tests). */
  connect: (address: string) => ProcessServerPort;
  batchBytes: number;
  windowBytes: number;
  /** Failed reconnects after which queued payloads go to the dirty bitmap. */
  bitmapAfterRetries: number;
  timeUnitMs: number;
  logger: Logger;
}

export type ReplicationState = "idle" | "connecting" | "streaming" | "retrying" | "halted";

/**
 * After the queue ran empty, the sender waits this long once before the next batch: writes that
 * trickle in one request at a time (an NBD client at iodepth 1) then share a message and an ack
 * instead of costing one each, for a millisecond of RPO.
 */
const LINGER_MS = 1;

/** A session shorter than this that fails goes through the backoff instead of reconnecting at once. */
const HEALTHY_SESSION_MS = 1_000;

/**
 * The agent's Replicate stream: open → opened{durable} → batches within the window → acks. It
 * reconnects on recoverable failures with ASR's backoff and halts on the others (item health
 * Critical) until a new assignment or a resync restarts it.
 */
export class ReplicationClient {
  state: ReplicationState = "idle";
  haltReason = "";
  lastError = "";
  failedAttempts = 0;
  /** Payload bytes written to the stream, resends included. */
  bytesSent = 0;
  throttled = false;
  cacheHealth: Health = Health.HEALTH_UNSPECIFIED;
  private port?: ProcessServerPort;
  private address = "";
  private run?: { abort: AbortController; done: Promise<void> };
  private resyncOpen = false;
  private readonly ackRate = new RateMeter();

  constructor(private readonly options: ReplicationClientOptions) {}

  get processServer(): ProcessServerPort | undefined {
    return this.port;
  }

  get processServerAddress(): string {
    return this.address;
  }

  /** Acknowledged payload bytes per second over the last seconds. */
  throughput(): number {
    this.ackRate.recordTotal(this.options.capture.bytesAcked);
    return this.ackRate.perSecond();
  }

  /** Points replication at a process server (a new assignment also clears a halt). */
  async assign(address: string): Promise<void> {
    if (address !== this.address || !this.port) {
      await this.stopRun();
      this.port?.close();
      this.address = address;
      this.port = this.options.connect(address);
    }
    await this.restart();
  }

  /** Reconnects (clearing a halt); `resync` marks the opens until syncFinished() as a full resync. */
  async restart(options: { resync?: boolean } = {}): Promise<void> {
    if (!this.port) throw new Error("no process server assigned to this machine yet");
    if (options.resync) this.resyncOpen = true;
    await this.stopRun();
    this.haltReason = "";
    const abort = new AbortController();
    this.run = { abort, done: this.loop(abort.signal) };
  }

  /**
   * The machine's disks changed (a disk added or removed): the stream is opened again declaring
   * them, before any record of a new disk goes out.
   */
  async setDisks(disks: Disk[]): Promise<void> {
    this.options.disks = disks;
    if (this.port) await this.restart();
  }

  syncFinished(): void {
    this.resyncOpen = false;
  }

  async stop(): Promise<void> {
    await this.stopRun();
    this.port?.close();
    this.port = undefined;
    this.state = "idle";
  }

  private async stopRun(): Promise<void> {
    const run = this.run;
    this.run = undefined;
    if (!run) return;
    run.abort.abort();
    await run.done;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const { logger, capture } = this.options;
    while (!signal.aborted) {
      try {
        await retryWithBackoff(() => this.session(signal), {
          timeUnitMs: this.options.timeUnitMs,
          signal,
          logger,
          operation: "replication stream",
          onRetry: (attempt, _delay, err) => {
            this.state = "retrying";
            this.failedAttempts = attempt;
            this.lastError = toSrlabError(err).message;
            if (attempt > this.options.bitmapAfterRetries) capture.enterBitmapMode("process server unreachable");
          },
        });
      } catch (err) {
        if (signal.aborted) break;
        this.halt(err);
        return;
      }
    }
  }

  private halt(err: unknown): void {
    const e = toSrlabError(err);
    this.state = "halted";
    this.haltReason = e.message;
    this.lastError = e.message;
    this.options.logger.error("replication halted, waiting for a new assignment or a resync", { code: e.code, error: e.message });
    if (e.code === ErrorCode.BROKEN_CHAIN || /sequence gap/i.test(e.message)) {
      this.options.capture.requireResync("sequence gap at the process server");
    }
  }

  /** One stream. Resolves after a healthy session ended recoverably; throws otherwise. */
  private async session(signal: AbortSignal): Promise<void> {
    const { capture, machineId, disks } = this.options;
    signal.throwIfAborted();
    const port = this.port;
    if (!port) throw new SrlabError(ErrorCode.WRONG_STATE, "no process server assigned");
    this.state = this.state === "retrying" ? "retrying" : "connecting";
    const call = port.replicate();
    const onAbort = () => call.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    const responses = call.responses[Symbol.asyncIterator]();
    let openedAt = 0;
    let senderError: unknown;
    const stopSender = new AbortController();
    let sender: Promise<void> | undefined;
    try {
      await call.send({ message: { $case: "open", value: { machineId, disks, resync: this.resyncOpen } } });
      const first = await responses.next();
      if (first.done) throw unavailable("process server closed the replication stream before opening it");
      if (first.value.message?.$case !== "opened") {
        throw new SrlabError(ErrorCode.INTERNAL, `process server answered open with ${first.value.message?.$case ?? "nothing"}`);
      }
      const durable = first.value.message.value.durableSequence;
      capture.onOpened(durable);
      openedAt = Date.now();
      this.state = "streaming";
      this.failedAttempts = 0;
      this.options.logger.info("replication stream open", { processServer: this.address, durableSequence: durable });
      sender = this.sendLoop(call, stopSender.signal).catch((err: unknown) => {
        senderError ??= err;
        call.cancel();
      });
      for (;;) {
        const next = await responses.next();
        if (next.done) throw unavailable("process server ended the replication stream");
        this.onResponse(next.value);
      }
    } catch (err) {
      if (signal.aborted) throw err;
      const failure = senderError ?? err;
      const healthy = openedAt > 0 && Date.now() - openedAt >= HEALTHY_SESSION_MS;
      if (healthy && toSrlabError(failure).recoverable) {
        this.lastError = toSrlabError(failure).message;
        this.options.logger.warn("replication stream broke, reconnecting", { error: this.lastError });
        return;
      }
      throw failure;
    } finally {
      signal.removeEventListener("abort", onAbort);
      stopSender.abort();
      call.cancel();
      capture.onStreamClosed();
      await sender;
    }
  }

  private onResponse(response: ReplicateResponse): void {
    const message = response.message;
    if (message?.$case !== "ack") return;
    this.throttled = message.value.throttled;
    this.cacheHealth = message.value.cacheHealth;
    const inStep = this.options.capture.onAck(message.value.durableSequence);
    this.ackRate.recordTotal(this.options.capture.bytesAcked);
    if (!inStep) throw unavailable("the process server's sequence moved past this agent's: reopening the stream to renumber");
  }

  private async sendLoop(call: ReplicateCall, signal: AbortSignal): Promise<void> {
    const { capture, batchBytes, windowBytes } = this.options;
    while (!signal.aborted) {
      // A throttled process server gets one batch at a time until it catches up.
      const batch = capture.nextBatch(batchBytes, this.throttled ? batchBytes : windowBytes);
      if (!batch) {
        await capture.changed.wait(signal);
        // A bare timer: an abort is seen by the loop's check right after, and one per wake-up must stay cheap.
        await new Promise((resolve) => setTimeout(resolve, LINGER_MS));
        continue;
      }
      // Metadata-mode records get their bytes from the disk now, as they leave.
      const filled = capture.fill(batch);
      if (filled) await filled;
      await call.send({ message: { $case: "batch", value: { records: batch } } });
      for (const r of batch) this.bytesSent += r.data.length;
    }
  }
}

function unavailable(message: string): SrlabError {
  return new SrlabError(ErrorCode.UNAVAILABLE, message);
}
