import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { describe, it } from "vitest";
import { peekClaims } from "../common/credentials/index.js";
import { unaryCall } from "../common/grpc/index.js";
import { Health, type WriteRecord } from "../proto/index.js";
import { blank, DISK_SIZE, DISKS, expectStatus, replicaHash, sha, useProcessServer, Workload } from "./support/process-server-harness.js";
import { TestCredentialAuthority } from "./support/test-credentials.js";
import { waitUntil } from "./support/wait.js";

// The process server's intake: streams, credentials, the cache's durability and flow control.
// Points, checksums and retention are in process-server-points.test.ts.
describe("process server", () => {
  const h = useProcessServer();

  it("replicates random writes byte-exactly, ignoring retransmitted sequences", async () => {
    const w = new Workload(1);
    const agent = h.agent(h.cs.agentCredential("m1"));
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

    const { stats } = await h.drain("m1");
    assert.equal(stats?.receivedSequence, 500);
    assert.equal(stats?.uploadedSequence, 500);
    assert.equal(stats?.processedSequence, 500);
    assert.equal(stats?.rpoSeconds, 0);
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m1", d.index), sha(w.images[d.index]!), `disk ${d.index}`);
    const segments = await h.store.listObjects("machines/m1/log/");
    assert.ok(segments.length >= 1);
  });

  it("rejects a sequence gap, a bad record, and bad credentials, without disturbing other streams", async () => {
    const w = new Workload(2);
    const good = h.agent(h.cs.agentCredential("m2"));
    await good.open("m2");
    await good.send(w.writes(10));

    // Gap: FAILED_PRECONDITION.
    const gap = h.agent(h.cs.agentCredential("m3"));
    await gap.open("m3");
    const skipped = new Workload(3).writes(5).slice(2);
    gap.write({ message: { $case: "batch", value: { records: skipped } } });
    await expectStatus(gap.next(), grpc.status.FAILED_PRECONDITION, /sequence gap/);

    // Out of range: OUT_OF_RANGE; nothing of the batch is kept.
    const oor = h.agent(h.cs.agentCredential("m4"));
    await oor.open("m4");
    const bad = new Workload(4).writes(3);
    bad[2] = { ...bad[2]!, offset: DISK_SIZE - 10, length: 20, data: randomBytes(20) };
    oor.write({ message: { $case: "batch", value: { records: bad } } });
    await expectStatus(oor.next(), grpc.status.OUT_OF_RANGE, /outside disk/);
    const again = h.agent(h.cs.agentCredential("m4"));
    assert.equal(await again.open("m4"), 0, "no record of the rejected batch was kept");
    again.end();

    // Length mismatch and a first message that is not open: INVALID_ARGUMENT.
    const mismatch = h.agent(h.cs.agentCredential("m5"));
    await mismatch.open("m5");
    mismatch.write({ message: { $case: "batch", value: { records: [{ ...blank(1), length: 10, data: randomBytes(5) }] } } });
    await expectStatus(mismatch.next(), grpc.status.INVALID_ARGUMENT, /carries 5/);
    const noOpen = h.agent(h.cs.agentCredential("m5"));
    noOpen.write({ message: { $case: "batch", value: { records: [] } } });
    await expectStatus(noOpen.next(), grpc.status.INVALID_ARGUMENT, /first message/);

    // A number beyond 2^53 is INVALID_ARGUMENT naming the field, not INTERNAL.
    const huge = h.agent(h.cs.agentCredential("m5"));
    await huge.open("m5");
    huge.write({ message: { $case: "batch", value: { records: [{ ...blank(2 ** 60), data: Buffer.alloc(0) }] } } });
    await expectStatus(huge.next(), grpc.status.INVALID_ARGUMENT, /batch\.records\[0\]\.sequence/);

    // Credentials: forged, missing, and another machine's agent.
    const forged = h.agent(new TestCredentialAuthority().sign("agent/m2"));
    forged.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(forged.next(), grpc.status.UNAUTHENTICATED, /not issued/);
    // Expired, and revoked (the revocation list arrives with the process server's next heartbeat).
    const expired = h.agent(h.cs.authority.sign("agent/m2", -1));
    expired.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(expired.next(), grpc.status.UNAUTHENTICATED, /expired at/);
    const revokedCredential = h.cs.agentCredential("m2");
    h.cs.revoked.add(peekClaims(revokedCredential)!.jti);
    await waitUntil("the revocation to reach the process server", async () => {
      const code = await unaryCall(h.client, h.client.getMachineReplicationStatus, { machineId: "m2" }, revokedCredential).then(
        () => 0,
        (e: grpc.ServiceError) => e.code,
      );
      return code === grpc.status.UNAUTHENTICATED;
    });
    const revoked = h.agent(revokedCredential);
    revoked.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(revoked.next(), grpc.status.UNAUTHENTICATED, /was revoked/);
    const missing = h.agent(undefined);
    missing.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(missing.next(), grpc.status.UNAUTHENTICATED, /missing credential/);
    const other = h.agent(h.cs.agentCredential("m9"));
    other.write({ message: { $case: "open", value: { machineId: "m2", disks: DISKS, resync: false } } });
    await expectStatus(other.next(), grpc.status.PERMISSION_DENIED, /cannot replicate machine "m2"/);
    await expectStatus(
      unaryCall(h.client, h.client.drainMachine, { machineId: "m2", apply: true }, h.cs.agentCredential("m9")),
      grpc.status.PERMISSION_DENIED,
    );

    // The good stream carried on through all of it.
    assert.equal(await good.send(w.writes(10)), 20);
    good.end();
    await h.drain("m2");
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m2", d.index), sha(w.images[d.index]!));
  });

  it("a revocation cuts the streams opened with that credential: nothing its agent sends afterwards is appended", async () => {
    const w = new Workload(17);
    const credential = h.cs.agentCredential("m17");
    const agent = h.agent(credential);
    await agent.open("m17");
    assert.equal(await agent.send(w.writes(10)), 10);
    const bystander = h.agent(h.cs.agentCredential("m18"));
    await bystander.open("m18");
    const wb = new Workload(18);
    assert.equal(await bystander.send(wb.writes(5)), 5);

    // Revoked while the stream is open: the next heartbeat brings the list and the stream ends.
    h.cs.revoked.add(peekClaims(credential)!.jti);
    await expectStatus(agent.next(), grpc.status.UNAUTHENTICATED, /revoked by the configuration server; this stream is closed/);
    // What it sends now goes nowhere; a new stream with the revoked credential is refused.
    agent.write({ message: { $case: "batch", value: { records: w.writes(5) } } });
    const reopened = h.agent(credential);
    reopened.write({ message: { $case: "open", value: { machineId: "m17", disks: DISKS, resync: false } } });
    await expectStatus(reopened.next(), grpc.status.UNAUTHENTICATED, /was revoked/);
    const { stats } = await unaryCall(h.client, h.client.getMachineReplicationStatus, { machineId: "m17" }, h.cs.agentCredential("m17"));
    assert.equal(stats?.receivedSequence, 10, "nothing after the revocation was appended");

    // Another machine's stream carries on.
    assert.equal(await bystander.send(wb.writes(5)), 10);
    bystander.end();
  });

  // Two process-server starts and a drain: slow when the machine is busy, not a hang.
  it("loses nothing acknowledged across a restart", { timeout: 180_000 }, async () => {
    // Slow segment cuts keep the acked writes in the cache when the server stops.
    await h.restart({ maxDelayMs: 60_000 });
    const w = new Workload(7);
    let agent = h.agent(h.cs.agentCredential("m8"));
    await agent.open("m8");
    await agent.send(w.writes(50));
    assert.equal(await agent.send(w.writes(50)), 100);

    // No in-memory hand-off to the applier: it must read every segment back from storage.
    await h.restart({ applyQueueBytes: 1 });
    const ready = JSON.parse(await readFile(join(h.root, "ps.ready.json"), "utf8")) as { grpcAddress: string; componentId: string };
    assert.equal(ready.grpcAddress, h.ps.grpcAddress);
    assert.equal(ready.componentId, "ps-1");
    agent = h.agent(h.cs.agentCredential("m8"));
    assert.equal(await agent.open("m8"), 100, "the restarted server still holds every acked write");
    assert.equal(await agent.send(w.writes(50)), 150);
    agent.end();
    const { stats } = await h.drain("m8");
    assert.equal(stats?.processedSequence, 150);
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m8", d.index), sha(w.images[d.index]!));
    // Machines of the earlier tests resumed too.
    const { stats: m2 } = await h.drain("m2");
    assert.equal(m2?.processedSequence, 20);
    await h.restart();
  });

  it("stops reading a stream while the cache is above its high-water mark", async () => {
    await h.restart({ maxDelayMs: 60_000, highWaterBytes: 100_000 });
    const w = new Workload(9);
    const agent = h.agent(h.cs.agentCredential("m11"));
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

    await h.drain("m11"); // uploads, the cache empties, reading resumes
    const ack = await second;
    assert.ok(ack.message?.$case === "ack");
    assert.equal(ack.message.value.durableSequence, 5);
    assert.equal(ack.message.value.throttled, false);
    agent.end();
    await h.drain("m11");
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m11", d.index), sha(w.images[d.index]!));
    await h.restart();
  });

  it("keeps acked writes through a storage failure, reports it, and catches up afterwards", async () => {
    const w = new Workload(11);
    const agent = h.agent(h.cs.agentCredential("m13"));
    await agent.open("m13");
    // A file where the log folder belongs: every segment upload fails until it is gone.
    const logDir = join(h.root, "storage", "objects", "machines", "m13", "log");
    await mkdir(join(logDir, ".."), { recursive: true });
    await writeFile(logDir, "in the way");
    assert.equal(await agent.send(w.writes(30)), 30, "writes are acked from the cache while storage fails");
    const status = () => unaryCall(h.client, h.client.getMachineReplicationStatus, { machineId: "m13" }, h.cs.agentCredential("m13"));
    await waitUntil("the failure to show in the machine's health", async () => (await status()).health === Health.HEALTH_CRITICAL);
    const failing = await status();
    assert.match(failing.issues.map((i) => i.message).join("; "), /upload of segment/);
    assert.equal(failing.stats?.uploadedSequence, 0);
    assert.ok((failing.stats?.rpoSeconds ?? 0) > 0);

    await rm(logDir);
    await h.drain("m13");
    const healed = await status();
    assert.equal(healed.health, Health.HEALTH_NORMAL);
    assert.equal(healed.stats?.processedSequence, 30);
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m13", d.index), sha(w.images[d.index]!));
    agent.end();
  });
});
