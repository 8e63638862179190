// After the cache: upload segments, apply them to the replica (or the master target), per machine.
export { Applier, type ReplicaState } from "./applier.js";
export type { ApplySink } from "./apply-sink.js";
export { MachinePipeline } from "./machine-pipeline.js";
export { MasterTargetSink } from "./master-target-sink.js";
export { checksumMapPath, removeChecksumMaps } from "./checksum-map-files.js";
export { ReplicaSink } from "./replica-sink.js";
export { Uploader } from "./uploader.js";
export { StorageWatch } from "./storage-watch.js";
