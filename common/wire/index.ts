// The replication stream's wire format: write batches as the agent sends them and the process
// server caches and packs them into segments.
export { recordBytes } from "./record-size.js";
export { encodeWriteBatch, encodeWriteRecordAfter, encodeWriteRecordsAfter, serializeReplicateRequest } from "./write-batch.js";
export { decodeWriteRecordView, deserializeReplicateRequest, receivedEncoding } from "./read-batch.js";
