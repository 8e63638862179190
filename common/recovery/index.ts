// Failover from storage alone: resolve a recovery target to a point plus log segments, then build the disks.
export { listPointDocuments, parsePointDocument, type RecoveryPointDoc } from "./point-document.js";
export { type MaterializeDisk, type MaterializeProgress, type MaterializeResult, RecoveryEngine, type RecoveryEngineOptions } from "./recovery-engine.js";
export { describeTarget, type RecoveryTarget, type ResolvedTarget } from "./recovery-target.js";
export { resolveTarget, type TargetCatalog, uploadedSequenceOf } from "./resolve-target.js";
export { listSegments, type SegmentRef } from "./segment-catalog.js";
