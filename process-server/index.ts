// The process server: replication gateway between agents and Azure storage.

export type { ReplicaState } from "./applier.js";
export { runProcessServer } from "./daemon.js";
export { type ProcessServerOptions, type ProcessServerOptionsInput, processServerOptions } from "./options.js";
export { type PointDocument, type PointKind, pointIdOf } from "./point-store.js";
export { ProcessServer, type ProcessServerReady } from "./process-server.js";
export {
  failbackPrefix,
  failbackStateObjectName,
  logPrefix,
  pointObjectName,
  pointsPrefix,
  replicaBlobName,
  stateObjectName,
} from "./storage-layout.js";
