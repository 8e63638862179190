// Recovery points: their documents, the scheduler that takes them, and retention.
export { disksCoveredAt, type PointDocument, type PointKind, PointStore, pointIdOf, toRecoveryPoint } from "./point-store.js";
export { RecoveryPointScheduler } from "./recovery-points.js";
