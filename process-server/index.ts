// The process server: replication gateway between agents and Azure storage.

export type { ReplicaState } from "./pipeline/index.js";
export { runProcessServer } from "./daemon.js";
export { type ProcessServerOptions, type ProcessServerOptionsInput, processServerOptions } from "./options.js";
export { type PointDocument, type PointKind, pointIdOf } from "./points/index.js";
export { ProcessServer, type ProcessServerReady } from "./process-server.js";
