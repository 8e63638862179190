// Stream intake: the Replicate stream handler that validates batches and appends them to the cache.
export { type ReplicationHost, ReplicationService } from "./replication-service.js";
