import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test, vi } from "vitest";
import { BlockHashTree, serializeSummary } from "../common/blockhash/index.js";
import { silentLogger } from "../common/logger.js";
import { failoverDiskName } from "../common/storage-layout/index.js";
import { createBlobStore } from "../common/storage/index.js";
import type { CommandBus, CommandOutcome } from "../config-server/command-bus.js";
import { verifyFailback } from "../config-server/failback-proofs.js";
import { ConfigStore } from "../config-server/store/index.js";
import { VerifyJobs } from "../config-server/verify-jobs.js";
import { resultDocument } from "../cli/commands/job-result.js";
import { ComponentRole, type Job, JobState, ReplicationState, SiteLocation, VerifyTarget } from "../proto/index.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-verify-failed-back-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SIZE = 1024 * 1024;

/** The on-premises agent's answer to FingerprintDisks for these images (as mobility-agent/disk-fingerprint.ts gives it). */
function agentProofs(images: Buffer[]) {
  return images.map((img, index) => {
    const tree = new BlockHashTree({ sizeBytes: img.length });
    for (let p = 0; p < tree.pageCount; p++) tree.setPage(p, img.subarray(p * tree.pageSize, (p + 1) * tree.pageSize));
    return { index, sizeBytes: img.length, pageSize: tree.pageSize, fingerprint: tree.fingerprint(), summary: serializeSummary(tree.summary()) };
  });
}

/** A failed-back machine whose Azure disks are page blobs in directory storage and whose agent answers with `onPremises`. */
async function lab(onPremises: (azure: Buffer[]) => Buffer[], state = ReplicationState.REPLICATION_STATE_FAILED_BACK) {
  const store = ConfigStore.open(join(dir, `${Math.random().toString(36).slice(2)}.db`), { timeUnitSeconds: 1 });
  const blobs = createBlobStore({ kind: "directory", directory: join(dir, `storage-${Math.random().toString(36).slice(2)}`) });
  await blobs.init();
  const agent = store.registerComponent({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm1", address: "vm1:1", location: SiteLocation.SITE_LOCATION_ON_PREMISES, version: "1", credentialHash: "h" });
  const m = store.upsertMachine({ name: "vm1", agentComponentId: agent.componentId });
  const azure = [randomBytes(SIZE), randomBytes(SIZE)];
  const disks = azure.map((_, index) => ({ diskId: `d${index}`, index, sizeBytes: SIZE, imagePath: "", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: failoverDiskName(m.machineId, index) }));
  store.setMachineDisks(m.machineId, disks.map((d) => ({ ...d, blobName: "" })));
  for (const [i, bytes] of azure.entries()) {
    await blobs.createPageBlob(disks[i]!.blobName, SIZE);
    await blobs.writePages(disks[i]!.blobName, 0, bytes);
  }
  store.updateMachine(m.machineId, {
    state,
    failover: { recoveryPointId: "p1", sequence: 40, test: false, network: "", ipAddress: "", requestedAt: new Date(), completedAt: new Date(), achievedRpoSeconds: 0, rtoSeconds: 0, description: "", disks, jobId: "" },
  });
  const sent: string[] = [];
  const bus = {
    isConnected: (id: string) => id === agent.componentId,
    send: async (id: string, _job: string, command: { $case: string }) => {
      sent.push(`${id} ${command.$case}`);
      const outcome: CommandOutcome = {
        success: true,
        error: "",
        result: { kind: { $case: "fingerprintDisks", value: { sequence: 77, proofs: agentProofs(onPremises(azure)) } } },
      };
      return outcome;
    },
  } as unknown as CommandBus;
  const verify = new VerifyJobs({ store, blobs, logger: silentLogger(), failedBack: (ref) => verifyFailback({ store, bus, blobs, timeoutMs: 5_000 }, ref) });
  const ended = async (jobId: string) =>
    vi.waitFor(
      () => {
        const job = store.getJob(jobId)!;
        expect([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED]).toContain(job.state);
        return job;
      },
      { timeout: 10_000, interval: 20 },
    );
  return { store, blobs, verify, azure, sent, ended, machineId: m.machineId, close: async () => { store.close(); await blobs.close(); } };
}

/** The verify job's result as srlab verify --json shows it. */
const verifyDoc = (job: Job) =>
  resultDocument(job.result) as { machine: string; target: string; sequence: number; ok: boolean; disks: Array<{ index: number; ok: boolean; ranges: Array<{ offset: number; length: number }> }> };

describe("srlab verify --failed-back", () => {
  test("on-premises disks equal to the Azure disks they came back from pass, one check per disk", async () => {
    const l = await lab(((azure: Buffer[]) => azure));
    try {
      const job = await l.ended(l.verify.verify("vm1", VerifyTarget.VERIFY_TARGET_FAILED_BACK).jobId);
      expect(job.error).toBe("");
      expect(JobState[job.state]).toBe("JOB_STATE_SUCCEEDED");
      const result = verifyDoc(job);
      expect(result).toMatchObject({ machine: "vm1", target: "failed-back disks", sequence: 77, ok: true });
      expect(result.disks.map((d: { index: number; ok: boolean }) => [d.index, d.ok])).toEqual([[0, true], [1, true]]);
      expect(l.sent).toHaveLength(1);
      expect(l.sent[0]).toMatch(/ fingerprintDisks$/);
    } finally {
      await l.close();
    }
  });

  test("an on-premises disk that differs fails the job and names the disk and the byte range", async () => {
    const l = await lab(((azure: Buffer[]) => {
      const changed = Buffer.from(azure[1]!);
      changed.fill(0xee, 512 * 1024, 512 * 1024 + 4096);
      return [azure[0]!, changed];
    }));
    try {
      const job = await l.ended(l.verify.verify("vm1", VerifyTarget.VERIFY_TARGET_FAILED_BACK).jobId);
      expect(JobState[job.state]).toBe("JOB_STATE_FAILED");
      expect(job.error).toMatch(/^vm1: on-premises disk 1 differs from its Azure disk: /);
      const result = verifyDoc(job);
      expect(result.ok).toBe(false);
      const bad = result.disks.find((d: { index: number }) => d.index === 1)!;
      expect(bad.ok).toBe(false);
      expect(bad.ranges.length).toBeGreaterThan(0);
      for (const r of bad.ranges) expect(r.offset <= 512 * 1024 && r.offset + r.length >= 512 * 1024 + 4096).toBe(true);
      expect(result.disks.find((d: { index: number }) => d.index === 0)!.ok).toBe(true);
    } finally {
      await l.close();
    }
  });

  test("a machine that has not failed back is refused at once, with no job", async () => {
    const l = await lab(((azure: Buffer[]) => azure), ReplicationState.REPLICATION_STATE_FAILOVER_COMMITTED);
    try {
      const before = l.store.listJobs().length;
      expect(() => l.verify.verify("vm1", VerifyTarget.VERIFY_TARGET_FAILED_BACK)).toThrow(/vm1 has not failed back \(it is REPLICATION_STATE_FAILOVER_COMMITTED\)/);
      expect(l.store.listJobs()).toHaveLength(before);
      expect(l.sent).toEqual([]);
    } finally {
      await l.close();
    }
  });
});
