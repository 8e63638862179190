import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { bearerMetadata, unaryCall } from "../common/grpc/index.js";
import { peekClaims } from "../common/credentials/index.js";
import { TestCredentialAuthority } from "./support/test-credentials.js";
import { silentLogger } from "../common/logger.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import { pointsPrefix, replicaBlobName } from "../common/storage-layout/index.js";
import { type PointDocument, ProcessServer } from "../process-server/index.js";
import { blockDigest, pageDigests } from "../common/blockhash/index.js";
import { StubConfigServer } from "./support/stub-config-server.js";
import {
  ChecksumAlgorithm,
  Health,
  ProcessServiceClient,
  type ReplicateRequest,
  type ReplicateResponse,
  type ReplicationPolicy,
  WriteKind,
  type WriteRecord,
} from "../proto/index.js";
import { seededInts } from "../common/random/index.js";
import { waitUntil } from "./support/wait.js";

const DISK_SIZE = 4 * 1024 * 1024;
const DISKS = [
  { diskId: "d0", index: 0, sizeBytes: DISK_SIZE, imagePath: "", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" },
  { diskId: "d1", index: 1, sizeBytes: DISK_SIZE, imagePath: "", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" },
];

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A policy with a crash-consistent point every second and this retention. */
function everySecond(name: string, recoveryPointRetentionSeconds: number): ReplicationPolicy {
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

/** One Replicate stream seen as an async sequence of responses; the stream's error rejects next(). */
class AgentStream {
  private readonly call: grpc.ClientDuplexStream<ReplicateRequest, ReplicateResponse>;
  private readonly queue: ReplicateResponse[] = [];
  private waiting?: { resolve: (r: ReplicateResponse) => void; reject: (e: unknown) => void };
  private error?: grpc.ServiceError;

  constructor(client: ProcessServiceClient, credential: string | undefined) {
    this.call = client.replicate(bearerMetadata(credential));
    this.call.on("data", (r: ReplicateResponse) => {
      if (this.waiting) {
        this.waiting.resolve(r);
        this.waiting = undefined;
      } else this.queue.push(r);
    });
    this.call.on("error", (e: grpc.ServiceError) => {
      this.error = e;
      this.waiting?.reject(e);
      this.waiting = undefined;
    });
  }

  next(): Promise<ReplicateResponse> {
    const r = this.queue.shift();
    if (r) return Promise.resolve(r);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  async open(machineId: string): Promise<number> {
    this.call.write({ message: { $case: "open", value: { machineId, disks: DISKS, resync: false } } });
    const r = await this.next();
    assert.equal(r.message?.$case, "opened");
    return r.message.value.durableSequence;
  }

  async send(records: WriteRecord[]): Promise<number> {
    this.call.write({ message: { $case: "batch", value: { records } } });
    const r = await this.next();
    assert.equal(r.message?.$case, "ack");
    return r.message.value.durableSequence;
  }

  write(msg: ReplicateRequest): void {
    this.call.write(msg);
  }

  end(): void {
    this.call.end();
  }
}

/** Writes generated for one machine, with the images they produce after every sequence we ask for. */
class Workload {
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

function blank(sequence: number): WriteRecord {
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

async function replicaHash(store: BlobStore, machineId: string, diskIndex: number, snapshot?: string): Promise<string> {
  return sha(await store.readPages(replicaBlobName(machineId, diskIndex), 0, DISK_SIZE, snapshot));
}

async function expectStatus(p: Promise<unknown>, code: grpc.status, pattern?: RegExp): Promise<grpc.ServiceError> {
  const err = (await p.then(
    () => assert.fail(`expected ${grpc.status[code]}`),
    (e: unknown) => e,
  )) as grpc.ServiceError;
  assert.equal(err.code, code, `expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
  if (pattern) assert.match(err.details, pattern);
  return err;
}

describe("process server", () => {
  let root: string;
  let cs: StubConfigServer;
  let ps: ProcessServer;
  let client: ProcessServiceClient;
  let store: BlobStore;
  const logger = silentLogger();

  const newProcessServer = (o: { maxDelayMs?: number; applyQueueBytes?: number; highWaterBytes?: number } = {}) =>
    new ProcessServer(
      {
        name: "ps-1",
        dataDir: join(root, "ps"),
        insecure: true,
        configServer: { address: cs.address, passphrase: "lab-passphrase" },
        segment: { maxDelayMs: o.maxDelayMs ?? 50, maxBytes: 256 * 1024 },
        cache: { highWaterBytes: o.highWaterBytes },
        applyQueueBytes: o.applyQueueBytes,
        retryTimeUnitMs: 100,
        heartbeatIntervalMs: 200,
        readyFile: join(root, "ps.ready.json"),
      },
      logger,
    );

  const restart = async (o: Parameters<typeof newProcessServer>[0] = {}) => {
    await ps.stop();
    ps = newProcessServer(o);
    await ps.start();
    connect();
  };

  const connect = () => {
    client?.close();
    client = new ProcessServiceClient(ps.grpcAddress, grpc.credentials.createInsecure());
  };

  const drain = (machineId: string, credential = cs.agentCredential(machineId)) =>
    unaryCall(client, client.drainMachine, { machineId, apply: true }, credential, 30_000);

  /** Assigns a machine to this process server under `policy`, as the configuration server does. */
  const assign = (commandId: string, machineId: string, policy: ReplicationPolicy) =>
    cs.command("process-server/ps-1", {
      commandId,
      jobId: "",
      command: {
        $case: "assignment",
        value: { machineId, processServerId: "ps-1", processServerAddress: ps.grpcAddress, policy, state: 0, direction: 0, masterTargetId: "", masterTargetAddress: "" },
      },
    });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "srlab-ps-"));
    cs = new StubConfigServer(join(root, "storage"));
    await cs.start();
    ps = newProcessServer();
    await ps.start();
    connect();
    store = createBlobStore({ kind: "directory", directory: join(root, "storage") });
    await store.init();
  });

  afterAll(async () => {
    client?.close();
    await ps?.stop();
    await cs?.stop();
    await store?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("replicates random writes byte-exactly, ignoring retransmitted sequences", async () => {
    const w = new Workload(1);
    const agent = new AgentStream(client, cs.agentCredential("m1"));
    assert.equal(await agent.open("m1"), 0);
    const batches: WriteRecord[][] = [];
    let acked = 0;
    for (let b = 0; b < 20; b++) {
      batches.push(w.writes(25));
      acked = await agent.send(batches[b]!);
    }
    assert.equal(acked, 500);

    // A retransmission carrying different bytes must change nothing.
    const resent = batches[4]!.map((r) => ({ ...r, data: Buffer.alloc(r.data.length, 0xee) }));
    assert.equal(await agent.send(resent), 500);
    agent.end();

    const { stats } = await drain("m1");
    assert.equal(stats?.receivedSequence, 500);
    assert.equal(stats?.uploadedSequence, 500);
    assert.equal(stats?.processedSequence, 500);
    assert.equal(stats?.rpoSeconds, 0);
    for (const d of DISKS) assert.equal(await replicaHash(store, "m1", d.index), sha(w.images[d.index]!), `disk ${d.index}`);
    const segments = await store.listObjects("machines/m1/log/");
    assert.ok(segments.length >= 1);
  });

  it("rejects a sequence gap, a bad record, and bad credentials, without disturbing other streams", async () => {
    const w = new Workload(2);
    const good = new AgentStream(client, cs.agentCredential("m2"));
    await good.open("m2");
    await good.send(w.writes(10));

    // Gap: FAILED_PRECONDITION.
    const gap = new AgentStream(client, cs.agentCredential("m3"));
    await gap.open("m3");
    const skipped = new Workload(3).writes(5).slice(2);
    gap.write({ message: { $case: "batch", value: { records: skipped } } });
    await expectStatus(gap.next(), grpc.status.FAILED_PRECONDITION, /sequence gap/);

    // Out of range: OUT_OF_RANGE; nothing of the batch is kept.
    const oor = new AgentStream(client, cs.agentCredential("m4"));
    await oor.open("m4");
    const bad = new Workload(4).writes(3);
    bad[2] = { ...bad[2]!, offset: DISK_SIZE - 10, length: 20, data: randomBytes(20) };
    oor.write({ message: { $case: "batch", value: { records: bad } } });
    await expectStatus(oor.next(), grpc.status.OUT_OF_RANGE, /outside disk/);
    const again = new AgentStream(client, cs.agentCredential("m4"));
    assert.equal(await again.open("m4"), 0, "no record of the rejected batch was kept");
    again.end();

    // Length mismatch and a first message that is not open: INVALID_ARGUMENT.
    const mismatch = new AgentStream(client, cs.agentCredential("m5"));
    await mismatch.open("m5");
    mismatch.write({ message: { $case: "batch", value: { records: [{ ...blank(1), length: 10, data: randomBytes(5) }] } } });
    await expectStatus(mismatch.next(), grpc.status.INVALID_ARGUMENT, /carries 5/);
    const noOpen = new AgentStream(client, cs.agentCredential("m5"));
    noOpen.write({ message: { $case: "batch", value: { records: [] } } });
    await expectStatus(noOpen.next(), grpc.status.INVALID_ARGUMENT, /first message/);

    // A number beyond 2^53 is INVALID_ARGUMENT naming the field, not INTERNAL.
    const huge = new AgentStream(client, cs.agentCredential("m5"));
    await huge.open("m5");
    huge.write({ message: { $case: "batch", value: { records: [{ ...blank(2 ** 60), data: Buffer.alloc(0) }] } } });
    await expectStatus(huge.next(), grpc.status.INVALID_ARGUMENT, /batch\.records\[0\]\.sequence/);

    // Credentials: forged, missing, and another machine's agent.
    const forged = new AgentStream(client, new TestCredentialAuthority().sign("agent/m2"));
    forged.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(forged.next(), grpc.status.UNAUTHENTICATED, /not issued/);
    // Expired, and revoked (the revocation list arrives with the process server's next heartbeat).
    const expired = new AgentStream(client, cs.authority.sign("agent/m2", -1));
    expired.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(expired.next(), grpc.status.UNAUTHENTICATED, /expired at/);
    const revokedCredential = cs.agentCredential("m2");
    cs.revoked.add(peekClaims(revokedCredential)!.jti);
    await waitUntil("the revocation to reach the process server", async () => {
      const code = await unaryCall(client, client.getMachineReplicationStatus, { machineId: "m2" }, revokedCredential).then(
        () => 0,
        (e: grpc.ServiceError) => e.code,
      );
      return code === grpc.status.UNAUTHENTICATED;
    });
    const revoked = new AgentStream(client, revokedCredential);
    revoked.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(revoked.next(), grpc.status.UNAUTHENTICATED, /was revoked/);
    const missing = new AgentStream(client, undefined);
    missing.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(missing.next(), grpc.status.UNAUTHENTICATED, /missing credential/);
    const other = new AgentStream(client, cs.agentCredential("m9"));
    other.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(other.next(), grpc.status.PERMISSION_DENIED, /cannot replicate machine "m2"/);
    await expectStatus(
      unaryCall(client, client.drainMachine, { machineId: "m2", apply: true }, cs.agentCredential("m9")),
      grpc.status.PERMISSION_DENIED,
    );

    // The good stream carried on through all of it.
    assert.equal(await good.send(w.writes(10)), 20);
    good.end();
    await drain("m2");
    for (const d of DISKS) assert.equal(await replicaHash(store, "m2", d.index), sha(w.images[d.index]!));
  });

  it("a revocation cuts the streams opened with that credential: nothing its agent sends afterwards is appended", async () => {
    const w = new Workload(17);
    const credential = cs.agentCredential("m17");
    const agent = new AgentStream(client, credential);
    await agent.open("m17");
    assert.equal(await agent.send(w.writes(10)), 10);
    const bystander = new AgentStream(client, cs.agentCredential("m18"));
    await bystander.open("m18");
    const wb = new Workload(18);
    assert.equal(await bystander.send(wb.writes(5)), 5);

    // Revoked while the stream is open: the next heartbeat brings the list and the stream ends.
    cs.revoked.add(peekClaims(credential)!.jti);
    await expectStatus(agent.next(), grpc.status.UNAUTHENTICATED, /revoked by the configuration server; this stream is closed/);
    // What it sends now goes nowhere; a new stream with the revoked credential is refused.
    agent.write({ message: { $case: "batch", value: { records: w.writes(5) } } });
    const reopened = new AgentStream(client, credential);
    reopened.write({ message: { $case: "open", value: { machineId: "m17", disks: DISKS, resync: false } } });
    await expectStatus(reopened.next(), grpc.status.UNAUTHENTICATED, /was revoked/);
    const { stats } = await unaryCall(client, client.getMachineReplicationStatus, { machineId: "m17" }, cs.agentCredential("m17"));
    assert.equal(stats?.receivedSequence, 10, "nothing after the revocation was appended");

    // Another machine's stream carries on.
    assert.equal(await bystander.send(wb.writes(5)), 10);
    bystander.end();
  });

  it("turns a TAG into an app-consistent point whose snapshots equal the images at the tag", async () => {
    const w = new Workload(5);
    const agent = new AgentStream(client, cs.agentCredential("m6"));
    await agent.open("m6");
    await agent.send([...w.writes(20), ...w.base()]);
    const baseSequence = w.sequence;
    const atBase = w.images.map((img) => sha(img));
    await agent.send(w.writes(20));
    const tag = w.tag("nightly");
    const atTag = w.images.map((img) => sha(img));
    await agent.send([tag, ...w.writes(40)]);
    agent.end();
    await drain("m6");

    const docs = await Promise.all(
      (await store.listObjects(pointsPrefix("m6"))).map(async (o) => JSON.parse((await store.getObject(o.name)).toString()) as PointDocument),
    );
    docs.sort((a, b) => a.sequence - b.sequence);
    assert.equal(docs.length, 2);
    // The end of the initial copy (the BASE records, one per disk) is the machine's first point.
    const base = docs[0]!;
    assert.equal(base.type, "crash-consistent");
    assert.equal(base.base, true);
    assert.equal(base.sequence, baseSequence);
    assert.equal(base.disksCovered, 2);
    for (const d of DISKS) assert.equal(await replicaHash(store, "m6", d.index, base.snapshots[String(d.index)]), atBase[d.index], `disk ${d.index} at the base`);
    const doc = docs[1]!;
    assert.equal(doc.type, "app-consistent");
    assert.equal(doc.sequence, tag.sequence);
    assert.equal(doc.tagName, "nightly");
    assert.equal(doc.disksCovered, 2);
    for (const d of DISKS) {
      assert.equal(await replicaHash(store, "m6", d.index, doc.snapshots[String(d.index)]), atTag[d.index], `disk ${d.index} at the tag`);
      assert.equal(await replicaHash(store, "m6", d.index), sha(w.images[d.index]!), `disk ${d.index} latest`);
    }
    await waitUntil("point reported to the CS", () => cs.points.some((p) => p.recoveryPointId === doc.recoveryPointId));
  });

  it("marks a point taken while earlier writes carried bytes read after it (metadata mode)", async () => {
    const w = new Workload(8);
    const agent = new AgentStream(client, cs.agentCredential("mmeta"));
    await agent.open("mmeta");
    const first = w.writes(5);
    // Write 3 went out in metadata mode: its bytes were read when the agent was at sequence 8.
    first[2] = { ...first[2]!, readAtSequence: 8 };
    const early = w.tag("early");
    const middle = w.writes(3);
    const late = w.tag("late");
    await agent.send([...first, early, ...middle, late]);
    agent.end();
    await drain("mmeta");

    const docs = await Promise.all(
      (await store.listObjects(pointsPrefix("mmeta"))).map(async (o) => JSON.parse((await store.getObject(o.name)).toString()) as PointDocument),
    );
    const byTag = new Map(docs.map((d) => [d.tagName, d]));
    assert.equal(byTag.get("early")?.metadataMode, true, "tag 6 precedes the read at 8");
    assert.ok(!byTag.get("late")?.metadataMode, "tag 10 follows every read");
    await waitUntil("points reported to the CS", () => cs.points.filter((p) => p.machineId === "mmeta").length === 2);
    assert.deepEqual(
      cs.points.filter((p) => p.machineId === "mmeta").map((p) => [p.tagName, p.metadataMode]),
      [
        ["early", true],
        ["late", false],
      ],
    );
  });

  it("serves block checksums of the replica after applying what it holds", async () => {
    const w = new Workload(6);
    const agent = new AgentStream(client, cs.agentCredential("m7"));
    await agent.open("m7");
    const records = w.writes(30);
    // A written block that ends up all zero.
    records.push({ ...blank(++w.sequence), kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 0, length: 65536, data: randomBytes(65536) });
    records.push({ ...blank(++w.sequence), kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 0, length: 65536, data: Buffer.alloc(65536) });
    w.images[0]!.fill(0, 0, 65536);
    await agent.send(records);
    agent.end();

    const blockSize = 64 * 1024;
    const got = new Map<number, string>();
    let total = 0;
    await new Promise<void>((resolve, reject) => {
      const call = client.getBlockChecksums({ machineId: "m7", diskIndex: 0, blockSize, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_UNSPECIFIED, pageSize: 0 }, bearerMetadata(cs.agentCredential("m7")));
      call.on("data", (m: { checksums: { blockIndex: number; digest: Buffer }[]; totalBlocks: number }) => {
        total = m.totalBlocks;
        assert.ok(m.checksums.length <= 1024);
        for (const c of m.checksums) got.set(c.blockIndex, c.digest.toString("hex"));
      });
      call.on("end", resolve);
      call.on("error", reject);
    });
    assert.equal(total, DISK_SIZE / blockSize);
    assert.equal(got.get(0), "", "a written all-zero block has an empty checksum");
    for (let b = 0; b < total; b++) {
      const block = w.images[0]!.subarray(b * blockSize, (b + 1) * blockSize);
      const expected = block.every((x) => x === 0) ? "" : sha(block);
      assert.equal(got.get(b) ?? "", expected, `block ${b}`);
    }
  });

  it("answers XXH3 checksums from its replica checksum map across restarts, and never trusts a stale map", { timeout: 180_000 }, async () => {
    const request = { machineId: "m21", diskIndex: 0, blockSize: 64 * 1024, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128, pageSize: 4096 };
    const checksums = () =>
      new Promise<Map<number, string>>((resolve, reject) => {
        const got = new Map<number, string>();
        const call = client.getBlockChecksums(request, bearerMetadata(cs.agentCredential("m21")));
        call.on("data", (m: { checksums: { blockIndex: number; digest: Buffer; pageDigests: Buffer }[] }) => {
          for (const c of m.checksums) if (c.digest.length > 0) got.set(c.blockIndex, `${c.digest.toString("hex")}/${c.pageDigests.toString("hex")}`);
        });
        call.on("end", () => resolve(got));
        call.on("error", reject);
      });
    const expected = (image: Buffer) => {
      const out = new Map<number, string>();
      for (let b = 0; b < DISK_SIZE / request.blockSize; b++) {
        const block = image.subarray(b * request.blockSize, (b + 1) * request.blockSize);
        const digest = blockDigest(request.algorithm, block);
        if (digest.length > 0) out.set(b, `${digest.toString("hex")}/${pageDigests(request.algorithm, block, request.pageSize).toString("hex")}`);
      }
      return out;
    };
    const send = async (count: number) => {
      const agent = new AgentStream(client, cs.agentCredential("m21"));
      await agent.open("m21");
      await agent.send(w.writes(count));
      agent.end();
      await drain("m21");
    };
    const w = new Workload(21);
    await send(40);
    assert.deepEqual(await checksums(), expected(w.images[0]!));

    // A clean stop persists the map beside the machine state; the restarted server trusts it.
    await restart();
    const mapFile = join(root, "ps", "checksum-maps", "m21", "disk-0.xxh3map");
    const persisted = await readFile(mapFile);
    const blob = replicaBlobName("m21", 0);
    const original = await store.readPages(blob, 0, 65536);
    // Bytes changed behind the applier's back are not seen: the answer came from the map, not a read.
    await store.writePages(blob, 0, randomBytes(65536));
    assert.deepEqual(await checksums(), expected(w.images[0]!));
    await store.writePages(blob, 0, original);

    // More writes, then the file from before them comes back, as after a crash that lost the
    // last save: it covers an older sequence, so the server rebuilds from storage instead.
    await send(40);
    await ps.stop();
    await writeFile(mapFile, persisted);
    ps = newProcessServer();
    await ps.start();
    connect();
    assert.deepEqual(await checksums(), expected(w.images[0]!));
    await restart();
  });

  // Two process-server starts and a drain: slow when the machine is busy, not a hang.
  it("loses nothing acknowledged across a restart", { timeout: 180_000 }, async () => {
    // Slow segment cuts keep the acked writes in the cache when the server stops.
    await restart({ maxDelayMs: 60_000 });
    const w = new Workload(7);
    let agent = new AgentStream(client, cs.agentCredential("m8"));
    await agent.open("m8");
    await agent.send(w.writes(50));
    assert.equal(await agent.send(w.writes(50)), 100);

    // No in-memory hand-off to the applier: it must read every segment back from storage.
    await restart({ applyQueueBytes: 1 });
    const ready = JSON.parse(await readFile(join(root, "ps.ready.json"), "utf8")) as { grpcAddress: string; componentId: string };
    assert.equal(ready.grpcAddress, ps.grpcAddress);
    assert.equal(ready.componentId, "ps-1");
    agent = new AgentStream(client, cs.agentCredential("m8"));
    assert.equal(await agent.open("m8"), 100, "the restarted server still holds every acked write");
    assert.equal(await agent.send(w.writes(50)), 150);
    agent.end();
    const { stats } = await drain("m8");
    assert.equal(stats?.processedSequence, 150);
    for (const d of DISKS) assert.equal(await replicaHash(store, "m8", d.index), sha(w.images[d.index]!));
    // Machines of the earlier tests resumed too.
    const { stats: m2 } = await drain("m2");
    assert.equal(m2?.processedSequence, 20);
    await restart();
  });

  it("stops reading a stream while the cache is above its high-water mark", async () => {
    await restart({ maxDelayMs: 60_000, highWaterBytes: 100_000 });
    const w = new Workload(9);
    const agent = new AgentStream(client, cs.agentCredential("m11"));
    await agent.open("m11");
    const big = [0, 1, 2].map((i) => ({ ...blank(++w.sequence), offset: i * 60_000, length: 50_000, data: randomBytes(50_000) }));
    for (const r of big) r.data.copy(w.images[0]!, r.offset);
    agent.write({ message: { $case: "batch", value: { records: big } } });
    const first = await agent.next();
    assert.ok(first.message?.$case === "ack" && first.message.value.throttled, "the ack asks the agent to slow down");

    const small = w.writes(2);
    agent.write({ message: { $case: "batch", value: { records: small } } });
    const second = agent.next();
    const early = await Promise.race([second.then(() => "acked"), new Promise((r) => setTimeout(() => r("waiting"), 500))]);
    assert.equal(early, "waiting", "nothing more is read while throttled");

    await drain("m11"); // uploads, the cache empties, reading resumes
    const ack = await second;
    assert.ok(ack.message?.$case === "ack");
    assert.equal(ack.message.value.durableSequence, 5);
    assert.equal(ack.message.value.throttled, false);
    agent.end();
    await drain("m11");
    for (const d of DISKS) assert.equal(await replicaHash(store, "m11", d.index), sha(w.images[d.index]!));
    await restart();
  });

  it("keeps acked writes through a storage failure, reports it, and catches up afterwards", async () => {
    const w = new Workload(11);
    const agent = new AgentStream(client, cs.agentCredential("m13"));
    await agent.open("m13");
    // A file where the log folder belongs: every segment upload fails until it is gone.
    const logDir = join(root, "storage", "objects", "machines", "m13", "log");
    await mkdir(join(logDir, ".."), { recursive: true });
    await writeFile(logDir, "in the way");
    assert.equal(await agent.send(w.writes(30)), 30, "writes are acked from the cache while storage fails");
    const status = () => unaryCall(client, client.getMachineReplicationStatus, { machineId: "m13" }, cs.agentCredential("m13"));
    await waitUntil("the failure to show in the machine's health", async () => (await status()).health === Health.HEALTH_CRITICAL);
    const failing = await status();
    assert.match(failing.issues.map((i) => i.message).join("; "), /upload of segment/);
    assert.equal(failing.stats?.uploadedSequence, 0);
    assert.ok((failing.stats?.rpoSeconds ?? 0) > 0);

    await rm(logDir);
    await drain("m13");
    const healed = await status();
    assert.equal(healed.health, Health.HEALTH_NORMAL);
    assert.equal(healed.stats?.processedSequence, 30);
    for (const d of DISKS) assert.equal(await replicaHash(store, "m13", d.index), sha(w.images[d.index]!));
    agent.end();
  });

  it("makes crash-consistent points on the policy's cadence and reports heartbeats", async () => {
    const policy = everySecond("fast", 3600);
    const w = new Workload(8);
    const agent = new AgentStream(client, cs.agentCredential("m10"));
    await agent.open("m10");
    await agent.send([...w.writes(10), ...w.base(), ...w.writes(8)]);
    await drain("m10");
    await assign("c1", "m10", policy);
    assert.ok(cs.results.find((r) => r.commandId === "c1")?.success);
    await waitUntil("a crash-consistent point", async () => (await store.listObjects(pointsPrefix("m10"))).length > 1, 10_000);
    const [, info] = await store.listObjects(pointsPrefix("m10"));
    const doc = JSON.parse((await store.getObject(info!.name)).toString()) as PointDocument;
    assert.equal(doc.type, "crash-consistent");
    assert.equal(doc.sequence, 20);
    assert.equal(doc.base, undefined);
    for (const d of DISKS) assert.equal(await replicaHash(store, "m10", d.index, doc.snapshots[String(d.index)]), sha(w.images[d.index]!));

    // No new writes: the next rounds make no new point.
    await new Promise((r) => setTimeout(r, 2_200));
    assert.equal((await store.listObjects(pointsPrefix("m10"))).length, 2);
    agent.end();

    await waitUntil("a heartbeat reporting m10", () =>
      cs.heartbeats.some((h) => h.machines.some((m) => m.machineId === "m10" && m.stats?.processedSequence === 20)),
    );
  });

  it("takes no point before a disk's copy completes, and covers a disk from its BASE on", async () => {
    const policy = everySecond("fast", 3600);
    const w = new Workload(11);
    const agent = new AgentStream(client, cs.agentCredential("m14"));
    await agent.open("m14");
    await assign("c14", "m14", policy);
    const pointsOf = async () =>
      (await Promise.all((await store.listObjects(pointsPrefix("m14"))).map(async (o) => JSON.parse((await store.getObject(o.name)).toString()) as PointDocument))).sort(
        (a, b) => a.sequence - b.sequence,
      );

    // Mid initial copy: the cadence passes, but a point now would hold half-copied disks.
    await agent.send(w.writes(10));
    await drain("m14");
    await new Promise((r) => setTimeout(r, 2_200));
    assert.deepEqual(await pointsOf(), []);

    // Disk 0's copy completes (disk 1 is a disk added later, still copying): 1 of 2 disks.
    await agent.send(w.base([0]));
    const disk0Base = w.sequence;
    await drain("m14");
    await waitUntil("the base point", async () => (await pointsOf()).length === 1);
    const [base] = await pointsOf();
    assert.equal(base!.sequence, disk0Base);
    assert.equal(base!.base, true);
    assert.deepEqual([base!.disksCovered, base!.disksTotal, Object.keys(base!.snapshots)], [1, 2, ["0"]]);

    await agent.send([...w.writes(5), ...w.base([1])]);
    const disk1Base = w.sequence;
    await drain("m14");
    await waitUntil("the point of disk 1's base", async () => (await pointsOf()).some((p) => p.sequence === disk1Base));
    const covering = (await pointsOf()).find((p) => p.sequence === disk1Base)!;
    assert.deepEqual([covering.disksCovered, covering.disksTotal], [2, 2]);
    for (const d of DISKS) assert.equal(await replicaHash(store, "m14", d.index, covering.snapshots[String(d.index)]), sha(w.images[d.index]!), `disk ${d.index}`);
    agent.end();
  });

  it("prunes points and segments outside the retention window, keeping the newest point", async () => {
    const policy = everySecond("short", 2);
    const w = new Workload(10);
    const agent = new AgentStream(client, cs.agentCredential("m12"));
    await agent.open("m12");
    await assign("c2", "m12", policy);
    // Retention runs meanwhile: a point listed may be gone by the time it is read.
    const pointsOf = async () =>
      (
        await Promise.all(
          (await store.listObjects(pointsPrefix("m12"))).map(async (o) =>
            store.getObject(o.name).then(
              (b) => [JSON.parse(b.toString()) as PointDocument],
              () => [],
            ),
          ),
        )
      ).flat();

    await agent.send([...w.writes(18), ...w.base()]);
    await drain("m12");
    await waitUntil("the first point", async () => (await pointsOf()).some((p) => p.sequence === 20));
    await agent.send(w.writes(20));
    await drain("m12");
    const latest = w.images.map((img) => sha(img));
    await waitUntil("the second point", async () => (await pointsOf()).some((p) => p.sequence === 40));

    // Nothing new is written: the first point ages out, the newest stays however old it gets.
    await waitUntil("the first point to be pruned", async () => (await pointsOf()).every((p) => p.sequence !== 20), 10_000);
    await waitUntil("segments up to the kept point to be pruned", async () => (await store.listObjects("machines/m12/log/")).length === 0, 10_000);
    const kept = await pointsOf();
    assert.deepEqual(kept.map((p) => p.sequence), [40]);
    // Recovery can tell a pruned write from one before the base.
    const record = JSON.parse((await store.getObject("machines/m12/retention.json")).toString()) as { prunedThroughSequence: number; retentionSeconds: number; prunedAt: string };
    assert.equal(record.prunedThroughSequence, 39);
    assert.equal(record.retentionSeconds, 2);
    assert.ok(Date.now() - Date.parse(record.prunedAt) < 60_000);
    for (const d of DISKS) assert.equal(await replicaHash(store, "m12", d.index, kept[0]!.snapshots[String(d.index)]), latest[d.index]);

    // Segments after the oldest kept point stay until a newer point covers them.
    await agent.send(w.writes(5));
    await drain("m12");
    assert.ok((await store.listObjects("machines/m12/log/")).length > 0);
    agent.end();
  });
});
