import assert from "node:assert/strict";
import { describe } from "vitest";
import { NbdClient } from "../common/nbd/index.js";
import { createBlobStore } from "../common/storage/index.js";
import { MobilityAgent } from "../mobility-agent/index.js";
import { type Disk, SiteLocation } from "../proto/index.js";
import { ASSIGNMENT, FakeProcessServer, until } from "./support/fake-process-server.js";
import { test } from "./support/fixtures.js";
import { StubConfigServer } from "./support/stub-config-server.js";
import { KiB, logger, MiB, pattern } from "./support/local-machine.js";

const TIMEOUT = { timeout: 30_000 };
const blobName = (i: number) => `machines/m1/failover/disk-${i}`;

// The agent with location azure; the page-blob disks under it are tested in azure-agent.test.ts.
const PASSPHRASE = "azure-agent-test";
/** The credential subject the stub hands the Azure agent of machine m1. */
const AGENT_SUBJECT = "agent/m1/azure";

function azureAgent(cs: StubConfigServer, dataDir: string, ps?: FakeProcessServer): MobilityAgent {
  return new MobilityAgent(
    {
      name: "web-01",
      dataDir,
      location: "azure",
      insecure: true,
      configServer: { address: cs.address, passphrase: PASSPHRASE },
      listen: { host: "127.0.0.1", port: 0 },
      metrics: { host: "127.0.0.1", port: 0 },
      heartbeatIntervalMs: 50,
      retry: { timeUnitMs: 5 },
    },
    { logger, connectProcessServer: ps ? () => ps : undefined },
  );
}

describe("azure agent daemon", () => {
  test("refuses to start while the configuration server names no Azure disks", TIMEOUT, async ({ tempDir }) => {
    const cs = new StubConfigServer(tempDir(), { passphrase: PASSPHRASE, agent: { machineId: "m1" } });
    await cs.start();
    try {
      const agent = azureAgent(cs, tempDir());
      await assert.rejects(agent.start(), /names no Azure disks for machine "web-01"/);
      assert.equal(cs.registrations[0]?.location, SiteLocation.SITE_LOCATION_AZURE);
      assert.equal(cs.registrations[0]?.name, "web-01");
    } finally {
      await cs.stop();
    }
  });

  test("serves the failed-over page blobs, reports them, and replicates their writes", TIMEOUT, async ({ tempDir }) => {
    const storageDir = tempDir();
    const store = createBlobStore({ kind: "directory", directory: storageDir, fsync: false });
    await store.init();
    const sizes = [MiB, 512 * KiB];
    for (const [i, s] of sizes.entries()) await store.createPageBlob(blobName(i), s);
    await store.writePages(blobName(1), 0, pattern(4 * KiB, 5));
    const disks: Disk[] = sizes.map((sizeBytes, index) => ({
      diskId: `web-01-disk${index}`,
      index,
      sizeBytes,
      imagePath: "",
      nbdUri: "",
      nbdUnixUri: "",
      addedAtSequence: 0,
      blobName: blobName(index),
    }));
    const cs = new StubConfigServer(storageDir, { passphrase: PASSPHRASE, agent: { machineId: "m1", azureDisks: disks } });
    await cs.start();
    const ps = new FakeProcessServer(sizes.map((s) => Buffer.alloc(s)));
    const agent = azureAgent(cs, tempDir(), ps);
    try {
      await agent.start();
      assert.equal(agent.machineId, "m1");
      assert.deepEqual(cs.registrations[0]?.disks, [], "an Azure agent learns its disks from the configuration server");

      await until("heartbeat with disks", () => cs.heartbeats.some((h) => h.machines[0]?.disks.length === 2));
      const reported = cs.heartbeats.find((h) => h.machines[0]?.disks.length === 2)!.machines[0]!.disks;
      assert.deepEqual(
        reported.map((d) => [d.index, d.blobName, d.sizeBytes, d.imagePath]),
        sizes.map((s, i) => [i, blobName(i), s, ""]),
      );
      assert.deepEqual(
        reported.map((d) => d.nbdUri),
        agent.nbdUris.map((u) => u.uri),
      );

      const port = Number(new URL(agent.nbdUris[1]!.uri).port);
      const client = await NbdClient.connect({ host: "127.0.0.1", port }, "disk1");
      assert.ok((await client.read(0, 4 * KiB)).equals(pattern(4 * KiB, 5)), "NBD serves the failed-over blob");

      await cs.command(AGENT_SUBJECT, { commandId: "c1", jobId: "", command: { $case: "assignment", value: { ...ASSIGNMENT, direction: 2 } } });
      assert.equal(cs.results[0]!.success, true, cs.results[0]!.error);
      await client.write(1000, pattern(3000, 6));
      await until("write replicated", () => ps.received.length === 1);
      assert.deepEqual([ps.received[0]!.diskIndex, ps.received[0]!.offset, ps.received[0]!.length], [1, 1000, 3000]);

      await cs.command(AGENT_SUBJECT, { commandId: "c2", jobId: "", command: { $case: "stopWrites", value: { machineId: "m1", drain: true } } });
      await assert.rejects(client.write(0, pattern(512, 7)), /EPERM|not permitted|writes stopped/i);
      await client.close();
      assert.ok(ps.replicas[1]!.subarray(1000, 4000).equals(pattern(3000, 6)));
      assert.ok((await store.readPages(blobName(1), 1000, 3000)).equals(pattern(3000, 6)), "the write reached the page blob");
    } finally {
      await agent.stop();
      await cs.stop();
      await store.close();
    }
  });
});
