import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { bearerMetadata, unaryCall, } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import { MasterTarget, masterTargetOptions } from "../master-target/index.js";
import { replicaBlobName } from "../common/storage-layout/index.js";
import { ProcessServer } from "../process-server/index.js";
import {
  ChecksumAlgorithm,
  type BlockChecksum,
  type Disk,
  type GetBlockChecksumsResponse,
  Health,
  HealthIssueCode,
  MasterTargetServiceClient,
  ProcessServiceClient,
  ReplicationDirection,
  type ReplicationPolicy,
  WriteKind,
  type WriteRecord,
} from "../proto/index.js";
import { AgentStream } from "./support/agent-stream.js";
import { patternBytes, sha256File } from "./support/images.js";
import { StubConfigServer } from "./support/stub-config-server.js";
import { seededInts } from "../common/random/index.js";
import { waitUntil } from "./support/wait.js";

const DISK_BYTES = 4 * 1024 * 1024;
const DISK_COUNT = 2;
const BLOCK = 64 * 1024;
const PS_ID = "ps-azure";
const MT_ID = "mt";

const FAILBACK_POLICY: ReplicationPolicy = {
  name: "failback",
  rpoThresholdSeconds: 900,
  recoveryPointRetentionSeconds: 86_400,
  // Short on purpose: the reverse direction must make no points however often the schedule fires.
  crashConsistentFrequencySeconds: 1,
  appConsistentFrequencySeconds: 3_600,
  resyncSchedule: "",
  failback: true,
};

const hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The disks an Azure agent announces: the failed-over disks in storage. */
const failoverDisks = (machineId: string): Disk[] =>
  Array.from({ length: DISK_COUNT }, (_, index) => ({
    diskId: `d${index}`,
    index,
    sizeBytes: DISK_BYTES,
    imagePath: "",
    nbdUri: "",
    nbdUnixUri: "",
    addedAtSequence: 0,
    blobName: `machines/${machineId}/failover/disk-${index}`,
  }));

/** The disks as they should end up: a start image plus every generated write. */
class Reference {
  readonly disks: Buffer[];
  sequence: number;
  private readonly rand: (n: number) => number;

  constructor(start: Buffer[], seed: number, sequence = 0) {
    this.disks = start.map((b) => Buffer.from(b));
    this.rand = seededInts(seed);
    this.sequence = sequence;
  }

  /** Unaligned DATA writes, some ZERO ranges and now and then a TAG. */
  writes(count: number): WriteRecord[] {
    const out: WriteRecord[] = [];
    for (let i = 0; i < count; i++) {
      const sequence = ++this.sequence;
      const base = { sequence, diskIndex: this.rand(DISK_COUNT), tagName: "", consistencyGroup: "", capturedAtMs: Date.now(), readAtSequence: 0 };
      const pick = this.rand(25);
      if (pick === 0) {
        out.push({ ...base, kind: WriteKind.WRITE_KIND_TAG, offset: 0, length: 0, data: Buffer.alloc(0), tagName: `tag-${sequence}` });
        continue;
      }
      const length = 1 + this.rand(this.rand(5) === 0 ? 200 * 1024 : 6 * 1024);
      const offset = this.rand(DISK_BYTES - length);
      const disk = this.disks[base.diskIndex]!;
      if (pick < 4) {
        disk.fill(0, offset, offset + length);
        out.push({ ...base, kind: WriteKind.WRITE_KIND_ZERO, offset, length, data: Buffer.alloc(0) });
      } else {
        const data = randomBytes(length);
        data.copy(disk, offset);
        out.push({ ...base, kind: WriteKind.WRITE_KIND_DATA, offset, length, data });
      }
    }
    return out;
  }

  checksums(index: number): BlockChecksum[] {
    const out: BlockChecksum[] = [];
    const disk = this.disks[index]!;
    for (let b = 0; b * BLOCK < disk.length; b++) {
      const block = disk.subarray(b * BLOCK, (b + 1) * BLOCK);
      out.push({ blockIndex: b, digest: block.every((x) => x === 0) ? Buffer.alloc(0) : createHash("sha256").update(block).digest(), pageDigests: Buffer.alloc(0) });
    }
    return out;
  }
}

