import type { Logger } from "../common/logger.js";
import { isUsableMachineId } from "../common/storage-layout/index.js";
import {
  type AdoptMachineResult,
  type CommandResult,
  type MachineHandover,
  type ReleaseMachineResult,
  ReleaseMode,
  ReplicationDirection,
  type WatchCommandsResponse,
} from "../proto/index.js";
import type { DiskCache } from "./cache/index.js";
import { factsOf, handoverOf } from "./machine-handover.js";
import type { MachinePipelines } from "./machine-pipelines.js";
import type { MachineRegistry } from "./machine-registry.js";
import { Machine } from "./machine.js";

/** What the configuration server's commands change in the process server. */
export interface CommandHost {
  /** The server's name, for messages. */
  readonly name: string;
  readonly logger: Logger;
  readonly cache: DiskCache;
  readonly registry: MachineRegistry;
  readonly pipelines: MachinePipelines;
  /** Aborted when the server stops (a handover drain gives up). */
  readonly signal: AbortSignal;
  componentId(): string;
  /** Ends the machine's Replicate stream, if one is open. */
  closeStream(machineId: string, reason: string): void;
  /** Drops the machine's metric series. */
  forgetSeries(machineId: string): Promise<void>;
  /** Deletes the machine's replica checksum maps (they describe a replica this server no longer applies to). */
  forgetChecksumMaps(machineId: string): Promise<void>;
}

/** Carries out one command from the configuration server; answers with the result of the command's kind. */
export async function handleCommand(host: CommandHost, command: WatchCommandsResponse): Promise<CommandResult | undefined> {
  const c = command.command;
  switch (c?.$case) {
    case "assignment": {
      const a = c.value;
      if (!isUsableMachineId(a.machineId)) throw new Error(`machine id "${a.machineId}" is not usable`);
      // Assigned here again (protection re-enabled, or switched back): streams are welcome.
      host.pipelines.welcome(a.machineId);
      const pipeline = await host.pipelines.ensure(a.machineId);
      await pipeline.assign(a);
      const epoch = pipeline.machine.epochs.current;
      const direction =
        epoch.direction === "to-on-premises" ? ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES : ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE;
      return {
        kind: {
          $case: "assignment",
          value: { machineId: a.machineId, processServerAddress: "", nextSequence: 0, policy: a.policy?.name ?? "", direction, directionAfterSequence: epoch.startsAfter },
        },
      };
    }
    case "releaseMachine":
      return { kind: { $case: "releaseMachine", value: await releaseMachine(host, c.value.machineId, c.value.mode) } };
    case "adoptMachine": {
      if (!c.value.handover) throw new Error("adopt names no machine");
      return { kind: { $case: "adoptMachine", value: await adoptMachine(host, c.value.handover) } };
    }
    default:
      throw new Error(`process server does not handle command ${c?.$case ?? "(empty)"}`);
  }
}

/**
 * Lets go of a machine: its stream is closed and refused from now on; in handover mode every
 * record in the cache (everything acknowledged, and whatever arrived unacknowledged) is uploaded
 * and applied first. Then the pipeline stops and the cache, registry file and metric series of
 * the machine go: it is no longer reported anywhere.
 */
async function releaseMachine(host: CommandHost, machineId: string, mode: ReleaseMode): Promise<ReleaseMachineResult> {
  if (mode !== ReleaseMode.RELEASE_MODE_HANDOVER && mode !== ReleaseMode.RELEASE_MODE_DISCARD) throw new Error("release needs a mode");
  const { cache, pipelines, logger } = host;
  const pipeline = pipelines.get(machineId);
  pipelines.refuse(machineId);
  host.closeStream(machineId, `machine ${machineId} is being released by process server ${host.name}`);
  if (!pipeline) {
    await forget(host, machineId);
    return { machineId, known: false, lastSequence: 0, uploadedSequence: 0, handover: undefined };
  }
  const machine = pipeline.machine;
  // An append in flight finishes under the lock; the stream is gone, so nothing follows it.
  const last = await machine.appendLock.run(async () => cache.lastSequence(machineId));
  let handover: MachineHandover | undefined;
  if (mode === ReleaseMode.RELEASE_MODE_HANDOVER) {
    if (machine.failingBack) throw new Error(`machine ${machineId} fails back through this process server; it cannot be handed over`);
    logger.info("draining machine for handover", { machineId, throughSequence: last });
    await pipelines.drain(machine, true, host.signal);
    await machine.save();
    handover = handoverOf(machine.facts(), host.componentId());
  }
  pipelines.remove(machineId);
  await pipeline.stop();
  await forget(host, machineId);
  logger.info("machine released", { machineId, mode: ReleaseMode[mode], uploadedSequence: machine.uploaded.value });
  return { machineId, known: true, lastSequence: last, uploadedSequence: machine.uploaded.value, handover };
}

/** The machine's cache, registry file, checksum maps and metric series go. */
async function forget(host: CommandHost, machineId: string): Promise<void> {
  await host.cache.forget(machineId);
  await host.registry.remove(machineId);
  await host.forgetChecksumMaps(machineId);
  await host.forgetSeries(machineId);
}

/** Takes a machine another process server drained: its stream continues after the handed-over sequence. */
async function adoptMachine(host: CommandHost, handover: MachineHandover): Promise<AdoptMachineResult> {
  const { cache, pipelines } = host;
  const machineId = handover.machineId;
  if (!isUsableMachineId(machineId)) throw new Error(`machine id "${machineId}" is not usable`);
  const existing = pipelines.get(machineId);
  if (existing) {
    if (cache.lastSequence(machineId) > handover.uploadedSequence) {
      throw new Error(`process server ${host.name} already holds machine ${machineId} beyond sequence ${handover.uploadedSequence}`);
    }
    pipelines.remove(machineId);
    await existing.stop();
  }
  const facts = factsOf(handover);
  await cache.forget(machineId);
  // Another process server applied to the replica since any map of ours was written.
  await host.forgetChecksumMaps(machineId);
  await cache.setBaseSequence(machineId, facts.uploadedSequence);
  const machine = new Machine(facts, host.registry);
  // Everything up to here is uploaded and applied (the old process server drained it).
  machine.processed.advance(facts.uploadedSequence);
  await machine.save();
  pipelines.welcome(machineId);
  pipelines.start(machine);
  host.logger.info("machine adopted", { machineId, from: handover.fromProcessServerId, continuesAfter: facts.uploadedSequence });
  return { machineId, continuesAfter: facts.uploadedSequence };
}
