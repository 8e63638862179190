// Blob names of every object srlab keeps in storage.
export {
  failbackPrefix,
  failbackStateObjectName,
  failoverDiskName,
  isUsableMachineId,
  type LogLocation,
  logLocation,
  logPrefix,
  machinePrefix,
  parseSegmentObjectName,
  pointObjectName,
  pointsPrefix,
  replicaBlobName,
  retentionObjectName,
  segmentObjectName,
  stateObjectName,
} from "./storage-layout.js";
