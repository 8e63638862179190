import type * as grpc from "@grpc/grpc-js";
import { checksumRequest } from "../common/blockhash/index.js";
import type { CredentialVerifier } from "../common/credentials/index.js";
import { ErrorCode, SrlabError, toSrlabError } from "../common/errors/index.js";
import { unary } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type {
  ApplyWritesRequest,
  ApplyWritesResponse,
  MasterTargetServiceGetBlockChecksumsRequest,
  MasterTargetServiceGetBlockChecksumsResponse,
  MasterTargetServiceServer,
  TargetPoint,
} from "../proto/index.js";
import { blockChecksums } from "./block-checksums.js";
import { failStream } from "../common/grpc/index.js";
import { authorize } from "./caller.js";
import type { MachineTarget } from "./machine-target.js";
import type { MasterTargetMetrics } from "./metrics.js";
import type { TargetRegistry } from "./target-registry.js";

/** Largest checksum block: bigger blocks would hold that much memory per call. */
const MAX_BLOCK_BYTES = 64 * 1024 * 1024;

export interface ServiceContext {
  targets: TargetRegistry;
  /** The deployment's credential key, once registered. */
  /** Checks callers against the configuration server's public key and revocation list. */
  verifier: CredentialVerifier;
  metrics: MasterTargetMetrics;
  logger: Logger;
  defaultBlockBytes: number;
}

export function masterTargetService(ctx: ServiceContext): MasterTargetServiceServer {
  const { targets, metrics, logger } = ctx;
  const auth = (call: { metadata: grpc.Metadata }) => authorize(call.metadata, ctx.verifier);

  return {
    prepareTarget: unary(logger, async (request, call) => {
      const subject = auth(call);
      const target = await targets.prepare(request);
      metrics.appliedSequence.set({ machine_id: target.machineId }, target.appliedSequence);
      logger.info("PrepareTarget", { by: subject, machineId: target.machineId, appliedSequence: target.appliedSequence });
      return { disks: target.disks };
    }),

    getBlockChecksums: (call) => {
      sendChecksums(call).then(
        () => call.end(),
        (err: unknown) => failStream(call, err, logger),
      );
    },

    applyWrites: (call) => {
      runApplyWrites(call).then(
        () => call.end(),
        (err: unknown) => failStream(call, err, logger),
      );
    },

    getTargetStatus: unary(logger, async (request, call) => {
      auth(call);
      const target = targets.require(request.machineId);
      return { appliedSequence: target.appliedSequence, disks: target.disks, points: target.points };
    }),

    restorePoint: unary(logger, async (request, call) => {
      const subject = auth(call);
      const target = targets.require(request.machineId);
      if (!request.pointId) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "point_id is required");
      const { appliedSequence, blocks } = await target.restore(request.pointId);
      metrics.appliedSequence.set({ machine_id: target.machineId }, appliedSequence);
      logger.info("images restored to a recovery point", { by: subject, machineId: target.machineId, pointId: request.pointId, appliedSequence, blocks });
      return { appliedSequence, blocksRestored: blocks };
    }),
  };

  async function sendChecksums(
    call: grpc.ServerWritableStream<MasterTargetServiceGetBlockChecksumsRequest, MasterTargetServiceGetBlockChecksumsResponse>,
  ): Promise<void> {
    auth(call);
    const request = call.request;
    const target = targets.require(request.machineId);
    const disk = target.disk(request.diskIndex);
    if (!disk) throw new SrlabError(ErrorCode.DISK_NOT_FOUND, `machine ${request.machineId} has no target disk ${request.diskIndex}`);
    const blockSize = request.blockSize || ctx.defaultBlockBytes;
    if (blockSize > MAX_BLOCK_BYTES) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `block_size ${blockSize} is larger than the ${MAX_BLOCK_BYTES}-byte maximum`);
    }
    const wanted = checksumRequest({ ...request, blockSize });
    const totalBlocks = Math.ceil(disk.sizeBytes / blockSize);
    let sent = false;
    for await (const checksums of blockChecksums(disk.imagePath, disk.sizeBytes, wanted)) {
      if (call.cancelled) return;
      if (!call.write({ checksums, totalBlocks })) await drained(call);
      sent = true;
    }
    if (!sent) call.write({ checksums: [], totalBlocks });
  }

  async function runApplyWrites(call: grpc.ServerDuplexStream<ApplyWritesRequest, ApplyWritesResponse>): Promise<void> {
    auth(call);
    const { claims } = ctx.verifier.verify(call.metadata);
    // A revocation cuts the stream at once, even while no batch is in flight.
    const unsubscribe = ctx.verifier.onRevoked((ids) => {
      if (ids.has(claims.jti)) failStream(call, new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `credential ${claims.jti} was revoked by the configuration server; this stream is closed`), logger);
    });
    let target: MachineTarget | undefined;
    // Points the target makes while this stream is open travel on it (with the durable position).
    const onPoint = (point: TargetPoint) => {
      if (target) call.write({ durableSequence: target.appliedSequence, points: [point] });
    };
    try {
      // Keep the call alive when the loop ends early: the status still has to be sent on it.
      for await (const request of call.iterator({ destroyOnReturn: false }) as AsyncIterable<ApplyWritesRequest>) {
        const message = request.message;
        ctx.verifier.recheck(claims);
        if (message?.$case === "open") {
          if (target) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "the stream is already open; send open only once");
          target = targets.require(message.value.machineId);
          target.setPolicy({
            crashConsistentMs: message.value.crashConsistentFrequencySeconds * 1000,
            retentionMs: message.value.retentionSeconds * 1000,
          });
          target.on("point", onPoint);
          // The first answer tells the sender where to resume, and which points exist.
          call.write({ durableSequence: target.appliedSequence, points: target.points });
          continue;
        }
        if (message?.$case !== "batch") throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "every ApplyWrites message needs open or batch");
        if (!target) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "send open{machine_id} before the first batch");
        const machine = target.machineId;
        let outcome: Awaited<ReturnType<MachineTarget["apply"]>>;
        try {
          outcome = await target.apply(message.value.records);
        } catch (err) {
          metrics.rejectedBatches.inc({ machine_id: machine, code: toSrlabError(err).code });
          throw err;
        }
        metrics.appliedRecords.inc({ machine_id: machine }, outcome.records);
        metrics.appliedBytes.inc({ machine_id: machine }, outcome.bytes);
        metrics.appliedSequence.set({ machine_id: machine }, outcome.durableSequence);
        call.write({ durableSequence: outcome.durableSequence, points: outcome.points });
      }
    } catch (err) {
      // A sender that went away ends the stream; nothing to report to it.
      if (call.cancelled) return;
      throw err;
    } finally {
      unsubscribe();
      target?.off("point", onPoint);
    }
  }
}

function drained(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("close", done);
      resolve();
    };
    call.once("drain", done);
    call.once("close", done);
  });
}
