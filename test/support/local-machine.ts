import { join } from "node:path";
import { silentLogger } from "../../common/logger.js";
import { LocalMachine } from "../../mobility-agent/index.js";
import type { WriteRecord } from "../../proto/index.js";

// A mobility agent's local machine on image files, and the bytes the agent tests write to it.

export const logger = silentLogger();
export const KiB = 1024;
export const MiB = 1024 * KiB;

export function openMachine(dataDir: string, options: { disks?: number[]; memoryBudgetBytes?: number; metadataBudgetBytes?: number } = {}): LocalMachine {
  const sizes = options.disks ?? [4 * MiB];
  return LocalMachine.open({
    dataDir,
    disks: sizes.map((sizeBytes, i) => ({ path: join(dataDir, `disk${i}.img`), sizeBytes })),
    memoryBudgetBytes: options.memoryBudgetBytes ?? 64 * MiB,
    metadataBudgetBytes: options.metadataBudgetBytes,
    logger,
  });
}

/** A byte pattern without zeros, different per seed. */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff || 1;
  return b;
}

/** Everything captured and not yet sent, as one batch. */
export function batchOf(machine: LocalMachine): WriteRecord[] {
  return machine.capture.nextBatch(64 * MiB, 64 * MiB) ?? [];
}
