import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { logPrefix, parseSegmentObjectName } from "../common/storage-layout/index.js";
import type { BlobStore } from "../common/storage/index.js";
import type { ReplicateOpen, ReplicationStats, WriteRecord } from "../proto/index.js";
import type { DiskCache } from "./cache/index.js";
import type { AgentSite } from "./caller-auth.js";
import { machineStats } from "./heartbeat-report.js";
import { admitMachine } from "./machine-admission.js";
import type { MachineFacts, MachineRegistry } from "./machine-registry.js";
import { Machine } from "./machine.js";
import type { ProcessServerMetrics } from "./metrics.js";
import type { MachinePipeline } from "./pipeline/index.js";

/** What the set of pipelines needs from the process server; cache and store throw before they exist. */
export interface PipelinesHost {
  /** The server's name, for messages. */
  readonly name: string;
  readonly logger: Logger;
  readonly metrics: ProcessServerMetrics;
  readonly registry: MachineRegistry;
  readonly cache: DiskCache;
  readonly store: BlobStore;
  /** Builds (does not start) a machine's pipeline with the server's options. */
  create(machine: Machine): MachinePipeline;
  /** Deletes the machine's replica checksum maps. */
  forgetChecksumMaps(machineId: string): Promise<void>;
}

/**
 * The running pipeline of every machine this process server replicates, and the machines it let
 * go of (their streams are refused until they are assigned here again).
 */
export class MachinePipelines {
  private readonly running = new Map<string, MachinePipeline>();
  /** Machines released (or being released) to another process server or to nobody: streams refused. */
  private readonly released = new Set<string>();
  /** First pipelines being set up (newPipeline), by machine. */
  private readonly starting = new Map<string, Promise<MachinePipeline>>();

  constructor(private readonly host: PipelinesHost) {}

  get size(): number {
    return this.running.size;
  }

  get(machineId: string): MachinePipeline | undefined {
    return this.running.get(machineId);
  }

  machines(): Machine[] {
    return [...this.running.values()].map((p) => p.machine);
  }

  /** Bytes appended and not yet uploaded (the uploader's estimate). */
  pendingBytes(machine: Machine): number {
    return this.running.get(machine.id)?.uploader.pendingBytesEstimate ?? 0;
  }

  stats(machine: Machine): ReplicationStats {
    return machineStats(this.host.cache, machine, this.pendingBytes(machine));
  }

  /** Streams of the machine are refused from now on. */
  refuse(machineId: string): void {
    this.released.add(machineId);
  }

  /** The machine is assigned here (again): its streams are welcome. */
  welcome(machineId: string): void {
    this.released.delete(machineId);
  }

  /** Takes the machine's pipeline out of the set; the caller stops it. */
  remove(machineId: string): MachinePipeline | undefined {
    const pipeline = this.running.get(machineId);
    this.running.delete(machineId);
    return pipeline;
  }

  /** Restarts the pipeline of every machine known from an earlier run (facts or cache). */
  async resume(): Promise<void> {
    const { cache, registry } = this.host;
    const facts = new Map<string, MachineFacts>();
    for (const f of await registry.loadAll()) facts.set(f.machineId, f);
    for (const id of cache.machines()) if (!facts.has(id)) facts.set(id, { machineId: id, disks: [], uploadedSequence: 0 });
    for (const f of facts.values()) {
      // The cache persists its released position too; it is never ahead of what was uploaded.
      f.uploadedSequence = Math.max(f.uploadedSequence, cache.releasedSequence(f.machineId));
      if (cache.lastSequence(f.machineId) < f.uploadedSequence) {
        // The cache lost its files: continue the stream after what storage holds.
        await cache.setBaseSequence(f.machineId, f.uploadedSequence);
      }
      this.start(new Machine(f, registry));
    }
  }

  start(machine: Machine): MachinePipeline {
    const pipeline = this.host.create(machine);
    this.running.set(machine.id, pipeline);
    pipeline.start();
    return pipeline;
  }

  /** The machine's pipeline, started when this process server meets the machine for the first time. */
  async ensure(machineId: string): Promise<MachinePipeline> {
    return this.running.get(machineId) ?? (await this.newPipeline(machineId));
  }

  /** Admits the machine of a Replicate stream's open (see machine-admission.ts). */
  admit(open: ReplicateOpen, site: AgentSite): Promise<Machine> {
    const host = this.host;
    if (this.released.has(open.machineId)) {
      return Promise.reject(
        new SrlabError(ErrorCode.UNAVAILABLE, `process server ${host.name} no longer replicates machine ${open.machineId}; waiting for its new assignment`),
      );
    }
    return admitMachine(
      {
        name: host.name,
        logger: host.logger,
        get cache() {
          return host.cache;
        },
        get store() {
          return host.store;
        },
        known: (machineId) => this.running.get(machineId)?.machine,
        start: async (machineId) => (await this.newPipeline(machineId)).machine,
      },
      open,
      site,
    );
  }

  /** Records of the machine just became durable in the cache. */
  appended(machine: Machine, records: WriteRecord[], bytes: number): void {
    const { metrics } = this.host;
    const payload = records.reduce((n, r) => n + r.data.length, 0);
    machine.receivedRate.record(payload);
    machine.receivedBytesTotal += payload;
    metrics.receivedBytes.inc({ machine_id: machine.id }, payload);
    metrics.receivedRecords.inc({ machine_id: machine.id }, records.length);
    this.running.get(machine.id)?.uploader.noteAppended(bytes);
  }

  /** Waits until everything durable now is uploaded (and applied with `apply`). */
  async drain(machine: Machine, apply: boolean, signal: AbortSignal): Promise<void> {
    const target = this.host.cache.lastSequence(machine.id);
    this.running.get(machine.id)?.uploader.flush();
    await machine.uploaded.waitFor(target, signal);
    if (!apply) return;
    this.running.get(machine.id)?.applier.hurry(target);
    await machine.processed.waitFor(target, signal);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.values()].map((p) => p.stop()));
    this.running.clear();
  }

  /**
   * The pipeline of a machine this process server meets for the first time (an assignment and
   * the agent's open may race: both get the same one). When storage already holds a log for it —
   * protection disabled with --keep-replica and enabled again — the stream continues after that
   * log instead of numbering from 1 over it.
   */
  private newPipeline(machineId: string): Promise<MachinePipeline> {
    let starting = this.starting.get(machineId);
    if (!starting) {
      starting = (async () => {
        const after = await this.storedLogEnd(machineId);
        const existing = this.running.get(machineId);
        if (existing) return existing;
        const { cache, registry, logger } = this.host;
        // Met for the first time: a map left from an earlier protection describes a replica others may have changed since.
        await this.host.forgetChecksumMaps(machineId);
        const machine = new Machine({ machineId, disks: [], uploadedSequence: after }, registry);
        if (after > 0 && cache.lastSequence(machineId) < after) {
          await cache.setBaseSequence(machineId, after);
          machine.processed.advance(after);
          logger.info("machine continues after the log already in storage", { machineId, afterSequence: after });
        }
        return this.start(machine);
      })().finally(() => this.starting.delete(machineId));
      this.starting.set(machineId, starting);
    }
    return starting;
  }

  /** Highest sequence of the machine's log segments in storage (0 when it has none). */
  private async storedLogEnd(machineId: string): Promise<number> {
    let last = 0;
    for (const o of await this.host.store.listObjects(logPrefix(machineId))) {
      const parsed = parseSegmentObjectName(o.name);
      if (parsed?.machineId === machineId) last = Math.max(last, parsed.lastSequence);
    }
    return last;
  }
}