/** One line per block so a mismatch names the block. */
const listing = (checksums: BlockChecksum[]) => checksums.map((c) => `${c.blockIndex}:${Buffer.from(c.digest).toString("hex") || "zero"}`).join("\n");

describe("process server failback (Azure to on-premises through a master target)", () => {
  let root: string;
  let cs: StubConfigServer;
  let ps: ProcessServer;
  let mt: MasterTarget;
  let mtPort = 0;
  let client: ProcessServiceClient;
  let store: BlobStore;
  let admin: string;

  const startProcessServer = async () => {
    ps = new ProcessServer(
      {
        name: "ps-azure",
        dataDir: join(root, "ps"),
        insecure: true,
        location: "azure",
        configServer: { address: cs.address, passphrase: "lab-passphrase" },
        segment: { maxDelayMs: 50, maxBytes: 256 * 1024 },
        retryTimeUnitMs: 100,
        heartbeatIntervalMs: 200,
      },
      silentLogger(),
    );
    await ps.start();
    client?.close();
    client = new ProcessServiceClient(ps.grpcAddress, grpc.credentials.createInsecure());
  };

  const startMasterTarget = async () => {
    mt = new MasterTarget(
      masterTargetOptions.parse({
        name: "mt",
        dataDir: join(root, "mt"),
        insecure: true,
        listen: { host: "127.0.0.1", port: mtPort },
        configServer: { address: cs.address, passphrase: "lab-passphrase" },
        heartbeatIntervalMs: 200,
      }),
      silentLogger(),
    );
    await mt.start();
    mtPort = Number(mt.grpcAddress.split(":").at(-1));
  };

  /** On-premises images with old content, prepared as the machine's failback target (original location). */
  const prepareTarget = async (machineId: string): Promise<Reference & { paths: string[] }> => {
    const start = Array.from({ length: DISK_COUNT }, (_, i) => patternBytes(DISK_BYTES, machineId.length * 10 + i + 1));
    const paths = start.map((_, i) => join(root, `${machineId}-onprem-${i}.img`));
    await Promise.all(start.map((b, i) => writeFile(paths[i]!, b)));
    const mtClient = new MasterTargetServiceClient(mt.grpcAddress, grpc.credentials.createInsecure());
    try {
      await unaryCall(
        mtClient,
        mtClient.prepareTarget,
        {
          machineId,
          disks: paths.map((imagePath, diskIndex) => ({ diskIndex, sizeBytes: DISK_BYTES, imagePath })),
          alternateLocation: false,
          datastore: "",
        },
        admin,
      );
    } finally {
      mtClient.close();
    }
    return Object.assign(new Reference(start, machineId.length * 7919), { paths });
  };

  const assign = async (machineId: string, direction: ReplicationDirection, masterTargetAddress: string) => {
    const result = await cs.command(`process-server/${PS_ID}`, {
      commandId: randomBytes(6).toString("hex"),
      jobId: "",
      command: {
        $case: "assignment",
        value: {
          machineId,
          processServerId: PS_ID,
          processServerAddress: ps.grpcAddress,
          policy: FAILBACK_POLICY,
          state: 0,
          direction,
          masterTargetId: masterTargetAddress ? MT_ID : "",
          masterTargetAddress,
        },
      },
    });
    assert.ok(result.success, result.error);
  };

  const azureAgent = (machineId: string) => cs.credential(`agent/${machineId}/azure`);

  const drain = (machineId: string) => unaryCall(client, client.drainMachine, { machineId, apply: true }, azureAgent(machineId), 60_000);

  const status = (machineId: string) => unaryCall(client, client.getMachineReplicationStatus, { machineId }, admin);

  const checksumsThroughPs = (machineId: string, diskIndex: number) =>
    new Promise<BlockChecksum[]>((resolve, reject) => {
      const out: BlockChecksum[] = [];
      const call = client.getBlockChecksums({ machineId, diskIndex, blockSize: BLOCK, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256, pageSize: 0 }, bearerMetadata(azureAgent(machineId)));
      call.on("data", (m: GetBlockChecksumsResponse) => {
        assert.equal(m.totalBlocks, DISK_BYTES / BLOCK);
        out.push(...m.checksums);
      });
      call.on("error", reject);
      call.on("end", () => resolve(out));
    });

  const assertImagesMatch = async (ref: Reference & { paths: string[] }) => {
    for (let i = 0; i < DISK_COUNT; i++) assert.equal(await sha256File(ref.paths[i]!), hex(ref.disks[i]!), `on-premises image of disk ${i}`);
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "srlab-ps-failback-"));
    cs = new StubConfigServer(join(root, "storage"));
    await cs.start();
    admin = cs.credential("admin");
    await startMasterTarget();
    await startProcessServer();
    store = createBlobStore({ kind: "directory", directory: join(root, "storage") });
    await store.init();
  });

  afterAll(async () => {
    client?.close();
    await ps?.stop();
    await mt?.stop();
    await cs?.stop();
    await store?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("applies the Azure agent's writes to the master target byte-exactly and relays its checksums", async () => {
    const ref = await prepareTarget("fb1");

    // Before the failback assignment the Azure agent is turned away (it retries), so none of its
    // writes can land in the on-premises→Azure replica.
    const early = new AgentStream(client, azureAgent("fb1"), failoverDisks);
    await assert.rejects(early.open("fb1"), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE && /no failback assignment/.test(e.details));

    await assign("fb1", ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES, mt.grpcAddress);
    const agent = new AgentStream(client, azureAgent("fb1"), failoverDisks);
    assert.equal(await agent.open("fb1"), 0);
    let acked = 0;
    for (let b = 0; b < 12; b++) acked = await agent.send(ref.writes(30));
    assert.equal(acked, ref.sequence);
    agent.end();

    // The on-premises agent may not replicate while the machine fails back.
    const onPrem = new AgentStream(client, cs.credential("agent/fb1"), failoverDisks);
    await assert.rejects(onPrem.open("fb1"), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE && /Azure to on-premises/.test(e.details));

    const { stats } = await drain("fb1");
    assert.equal(stats?.receivedSequence, ref.sequence);
    assert.equal(stats?.uploadedSequence, ref.sequence);
    assert.equal(stats?.processedSequence, ref.sequence, "processed is what the master target acknowledged");
    assert.equal(stats?.rpoSeconds, 0);
    await assertImagesMatch(ref);

    for (let i = 0; i < DISK_COUNT; i++) assert.equal(listing(await checksumsThroughPs("fb1", i)), listing(ref.checksums(i)), `checksums of disk ${i}`);

    // Segments were uploaded (the RPO point) apart from the replica's log; no replica, no points.
    assert.ok((await store.listObjects(`machines/fb1/failback/${PS_ID}/log/`)).length > 0);
    assert.deepEqual(await store.listObjects("machines/fb1/log/"), []);
    assert.deepEqual(await store.listObjects("machines/fb1/points/"), []);
    assert.equal(await store.pageBlobSize(replicaBlobName("fb1", 0)), undefined);
    const state = JSON.parse((await store.getObject(`machines/fb1/failback/${PS_ID}/state.json`)).toString());
    await waitUntil("the processed position persisted", async () => {
      const s = JSON.parse((await store.getObject(`machines/fb1/failback/${PS_ID}/state.json`)).toString());
      return s.processedSequence === ref.sequence;
    });
    assert.ok(state.processedSequence <= ref.sequence);
    const st = await status("fb1");
    assert.equal(st.health, Health.HEALTH_NORMAL, JSON.stringify(st.issues));
  });

  // Two restarts and a replay: slow when the machine is busy, not a hang.
  it("loses nothing when the master target and then the process server restart mid-stream", { timeout: 180_000 }, async () => {
    const ref = await prepareTarget("fb2");
    await assign("fb2", ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES, mt.grpcAddress);
    let agent = new AgentStream(client, azureAgent("fb2"), failoverDisks);
    await agent.open("fb2");
    const processed = async () => (await status("fb2")).stats?.processedSequence ?? 0;
    const unreachable = async () => {
      const st = await status("fb2");
      return st.health === Health.HEALTH_WARNING && st.issues.some((i) => i.code === HealthIssueCode.HEALTH_ISSUE_CODE_MASTER_TARGET_UNREACHABLE && /master target unreachable/.test(i.message));
    };

    // 1. The master target goes away while the stream runs; the process server keeps acknowledging
    //    (cache, then storage) and resends from memory once the target is back.
    await agent.send(ref.writes(30));
    await waitUntil("the master target's first acks", async () => (await processed()) > 0);
    const sendMore = async (batches: number) => {
      for (let b = 0; b < batches; b++) await agent.send(ref.writes(30));
    };
    await Promise.all([sendMore(3), mt.stop()]);
    for (let b = 0; b < 3; b++) assert.equal(await agent.send(ref.writes(30)), ref.sequence);
    await waitUntil("a master-target-unreachable warning", unreachable);
    assert.ok((await processed()) < ref.sequence);
    await startMasterTarget();
    await waitUntil("the master target to catch up", async () => (await processed()) === ref.sequence);
    await waitUntil("the warning to clear", async () => (await status("fb2")).health === Health.HEALTH_NORMAL);
    await assertImagesMatch(ref);

    // 2. Down again, and the process server restarts meanwhile: what it held in memory is gone,
    //    the rest replays from the segments in storage.
    await mt.stop();
    for (let b = 0; b < 4; b++) await agent.send(ref.writes(30));
    await waitUntil("everything uploaded", async () => (await status("fb2")).stats?.uploadedSequence === ref.sequence);
    agent.end();
    await ps.stop();
    await startProcessServer();
    agent = new AgentStream(client, azureAgent("fb2"), failoverDisks);
    assert.equal(await agent.open("fb2"), ref.sequence, "nothing acknowledged was lost");
    for (let b = 0; b < 2; b++) await agent.send(ref.writes(30));
    agent.end();
    await waitUntil("a master-target-unreachable warning after the restart", unreachable);

    await startMasterTarget();
    const { stats } = await drain("fb2");
    assert.equal(stats?.processedSequence, ref.sequence);
    await assertImagesMatch(ref);
    await waitUntil("the warning to clear", async () => (await status("fb2")).health === Health.HEALTH_NORMAL);
  });

  it("returns to the replica when the direction flips back, without reverse writes in it", async () => {
    // fb1 failed back in the first test; now the machine replicates to Azure again.
    const before = await status("fb1");
    const reverseEnd = before.stats?.processedSequence ?? 0;
    assert.ok(reverseEnd > 0);
    const onPremImages = await Promise.all([0, 1].map((i) => sha256File(join(root, `fb1-onprem-${i}.img`))));

    await assign("fb1", ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE, "");
    const azure = new AgentStream(client, azureAgent("fb1"), failoverDisks);
    await assert.rejects(azure.open("fb1"), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);

    const forward = new Reference(
      Array.from({ length: DISK_COUNT }, () => Buffer.alloc(DISK_BYTES)),
      4242,
      reverseEnd,
    );
    const agent = new AgentStream(client, cs.credential("agent/fb1"), failoverDisks);
    assert.equal(await agent.open("fb1"), reverseEnd);
    for (let b = 0; b < 4; b++) await agent.send(forward.writes(25));
    agent.end();
    const { stats } = await drain("fb1");
    assert.equal(stats?.processedSequence, forward.sequence);

    // The replica holds the forward writes only; the on-premises images did not move.
    for (let i = 0; i < DISK_COUNT; i++) {
      assert.equal(hex(await store.readPages(replicaBlobName("fb1", i), 0, DISK_BYTES)), hex(forward.disks[i]!), `replica of disk ${i}`);
      assert.equal(await sha256File(join(root, `fb1-onprem-${i}.img`)), onPremImages[i]);
    }
    assert.ok((await store.listObjects("machines/fb1/log/")).length > 0, "forward segments go to the replica's log");

    // Both directions' positions survive a restart: nothing is replayed into the wrong sink.
    await ps.stop();
    await startProcessServer();
    // The position is restored from storage in the background.
    await waitUntil("the processed position restored", async () => (await status("fb1")).stats?.processedSequence === forward.sequence);
    await new Promise((r) => setTimeout(r, 300));
    const after = await status("fb1");
    assert.equal(after.stats?.processedSequence, forward.sequence);
    assert.equal(after.health, Health.HEALTH_NORMAL, JSON.stringify(after.issues));
  });
});
