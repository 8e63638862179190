import type * as grpc from "@grpc/grpc-js";
import { checksumRequest } from "../common/blockhash/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { serverStream, unary } from "../common/grpc/index.js";
import type { BlobStore } from "../common/storage/index.js";
import type {
  DrainMachineRequest,
  DrainMachineResponse,
  GetBlockChecksumsRequest,
  GetBlockChecksumsResponse,
  GetMachineReplicationStatusRequest,
  GetMachineReplicationStatusResponse,
  ProcessServiceServer,
  ReplicationStats,
} from "../proto/index.js";
import { callerSubject, requireMachineReader } from "./caller-auth.js";
import { blockChecksums } from "./checksums.js";
import type { Machine } from "./machine.js";
import type { MasterTargetSink } from "./pipeline/index.js";
import type { ReplicationHost, ReplicationService } from "./intake/index.js";
import { replicaBlobName } from "../common/storage-layout/index.js";

/** Largest block the checksum resync may ask for. */
const MAX_BLOCK_SIZE = 64 * 1024 * 1024;

export interface ProcessServiceHost extends ReplicationHost {
  store(): BlobStore;
  /** NOT_FOUND for a machine this process server never replicated. */
  machine(machineId: string): Machine;
  /** Waits until everything durable now is uploaded (and applied with `apply`). */
  drain(machine: Machine, apply: boolean, signal: AbortSignal): Promise<void>;
  stats(machine: Machine): ReplicationStats;
  /** The master target a failing-back machine is applied to (undefined otherwise). */
  masterTarget(machine: Machine): MasterTargetSink | undefined;
  status(machine: Machine): Omit<GetMachineReplicationStatusResponse, "stats">;
}

/** The grpc-js implementation of srlab.v1.ProcessService. */
export function processServiceImplementation(host: ProcessServiceHost, replication: ReplicationService): ProcessServiceServer {
  const { logger } = host;
  const authorize = (metadata: grpc.Metadata, machineId: string): Machine => {
    if (!machineId) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "machine_id is required");
    requireMachineReader(callerSubject(metadata, host.verifier()), machineId);
    return host.machine(machineId);
  };

  return {
    replicate: replication.replicate,

    getBlockChecksums: serverStream<GetBlockChecksumsRequest, GetBlockChecksumsResponse>(logger, async (req, call) => {
      const machine = authorize(call.metadata, req.machineId);
      const disk = machine.disk(req.diskIndex);
      if (!disk) throw new SrlabError(ErrorCode.DISK_NOT_FOUND, `machine ${machine.id} has no disk ${req.diskIndex}`);
      if (req.blockSize <= 0 || req.blockSize > MAX_BLOCK_SIZE) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `block_size must be between 1 and ${MAX_BLOCK_SIZE} bytes, got ${req.blockSize}`);
      }
      const request = checksumRequest(req);
      const signal = cancelSignal(call);
      await host.drain(machine, true, signal);
      // Failing back, the disk to compare with is the on-premises image: relay its checksums.
      const target = host.masterTarget(machine);
      const messages = target
        ? target.checksums(disk.index, request, signal)
        : blockChecksums(host.store(), replicaBlobName(machine.id, disk.index), disk.sizeBytes, request, machine.checksumMaps.get(disk.index));
      for await (const msg of messages) {
        if (call.cancelled) return;
        if (!call.write(msg)) await new Promise((r) => call.once("drain", r));
      }
    }),

    drainMachine: unary<DrainMachineRequest, DrainMachineResponse>(logger, async (req, call) => {
      const machine = authorize(call.metadata, req.machineId);
      await host.drain(machine, req.apply, cancelSignal(call));
      return { stats: host.stats(machine) };
    }),

    getMachineReplicationStatus: unary<GetMachineReplicationStatusRequest, GetMachineReplicationStatusResponse>(logger, (req, call) => {
      const machine = authorize(call.metadata, req.machineId);
      return { stats: host.stats(machine), ...host.status(machine) };
    }),
  };
}

/** Aborts when the caller goes away, so a drain waiting on a stalled upload does not linger. */
function cancelSignal(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): AbortSignal {
  const controller = new AbortController();
  if (call.cancelled) controller.abort(new SrlabError(ErrorCode.UNAVAILABLE, "caller cancelled"));
  call.on("cancelled", () => controller.abort(new SrlabError(ErrorCode.UNAVAILABLE, "caller cancelled")));
  return controller.signal;
}
