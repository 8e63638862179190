import { deserializeSummary, hashDisk } from "../common/blockhash/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { type DiskCheck, ReplicationState, type VerifyResult, VerifyTarget } from "../proto/index.js";
import { proofsFromAgent } from "./agent-proofs.js";
import { resultOf } from "./command-outcome.js";
import type { CommandBus } from "./command-bus.js";
import type { ConfigStore } from "./store/index.js";

export interface FailbackProofContext {
  store: ConfigStore;
  bus: CommandBus;
  blobs: BlobStore;
  /** How long the on-premises agent gets to answer. */
  timeoutMs: number;
}

/**
 * The proof of a failback: each on-premises disk equals the Azure disk it came back from. The
 * Azure disks (the failed-over page blobs, kept until the failback is committed) are hashed
 * from storage; the on-premises agent gives the fingerprint of its images from the hash trees it
 * rebuilt when the machine started again. A difference names the byte ranges, from the agent's
 * tree summary. Comparing these two rather than reading the images here keeps the configuration
 * server off the on-premises disks, which may be on another host.
 */
export async function verifyFailback(ctx: FailbackProofContext, machineRef: string): Promise<VerifyResult> {
  const { store, bus, blobs } = ctx;
  const machine = store.getMachine(machineRef);
  if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${machineRef}" (see srlab status)`);
  const azure = machine.failover?.disks ?? [];
  if (machine.state !== ReplicationState.REPLICATION_STATE_FAILED_BACK || azure.length === 0) {
    throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} has not failed back (or the failback is committed and its Azure disks are gone)`);
  }
  if (!bus.isConnected(machine.agentComponentId)) {
    throw new SrlabError(ErrorCode.UNAVAILABLE, `the on-premises agent of ${machine.name} is not connected; it gives the fingerprint of the on-premises disks`);
  }
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    bus.send(machine.agentComponentId, "", { $case: "fingerprintDisks", value: { machineId: machine.machineId } }),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ctx.timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  if (!outcome) throw new SrlabError(ErrorCode.UNAVAILABLE, `the on-premises agent of ${machine.name} did not give its disks' fingerprints within ${ctx.timeoutMs / 1000} s`);
  const fingerprinted = resultOf(outcome, "fingerprintDisks", `fingerprint of ${machine.name}'s on-premises disks`);
  const sequence = fingerprinted.sequence;
  const onPremises = proofsFromAgent(fingerprinted.proofs);
  const checks: DiskCheck[] = [];
  for (const d of azure) {
    const local = onPremises.find((p) => p.diskIndex === d.index);
    if (!local) {
      checks.push({ index: d.index, source: d.blobName, expected: "", actual: "", ok: false, ranges: [] });
      continue;
    }
    // The Azure disk is a fixed VHD (the disk rounded up to a MiB, then a footer): the disk
    // itself is its first sizeBytes bytes.
    const tree = await hashDisk(local.sizeBytes, (offset, length) => blobs.readPages(d.blobName, offset, length), { pageSize: local.pageSize });
    const expected = tree.fingerprint();
    const ok = expected === local.fingerprint;
    checks.push({ index: d.index, source: d.blobName, expected, actual: local.fingerprint, ok, ranges: ok ? [] : tree.diffSummary(deserializeSummary(local.summary)) });
  }
  return { machine: machine.name, target: VerifyTarget.VERIFY_TARGET_FAILED_BACK, sequence, recoveryPointId: "", ok: checks.every((c) => c.ok), disks: checks };
}

/** The fingerprint of each Azure disk of a machine (its failed-over page blobs) as it is now. */
export async function azureFingerprints(ctx: Pick<FailbackProofContext, "store" | "blobs">, machineRef: string): Promise<Array<{ index: number; fingerprint: string }>> {
  const machine = ctx.store.getMachine(machineRef);
  if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${machineRef}" (see srlab status)`);
  const sizes = new Map(machine.disks.map((d) => [d.index, d.sizeBytes]));
  const out: Array<{ index: number; fingerprint: string }> = [];
  for (const d of machine.failover?.disks ?? []) {
    const size = sizes.get(d.index) ?? 0;
    const tree = await hashDisk(size, (offset, length) => ctx.blobs.readPages(d.blobName, offset, length));
    out.push({ index: d.index, fingerprint: tree.fingerprint() });
  }
  return out;
}

/** The Azure side of a full-cycle rehearsal (config-server/plans/rehearsal.ts). */
export function rehearsalAzure(ctx: FailbackProofContext) {
  return {
    running: (machine: string) => {
      const m = ctx.store.getMachine(machine);
      return Boolean(m?.azureAgentComponentId && ctx.bus.isConnected(m.azureAgentComponentId) && m.azureDisks.length > 0);
    },
    fingerprints: (machine: string) => azureFingerprints(ctx, machine),
    verifyFailback: (machine: string) => verifyFailback(ctx, machine),
  };
}
