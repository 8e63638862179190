// A worker entry for the WorkerPool tests: echoes, throws or dies on request.
import { threadId } from "node:worker_threads";
import { asBuffer, ownedBuffer, serveWorkerTasks } from "../../common/async/worker-pool.js";

type Task = { op: "reverse"; bytes: Uint8Array } | { op: "throw"; message: string } | { op: "exit" } | { op: "thread"; spinMs: number };

serveWorkerTasks((task: Task) => {
  switch (task.op) {
    case "reverse": {
      const out = ownedBuffer(Buffer.from(asBuffer(task.bytes)).reverse());
      return { result: out, transfer: [out.buffer] };
    }
    case "throw":
      throw new RangeError(task.message);
    case "exit":
      process.exit(3);
      break;
    case "thread": {
      const until = Date.now() + task.spinMs;
      while (Date.now() < until);
      return { result: threadId };
    }
  }
  return { result: undefined };
});
