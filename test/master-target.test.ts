import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sourceUrl, TS_CHILD_ARGS } from "./support/dist.js";
import { afterAll, beforeAll, describe, test } from "vitest";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { unaryCall } from "../common/grpc/index.js";
import { TestCredentialAuthority } from "./support/test-credentials.js";
import { silentLogger } from "../common/logger.js";
import { MasterTarget, masterTargetOptions } from "../master-target/index.js";
import { ComponentRole, MasterTargetServiceClient, type TargetDisk } from "../proto/index.js";
import { patternBytes, sha256File } from "./support/images.js";
import { StubConfigServer } from "./support/stub-config-server.js";
import { ApplyStream, digest, getChecksums, randomWrites, record, ReferenceDisks, referenceChecksums, rejectsWith } from "./support/master-target-streams.js";
import { waitUntil } from "./support/wait.js";

const PASSPHRASE = "master-target-test-passphrase";
const KiB = 1024;
const MiB = 1024 * KiB;

describe("master target", () => {
  let cs: StubConfigServer;
  let dir: string;
  let dataDir: string;
  let mt: MasterTarget;
  let client: MasterTargetServiceClient;
  let ps: string;
  let admin: string;

  const options = (extra: Record<string, unknown> = {}) =>
    masterTargetOptions.parse({
      dataDir,
      insecure: true,
      configServer: { address: cs.address, passphrase: PASSPHRASE },
      heartbeatIntervalMs: 100,
      ...extra,
    });

  const startMt = async () => {
    mt = new MasterTarget(options({ readyFile: join(dir, "mt.ready") }), silentLogger());
    await mt.start();
    client?.close();
    client = new MasterTargetServiceClient(mt.grpcAddress, grpc.credentials.createInsecure());
  };

  const prepare = (request: { machineId: string; disks: TargetDisk[]; alternateLocation: boolean; datastore?: string }, credential = ps) =>
    unaryCall(client, client.prepareTarget, { datastore: "", ...request }, credential);

  const status = (machineId: string, credential = ps) => unaryCall(client, client.getTargetStatus, { machineId }, credential);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "srlab-mt-"));
    dataDir = join(dir, "data");
    cs = new StubConfigServer(join(dir, "storage"), { passphrase: PASSPHRASE, freshIds: true });
    await cs.start();
    ps = cs.authority.sign("process-server/ps-azure");
    admin = cs.authority.sign("admin");
    await startMt();
  });

  afterAll(async () => {
    client?.close();
    await mt?.stop();
    await cs?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("registers as a master target, heartbeats, reports SERVING and writes its ready file", async () => {
    const reg = cs.registrations.at(-1)!;
    assert.equal(reg.role, ComponentRole.COMPONENT_ROLE_MASTER_TARGET);
    assert.equal(reg.address, mt.grpcAddress);
    await waitUntil("a heartbeat", async () => cs.heartbeats.length > 0, 5_000, 50);
    const ready = JSON.parse(await readFile(join(dir, "mt.ready"), "utf8"));
    assert.deepEqual(ready, { pid: process.pid, grpcAddress: mt.grpcAddress, metricsUrl: mt.metricsUrl, componentId: mt.componentId });

    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } } };
    };
    const health = new pkg.grpc.health.v1.Health(mt.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client & {
      check(req: { service: string }, cb: (err: grpc.ServiceError | null, res: { status: string }) => void): void;
    };
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      health.check({ service: "srlab.v1.MasterTargetService" }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    health.close();
    assert.equal(res.status, "SERVING");
  });

  test("refuses callers that are not process servers or the admin", async () => {
    await rejectsWith(status("any", ""), grpc.status.UNAUTHENTICATED, /missing credential/);
    const forged = new TestCredentialAuthority().sign("process-server/ps-azure");
    await rejectsWith(status("any", forged), grpc.status.UNAUTHENTICATED, /not issued by this deployment/);
    await rejectsWith(status("any", `${ps}x`), grpc.status.UNAUTHENTICATED, /not issued/);
    const agent = cs.authority.sign("agent/m-1");
    await rejectsWith(status("any", agent), grpc.status.PERMISSION_DENIED, /agent\/m-1 may not use the master target/);
    await rejectsWith(
      prepare({ machineId: "m-x", disks: [{ diskIndex: 0, sizeBytes: MiB, imagePath: "" }], alternateLocation: true }, agent),
      grpc.status.PERMISSION_DENIED,
      /only process servers, the configuration server and the admin may/,
    );
    const stream = new ApplyStream(client, agent);
    await rejectsWith(stream.open("m-x"), grpc.status.PERMISSION_DENIED, /may not use/);
    // The admin may look; an unknown machine is a clear NOT_FOUND.
    await rejectsWith(status("nobody", admin), grpc.status.NOT_FOUND, /no failback target.*PrepareTarget first/);
    assert.equal(existsSync(join(mt.datastore, "m-x-disk-0.img")), false, "a refused call creates nothing");
  });

  test("original location: checks the images and returns checksums equal to a local reference", async () => {
    const size = 5 * MiB + 1000; // a short last block
    const image = Buffer.alloc(size);
    patternBytes(MiB, 1).copy(image, 0);
    patternBytes(300 * KiB, 2).copy(image, 3 * MiB + 17);
    image.fill(7, size - 500);
    const path = join(dir, "orig-0.img");
    await writeFile(path, image);

    await rejectsWith(
      prepare({ machineId: "orig", disks: [{ diskIndex: 0, sizeBytes: size, imagePath: join(dir, "missing.img") }], alternateLocation: false }),
      grpc.status.NOT_FOUND,
      /missing\.img does not exist/,
    );
    await rejectsWith(
      prepare({ machineId: "orig", disks: [{ diskIndex: 0, sizeBytes: size + 512, imagePath: path }], alternateLocation: false }),
      grpc.status.FAILED_PRECONDITION,
      new RegExp(`is ${size} bytes but the disk is ${size + 512} bytes`),
    );
    await rejectsWith(
      prepare({ machineId: "../evil", disks: [{ diskIndex: 0, sizeBytes: size, imagePath: path }], alternateLocation: false }),
      grpc.status.INVALID_ARGUMENT,
      /machine_id/,
    );

    const res = await prepare({ machineId: "orig", disks: [{ diskIndex: 0, sizeBytes: size, imagePath: path }], alternateLocation: false });
    assert.deepEqual(res.disks, [{ diskIndex: 0, sizeBytes: size, imagePath: path }]);

    for (const blockSize of [4 * KiB, 64 * KiB]) {
      const messages = await getChecksums(client, ps, "orig", 0, blockSize);
      const expected = referenceChecksums(image, blockSize);
      assert.ok(messages.every((m) => m.checksums.length <= 1024 && m.totalBlocks === expected.length));
      assert.equal(digest(messages.flatMap((m) => m.checksums)), digest(expected));
      if (blockSize === 4 * KiB) assert.equal(messages.length, 2, "1281 blocks travel in two messages");
    }
    await rejectsWith(getChecksums(client, ps, "orig", 3, 4096), grpc.status.NOT_FOUND, /no target disk 3/);
  });

  test("alternate location: sparse images in the datastore, random writes give the reference image", async () => {
    const sizes = { 0: 4 * MiB, 1: 2 * MiB };
    const res = await prepare({
      machineId: "alt",
      alternateLocation: true,
      disks: [
        { diskIndex: 0, sizeBytes: sizes[0], imagePath: "" },
        { diskIndex: 1, sizeBytes: sizes[1], imagePath: "ignored" },
      ],
    });
    assert.deepEqual(
      res.disks.map((d) => d.imagePath),
      [join(mt.datastore, "alt-disk-0.img"), join(mt.datastore, "alt-disk-1.img")],
    );
    for (const d of res.disks) {
      const info = await stat(d.imagePath);
      assert.equal(info.size, d.sizeBytes);
      assert.ok(info.blocks * 512 < d.sizeBytes, "the new image is sparse");
    }
    const empty = await getChecksums(client, ps, "alt", 1, MiB);
    assert.deepEqual(
      empty.flatMap((m) => m.checksums).map((c) => c.digest.length),
      [0, 0],
    );

    const reference = new ReferenceDisks(sizes);
    const stream = new ApplyStream(client, ps);
    assert.equal(await stream.open("alt"), 0);
    const writes = randomWrites(400, 0, sizes, 7);
    for (let i = 0; i < writes.length; i += 37) {
      const batch = writes.slice(i, i + 37);
      assert.equal(await stream.send(batch), batch.at(-1)!.sequence);
      for (const r of batch) reference.apply(r);
    }
    stream.close();
    for (const d of res.disks) assert.equal(await sha256File(d.imagePath), reference.sha(d.diskIndex), `disk ${d.diskIndex}`);
    assert.equal((await status("alt")).appliedSequence, 400);

    // Checksums after the writes agree with the reference too.
    const after = await getChecksums(client, ps, "alt", 0, 64 * KiB);
    assert.equal(digest(after.flatMap((m) => m.checksums)), digest(referenceChecksums(reference.disks.get(0)!, 64 * KiB)));

    const metrics = await (await fetch(mt.metricsUrl)).text();
    assert.match(metrics, /^srlab_mt_applied_sequence\{machine_id="alt",component="master-target"\} 400$/m);
    assert.match(metrics, /^srlab_mt_applied_records_total\{machine_id="alt",component="master-target"\} 400$/m);

    // Preparing the same layout again resumes instead of starting over.
    const again = await prepare({ machineId: "alt", alternateLocation: true, disks: res.disks });
    assert.deepEqual(again.disks, res.disks);
    assert.equal((await status("alt")).appliedSequence, 400);
    assert.equal(await sha256File(res.disks[0]!.imagePath), reference.sha(0));

    // Someone else's file at the alternate location is never overwritten.
    await mkdir(join(dir, "other-store"), { recursive: true });
    await writeFile(join(dir, "other-store", "busy-disk-0.img"), "precious");
    await rejectsWith(
      prepare({ machineId: "busy", alternateLocation: true, datastore: join(dir, "other-store"), disks: [{ diskIndex: 0, sizeBytes: MiB, imagePath: "" }] }),
      grpc.status.FAILED_PRECONDITION,
      /already exists/,
    );
    assert.equal(await readFile(join(dir, "other-store", "busy-disk-0.img"), "utf8"), "precious");
  });

  test("duplicates are skipped, gaps and bad records are refused without touching the image", async () => {
    const size = MiB;
    const path = join(dir, "strict-0.img");
    await writeFile(path, Buffer.alloc(size));
    await prepare({ machineId: "strict", alternateLocation: false, disks: [{ diskIndex: 0, sizeBytes: size, imagePath: path }] });
    const reference = new ReferenceDisks({ 0: size });
    const first = [record(1, 0, 0, patternBytes(4096, 1)), record(2, 0, 8192, patternBytes(512, 2))];
    let stream = new ApplyStream(client, ps);
    assert.equal(await stream.open("strict"), 0);
    assert.equal(await stream.send(first), 2);
    for (const r of first) reference.apply(r);

    // A retransmitted batch changes nothing, even with different (stale) payloads.
    assert.equal(await stream.send([record(1, 0, 0, patternBytes(4096, 99)), record(2, 0, 8192, patternBytes(512, 98))]), 2);
    // Overlapping: the held part is skipped, the rest applied.
    const overlap = [record(2, 0, 8192, patternBytes(512, 97)), record(3, 0, 100_000, patternBytes(1024, 3))];
    assert.equal(await stream.send(overlap), 3);
    reference.apply(overlap[1]!);
    assert.equal(await sha256File(path), reference.sha(0));

    await rejectsWith(stream.send([record(5, 0, 0, patternBytes(512, 5))]), grpc.status.FAILED_PRECONDITION, /sequence gap.*applied up to 3.*is 5/);

    stream = new ApplyStream(client, ps);
    assert.equal(await stream.open("strict"), 3);
    await rejectsWith(
      stream.send([record(4, 0, 0, patternBytes(512, 4)), record(5, 0, size - 512, patternBytes(1024, 5))]),
      grpc.status.OUT_OF_RANGE,
      /record 5: bytes .* lie outside disk 0/,
    );
    stream = new ApplyStream(client, ps);
    assert.equal(await stream.open("strict"), 3);
    await rejectsWith(stream.send([record(4, 2, 0, patternBytes(512, 4))]), grpc.status.NOT_FOUND, /disk 2 is not part/);
    stream = new ApplyStream(client, ps);
    await rejectsWith(stream.send([record(4, 0, 0, patternBytes(512, 4))]), grpc.status.INVALID_ARGUMENT, /send open/);
    stream = new ApplyStream(client, ps);
    await rejectsWith(stream.open("unprepared"), grpc.status.NOT_FOUND, /PrepareTarget first/);

    // Nothing of the refused batches reached the image.
    assert.equal(await sha256File(path), reference.sha(0));
    assert.equal((await status("strict")).appliedSequence, 3);
    const metrics = await (await fetch(mt.metricsUrl)).text();
    assert.match(metrics, /srlab_mt_rejected_batches_total\{machine_id="strict",code="BROKEN_CHAIN",component="master-target"\} 1/);
  });

  test("a restarted master target resumes at the persisted sequence", async () => {
    const sizes = { 0: 2 * MiB };
    const path = join(dir, "resume-0.img");
    const initial = patternBytes(sizes[0], 42);
    await writeFile(path, initial);
    await prepare({ machineId: "resume", alternateLocation: false, disks: [{ diskIndex: 0, sizeBytes: sizes[0], imagePath: path }] });
    const reference = new ReferenceDisks(sizes, { 0: initial });
    const writes = randomWrites(300, 0, sizes, 11);
    const stream = new ApplyStream(client, ps);
    await stream.open("resume");
    assert.equal(await stream.send(writes.slice(0, 150)), 150);
    for (const r of writes.slice(0, 150)) reference.apply(r);
    stream.cancel();

    const firstId = mt.componentId;
    await mt.stop();
    await startMt();
    assert.notEqual(mt.componentId, firstId, "registered again");
    assert.equal((await status("resume")).appliedSequence, 150);
    const resumed = new ApplyStream(client, ps);
    assert.equal(await resumed.open("resume"), 150);
    // The sender replays from an older point: the held part is skipped.
    assert.equal(await resumed.send(writes.slice(100, 220)), 220);
    assert.equal(await resumed.send(writes.slice(220)), 300);
    resumed.close();
    for (const r of writes.slice(150)) reference.apply(r);
    assert.equal(await sha256File(path), reference.sha(0));
  });

  // The child's start alone may take its 120 s on a busy machine (tsx compiles the sources).
  test("killed mid-stream (SIGKILL), it loses nothing it acked", { timeout: 240_000 }, async () => {
    const sizes = { 0: 4 * MiB, 1: MiB };
    const killDir = join(dir, "killed");
    const readyFile = join(killDir, "ready.json");
    await mkdir(killDir, { recursive: true });
    const entry = sourceUrl("master-target/index.ts");
    const flags = {
      dataDir: join(killDir, "data"),
      insecure: true,
      readyFile,
      configServer: { address: cs.address, passphrase: PASSPHRASE },
      log: { level: "error" },
    };
    const script = `import { runMasterTarget } from ${JSON.stringify(entry)}; await runMasterTarget(undefined, ${JSON.stringify(flags)});`;
    const child: ChildProcess = spawn(process.execPath, [...TS_CHILD_ARGS, "-e", script], { stdio: ["ignore", "ignore", "inherit"] });
    try {
      // Generous: the child compiles the sources through tsx before it starts (slow on a busy machine).
      const ready = await waitUntil("the child master target", async () => JSON.parse(await readFile(readyFile, "utf8")) as { grpcAddress: string }, 120_000, 50);
      const childClient = new MasterTargetServiceClient(ready.grpcAddress, grpc.credentials.createInsecure());
      const res = await unaryCall(childClient, childClient.prepareTarget, {
        machineId: "crash",
        alternateLocation: true,
        datastore: "",
        disks: [
          { diskIndex: 0, sizeBytes: sizes[0], imagePath: "" },
          { diskIndex: 1, sizeBytes: sizes[1], imagePath: "" },
        ],
      }, ps);
      const writes = randomWrites(3000, 0, sizes, 23);
      const stream = new ApplyStream(childClient, ps);
      await stream.open("crash");
      // Pipeline batches without waiting, and kill while acks are still coming.
      let acked = 0;
      const pending: Promise<number>[] = [];
      for (let i = 0; i < writes.length; i += 25) {
        const p = stream.send(writes.slice(i, i + 25));
        p.catch(() => undefined); // the ones after the kill fail; only the loop below looks at them
        pending.push(p);
      }
      for (const p of pending) {
        try {
          acked = await p;
        } catch {
          break;
        }
        if (acked >= 1000 && child.exitCode === null) child.kill("SIGKILL");
      }
      childClient.close();
      await new Promise((r) => (child.exitCode !== null || child.signalCode ? r(undefined) : child.once("exit", r)));
      assert.ok(acked >= 1000 && acked < 3000, `killed mid-stream after ack ${acked}`);

      // The same state directory in-process resumes at or after the last ack. The images may hold
      // part of the batch that was in flight at the kill; the replay from the resumed point
      // overwrites it in order, so the result must equal the reference exactly.
      const revived = new MasterTarget(masterTargetOptions.parse({ ...flags, readyFile: undefined, log: undefined }), silentLogger());
      await revived.start();
      try {
        const c = new MasterTargetServiceClient(revived.grpcAddress, grpc.credentials.createInsecure());
        const resumeAt = (await unaryCall(c, c.getTargetStatus, { machineId: "crash" }, ps)).appliedSequence;
        assert.ok(resumeAt >= acked, `resumes at ${resumeAt}, acked ${acked}`);

        const s = new ApplyStream(c, ps);
        assert.equal(await s.open("crash"), resumeAt);
        assert.equal(await s.send(writes.slice(acked)), 3000);
        s.close();
        const final = new ReferenceDisks(sizes);
        for (const r of writes) final.apply(r);
        for (const d of res.disks) assert.equal(await sha256File(d.imagePath), final.sha(d.diskIndex));
        c.close();
      } finally {
        await revived.stop();
      }
    } finally {
      if (child.exitCode === null && !child.signalCode) child.kill("SIGKILL");
    }
  });
});
