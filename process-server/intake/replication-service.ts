import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, SrlabError, toGrpcError, toSrlabError } from "../../common/errors/index.js";
import type { Logger } from "../../common/logger.js";
import type { Health, ReplicateOpen, ReplicateRequest, ReplicateResponse, WriteRecord } from "../../proto/index.js";
import type { DiskCache } from "../cache/index.js";
import { SequenceGapError } from "../cache/index.js";
import type { CredentialVerifier } from "../../common/credentials/index.js";
import { type AgentSite, requireAgentOf, verifiedCaller } from "../caller-auth.js";
import type { Machine } from "../machine.js";
import type { ProcessServerMetrics } from "../metrics.js";
import { validateBatch } from "./record-validation.js";
import { recordBytes } from "../../common/wire/index.js";
import { widenReceiveWindow } from "../../common/grpc/index.js";

/** Queued batches appended together at most (one fsync, one ack). */
const GROUP_COMMIT_BYTES = 16 * 1024 * 1024;
/**
 * HTTP/2 receive window for agent connections. The default of 64 KiB let an agent have only 64 KiB
 * on the wire before waiting for this process's event loop, which capped a stream at tens of MB/s.
 * A paused stream (inbox full, cache above its high-water mark) still stops reading.
 */
const RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024;

/** How often a throttled stream checks whether the cache dropped below its high-water mark. */
const THROTTLE_POLL_MS = 100;

/** What the Replicate handler needs from the process server. */
export interface ReplicationHost {
  readonly logger: Logger;
  readonly metrics: ProcessServerMetrics;
  readonly cache: DiskCache;
  /** Messages read ahead of the one being appended; beyond this the stream is paused (flow control). */
  readonly inboxMessages: number;
  /** Throws UNAVAILABLE until the process server has registered with the CS. */
  /** Checks callers' credentials; UNAVAILABLE until registered. */
  verifier(): CredentialVerifier;
  componentId(): string;
  /**
   * Registers (or updates) the machine and its disks and creates its replica blobs; refuses an
   * agent whose site does not match the machine's assigned direction.
   */
  openMachine(open: ReplicateOpen, site: AgentSite): Promise<Machine>;
  /** Records just became durable in the cache. */
  appended(machine: Machine, records: WriteRecord[], bytes: number): void;
  cacheHealth(): Health;
}

/**
 * ProcessService.Replicate: one bidirectional stream per machine. Each stream is handled on its
 * own; a bad stream ends with a status and touches nothing else.
 */
export class ReplicationService {
  private readonly sessions = new Map<string, ReplicateSession>();

  constructor(readonly host: ReplicationHost) {}

  readonly replicate: grpc.handleBidiStreamingCall<ReplicateRequest, ReplicateResponse> = (call) => {
    new ReplicateSession(this, call);
  };

  /** A newer stream for a machine replaces an older one (the agent reconnected). */
  claim(machineId: string, session: ReplicateSession): void {
    const previous = this.sessions.get(machineId);
    this.sessions.set(machineId, session);
    if (previous && previous !== session) {
      previous.fail(new SrlabError(ErrorCode.UNAVAILABLE, `a newer replication stream for machine ${machineId} replaced this one`));
    }
  }

  release(machineId: string, session: ReplicateSession): void {
    if (this.sessions.get(machineId) === session) this.sessions.delete(machineId);
  }

  /** Ends the machine's stream, if one is open (the machine is being released). */
  closeMachine(machineId: string, reason: string): void {
    this.sessions.get(machineId)?.fail(new SrlabError(ErrorCode.UNAVAILABLE, reason));
  }

  /**
   * Cuts the streams opened with credentials the configuration server just revoked: nothing a
   * revoked agent sends is appended from here on (each message is re-checked as well).
   */
  revoke(ids: ReadonlySet<string>): void {
    for (const s of [...this.sessions.values()]) {
      const jti = s.credentialId;
      if (jti && ids.has(jti)) s.fail(new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `credential ${jti} was revoked by the configuration server; this stream is closed`));
    }
  }

  /** Ends every stream (shutdown); agents reconnect and resend from their acked position. */
  closeAll(): void {
    for (const s of [...this.sessions.values()]) s.fail(new SrlabError(ErrorCode.UNAVAILABLE, "process server is shutting down"));
  }
}

class ReplicateSession {
  private machine?: Machine;
  private subject?: string;
  private claims?: { jti: string; exp: number };
  private readonly inbox: ReplicateRequest[] = [];
  private busy = false;
  private ended = false;
  private finished = false;
  private paused = false;
  private throttled = false;
  private throttleTimer?: NodeJS.Timeout;

  constructor(
    private readonly service: ReplicationService,
    private readonly call: grpc.ServerDuplexStream<ReplicateRequest, ReplicateResponse>,
  ) {
    widenReceiveWindow(call, RECEIVE_WINDOW_BYTES);
    try {
      const caller = verifiedCaller(call.metadata, service.host.verifier());
      this.subject = caller.subject;
      this.claims = caller.claims;
    } catch (err) {
      this.fail(err);
      return;
    }
    call.on("data", (msg: ReplicateRequest) => {
      if (this.finished) return;
      this.inbox.push(msg);
      this.flow();
      void this.pump();
    });
    call.on("end", () => {
      this.ended = true;
      void this.pump();
    });
    call.on("cancelled", () => this.cleanup());
    call.on("error", () => this.cleanup());
  }

