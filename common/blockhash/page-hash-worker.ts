// Entry of a page-hash worker thread (see page-hash-workers.ts): leaf hashes of a range of an
// image file, computed as BlockHashTree.hashPage does on the main thread.
import { closeSync, openSync } from "node:fs";
import { ownedBuffer, serveWorkerTasks } from "../async/worker-pool.js";
import { readIntoSync } from "../fs/index.js";
import { BlockHashTree } from "./block-hash-tree.js";
import type { PageHashTask } from "./page-hash-workers.js";

const hashers = new Map<number, BlockHashTree>();

serveWorkerTasks((task: PageHashTask) => {
  let hasher = hashers.get(task.pageSize);
  if (!hasher) {
    // An empty tree is only used for its hashPage (and its cached hash of a zero page).
    hasher = new BlockHashTree({ sizeBytes: 0, pageSize: task.pageSize });
    hashers.set(task.pageSize, hasher);
  }
  const data = Buffer.allocUnsafe(task.end - task.start);
  const fd = openSync(task.path, "r");
  try {
    readIntoSync(fd, data, task.start);
  } finally {
    closeSync(fd);
  }
  const pages = Math.ceil(data.length / task.pageSize);
  const leaves = ownedBuffer(Buffer.allocUnsafe(pages * hasher.hashBytes));
  for (let p = 0; p < pages; p++) {
    hasher.hashPage(data.subarray(p * task.pageSize, Math.min((p + 1) * task.pageSize, data.length))).copy(leaves, p * hasher.hashBytes);
  }
  return { result: leaves, transfer: [leaves.buffer] };
});
