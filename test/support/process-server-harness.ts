import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll } from "vitest";
import { unaryCall } from "../../common/grpc/index.js";
import { silentLogger } from "../../common/logger.js";
import { seededInts } from "../../common/random/index.js";
import { replicaBlobName } from "../../common/storage-layout/index.js";
import { type BlobStore, createBlobStore } from "../../common/storage/index.js";
import { ProcessServer } from "../../process-server/index.js";
import { ProcessServiceClient, type ReplicationPolicy, WriteKind, type WriteRecord } from "../../proto/index.js";
import { AgentStream } from "./agent-stream.js";
import { StubConfigServer } from "./stub-config-server.js";

// One process server "ps-1" on a configuration-server stub with directory storage, shared by the
// tests of a file, and the writes, hashes and status checks those tests use.

export const DISK_SIZE = 4 * 1024 * 1024;
export const DISKS = [
  { diskId: "d0", index: 0, sizeBytes: DISK_SIZE, imagePath: "", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" },
  { diskId: "d1", index: 1, sizeBytes: DISK_SIZE, imagePath: "", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" },
];

export const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A policy with a crash-consistent point every second and this retention. */
export function everySecond(name: string, recoveryPointRetentionSeconds: number): ReplicationPolicy {
  return {
    name,
    rpoThresholdSeconds: 60,
    recoveryPointRetentionSeconds,
    crashConsistentFrequencySeconds: 1,
    appConsistentFrequencySeconds: 0,
    resyncSchedule: "",
    failback: false,
  };
}

/** Writes generated for one machine, with the images they produce after every sequence we ask for. */
export class Workload {
  readonly images = DISKS.map(() => Buffer.alloc(DISK_SIZE));
  sequence = 0;
  private readonly rand: (n: number) => number;

  constructor(seed: number) {
    this.rand = seededInts(seed);
  }

  /** Random unaligned DATA writes with some ZERO ranges, across both disks. */
  writes(count: number): WriteRecord[] {
    const out: WriteRecord[] = [];
    for (let i = 0; i < count; i++) {
      const diskIndex = this.rand(2);
      const length = 1 + this.rand(this.rand(4) === 0 ? 256 * 1024 : 8 * 1024);
      const offset = this.rand(DISK_SIZE - length);
      const sequence = ++this.sequence;
      if (this.rand(10) === 0) {
        this.images[diskIndex]!.fill(0, offset, offset + length);
        out.push({ ...blank(sequence), kind: WriteKind.WRITE_KIND_ZERO, diskIndex, offset, length });
      } else {
        const data = randomBytes(length);
        data.copy(this.images[diskIndex]!, offset);
        out.push({ ...blank(sequence), kind: WriteKind.WRITE_KIND_DATA, diskIndex, offset, length, data });
      }
    }
    return out;
  }

  tag(tagName: string): WriteRecord {
    return { ...blank(++this.sequence), kind: WriteKind.WRITE_KIND_TAG, tagName };
  }

  /** The BASE records an agent sends when the initial copy of these disks completes. */
  base(disks = DISKS.map((d) => d.index)): WriteRecord[] {
    return disks.map((diskIndex) => ({ ...blank(++this.sequence), kind: WriteKind.WRITE_KIND_BASE, diskIndex }));
  }
}

export function blank(sequence: number): WriteRecord {
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex: 0,
    offset: 0,
    length: 0,
    data: Buffer.alloc(0),
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: Date.now(),
    readAtSequence: 0,
  };
}

export async function replicaHash(store: BlobStore, machineId: string, diskIndex: number, snapshot?: string): Promise<string> {
  return sha(await store.readPages(replicaBlobName(machineId, diskIndex), 0, DISK_SIZE, snapshot));
}

export async function expectStatus(p: Promise<unknown>, code: grpc.status, pattern?: RegExp): Promise<grpc.ServiceError> {
  const err = (await p.then(
    () => assert.fail(`expected ${grpc.status[code]}`),
    (e: unknown) => e,
  )) as grpc.ServiceError;
  assert.equal(err.code, code, `expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
  if (pattern) assert.match(err.details, pattern);
  return err;
}

export interface ProcessServerTuning {
  maxDelayMs?: number;
  applyQueueBytes?: number;
  highWaterBytes?: number;
}

/** The process server under test and what talks to it; restart() replaces ps and client. */
export class ProcessServerHarness {
  root!: string;
  cs!: StubConfigServer;
  ps!: ProcessServer;
  client!: ProcessServiceClient;
  store!: BlobStore;
  private readonly logger = silentLogger();

  newProcessServer(o: ProcessServerTuning = {}): ProcessServer {
    return new ProcessServer(
      {
        name: "ps-1",
        dataDir: join(this.root, "ps"),
        insecure: true,
        configServer: { address: this.cs.address, passphrase: "lab-passphrase" },
        segment: { maxDelayMs: o.maxDelayMs ?? 50, maxBytes: 256 * 1024 },
        cache: { highWaterBytes: o.highWaterBytes },
        applyQueueBytes: o.applyQueueBytes,
        retryTimeUnitMs: 100,
        heartbeatIntervalMs: 200,
        readyFile: join(this.root, "ps.ready.json"),
      },
      this.logger,
    );
  }

  async start(): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), "srlab-ps-"));
    this.cs = new StubConfigServer(join(this.root, "storage"));
    await this.cs.start();
    this.ps = this.newProcessServer();
    await this.ps.start();
    this.connect();
    this.store = createBlobStore({ kind: "directory", directory: join(this.root, "storage") });
    await this.store.init();
  }

  async stop(): Promise<void> {
    this.client?.close();
    await this.ps?.stop();
    await this.cs?.stop();
    await this.store?.close();
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }

  /** `whileStopped` runs between the stop and the new start (e.g. to tamper with the data dir). */
  async restart(o: ProcessServerTuning = {}, whileStopped?: () => Promise<void>): Promise<void> {
    await this.ps.stop();
    await whileStopped?.();
    this.ps = this.newProcessServer(o);
    await this.ps.start();
    this.connect();
  }

  /** A Replicate stream announcing the two test disks. */
  agent(credential: string | undefined): AgentStream {
    return new AgentStream(this.client, credential, () => DISKS);
  }

  drain(machineId: string, credential = this.cs.agentCredential(machineId)) {
    return unaryCall(this.client, this.client.drainMachine, { machineId, apply: true }, credential, 30_000);
  }

  /** Assigns a machine to this process server under `policy`, as the configuration server does. */
  assign(commandId: string, machineId: string, policy: ReplicationPolicy) {
    return this.cs.command("process-server/ps-1", {
      commandId,
      jobId: "",
      command: {
        $case: "assignment",
        value: { machineId, processServerId: "ps-1", processServerAddress: this.ps.grpcAddress, policy, state: 0, direction: 0, masterTargetId: "", masterTargetAddress: "" },
      },
    });
  }

  private connect(): void {
    this.client?.close();
    this.client = new ProcessServiceClient(this.ps.grpcAddress, grpc.credentials.createInsecure());
  }
}

/** A harness started before the file's tests and stopped after them. */
export function useProcessServer(): ProcessServerHarness {
  const h = new ProcessServerHarness();
  beforeAll(() => h.start());
  afterAll(() => h.stop());
  return h;
}