  /** The id of the credential this stream was opened with. */
  get credentialId(): string | undefined {
    return this.claims?.jti;
  }

  fail(err: unknown): void {
    if (this.finished) return;
    const status = toGrpcError(err);
    this.service.host.logger.info("replication stream ended with an error", {
      machineId: this.machine?.id,
      code: status.code,
      error: status.details,
    });
    // A sequence gap is the agent's to report (it resyncs); only the metric counts it here.
    if (this.machine) this.service.host.metrics.rejectedBatches.inc({ machine_id: this.machine.id, code: toSrlabError(err).code });
    this.cleanup();
    this.call.emit("error", status);
  }

  private cleanup(): void {
    this.finished = true;
    this.inbox.length = 0;
    if (this.throttleTimer) clearInterval(this.throttleTimer);
    if (this.machine) this.service.release(this.machine.id, this);
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.finished && this.inbox.length > 0) {
        const msg = this.takeMessage();
        this.flow();
        try {
          await this.handle(msg);
        } catch (err) {
          this.fail(err);
        }
      }
      if (this.ended && !this.finished) {
        this.cleanup();
        this.call.end();
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * The next message; batches that queued up while the previous append was fsyncing are taken
   * together (group commit): one append, one fsync and one ack for all of them.
   */
  private takeMessage(): ReplicateRequest {
    const msg = this.inbox.shift()!;
    if (!this.machine || msg.message?.$case !== "batch" || this.inbox[0]?.message?.$case !== "batch") return msg;
    const records = [...msg.message.value.records];
    let bytes = records.reduce((n, r) => n + r.data.length, 0);
    for (let next = this.inbox[0]; next?.message?.$case === "batch" && bytes < GROUP_COMMIT_BYTES; next = this.inbox[0]) {
      this.inbox.shift();
      for (const r of next.message.value.records) {
        records.push(r);
        bytes += r.data.length;
      }
    }
    return { message: { $case: "batch", value: { records } } };
  }

  /** Pauses reading while too much is queued or the cache is above its high-water mark. */
  private flow(): void {
    const shouldPause = !this.finished && (this.inbox.length >= this.service.host.inboxMessages || this.throttled);
    if (shouldPause && !this.paused) this.call.pause();
    else if (!shouldPause && this.paused) this.call.resume();
    this.paused = shouldPause;
  }

  private async handle(msg: ReplicateRequest): Promise<void> {
    const host = this.service.host;
    // Revoked or expired since the stream opened: refuse before appending anything.
    host.verifier().recheck(this.claims!);

    const m = msg.message;
    if (!this.machine) {
      if (m?.$case !== "open") throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "the first message of a Replicate stream must be open");
      const site = requireAgentOf(this.subject!, m.value.machineId);
      const machine = await host.openMachine(m.value, site);
      if (this.finished) return;
      this.machine = machine;
      // A resync rewrites whatever the process server lost, so its own resync reason is settled.
      if (m.value.resync) machine.resyncReason = undefined;
      this.service.claim(machine.id, this);
      this.write({
        message: { $case: "opened", value: { durableSequence: host.cache.lastSequence(machine.id), processServerId: host.componentId() } },
      });
      return;
    }
    if (m?.$case !== "batch") throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "the stream is already open; send batch messages");
    const machine = this.machine;
    const records = m.value.records;
    const { durable, fresh } = await machine.appendLock.run(async () => {
      const last = host.cache.lastSequence(machine.id);
      const toAppend = validateBatch(records, (i) => machine.disk(i), last);
      if (toAppend.length === 0) return { durable: last, fresh: toAppend };
      try {
        return { durable: await host.cache.append(machine.id, toAppend), fresh: toAppend };
      } catch (err) {
        if (err instanceof SequenceGapError) throw new SrlabError(ErrorCode.BROKEN_CHAIN, `sequence gap: ${err.message}`);
        throw err;
      }
    });
    if (fresh.length > 0) {
      const bytes = fresh.reduce((n, r) => n + recordBytes(r), 0);
      host.appended(machine, fresh, bytes);
    }
    if (this.finished) return;
    this.throttle(host.cache.isAboveHighWater());
    this.write({ message: { $case: "ack", value: { durableSequence: durable, throttled: this.throttled, cacheHealth: host.cacheHealth() } } });
    host.metrics.acks.inc({ machine_id: machine.id });
  }

  private throttle(on: boolean): void {
    if (on === this.throttled) return;
    this.throttled = on;
    this.flow();
    if (on) {
      this.throttleTimer = setInterval(() => {
        if (!this.service.host.cache.isAboveHighWater()) {
          clearInterval(this.throttleTimer);
          this.throttleTimer = undefined;
          this.throttled = false;
          this.flow();
        }
      }, THROTTLE_POLL_MS);
      this.throttleTimer.unref();
    }
  }

  private write(res: ReplicateResponse): void {
    if (!this.finished) this.call.write(res);
  }
}
