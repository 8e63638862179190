// Applying replicated writes to a replica page blob ("processed" data).
export { type ApplyObserver, type ApplyOptions, type ApplyStats, applyRecords } from "./apply.js";
export { coalesceWrites, copyExtent, type Extent, recordRange } from "./coalesce.js";
export { PAGE_SIZE, type PageTarget } from "./page-target.js";
export { blobPageTarget } from "./blob-page-target.js";
export { isMarker } from "./markers.js";
export { pageBlobSizeFor } from "./page-blob-size.js";
export { ApplyCostModel } from "./apply-cost.js";
export { planBlocks, type BlockPlanOptions, type WriteRange } from "./block-plan.js";
export { CachedReplica, type KnownReplica, ReplicaBlockCache } from "./replica-block-cache.js";
