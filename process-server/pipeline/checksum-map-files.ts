import { rm } from "node:fs/promises";
import { join } from "node:path";
import { isUsableMachineId } from "../../common/storage-layout/index.js";

/** Where a machine's replica checksum maps are persisted: `<root>/<machine id>/disk-<index>.xxh3map`. */
export function checksumMapPath(root: string, machineId: string, diskIndex: number): string {
  return join(root, machineId, `disk-${diskIndex}.xxh3map`);
}

/**
 * Deletes every checksum map of a machine. Called when the process server lets go of the machine
 * and when it meets one for the first time: a map describes the replica only while this server
 * alone applies to it, so one left from an earlier protection must never be trusted.
 */
export async function removeChecksumMaps(root: string, machineId: string): Promise<void> {
  // The id names a directory removed recursively: nothing but a plain machine id may get here.
  if (!isUsableMachineId(machineId)) throw new Error(`machine id "${machineId}" is not usable`);
  await rm(join(root, machineId), { recursive: true, force: true });
}
