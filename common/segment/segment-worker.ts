// Entry of a segment worker thread (see segment-workers.ts): seals and opens segments.
import { ownedBuffer, serveWorkerTasks } from "../async/worker-pool.js";
import { openSegment, type SegmentTask, sealSegment } from "./seal.js";

serveWorkerTasks((task: SegmentTask) => {
  const out = ownedBuffer(task.op === "seal" ? sealSegment(task) : openSegment(task).raw);
  return { result: out, transfer: [out.buffer] };
});
