// Log segments: the compressed, encrypted runs of write records kept in Azure storage.
export { CODEC_NAMES, type CodecName, DEFAULT_CODEC } from "./codec.js";
export { SegmentIntegrityError } from "./errors.js";
export { readSegmentHeader, SEGMENT_MAGIC, type SegmentHeader } from "./header.js";
export { deriveSegmentKey } from "./key.js";
export { type SegmentKeyEntry, SegmentKeyRing } from "./key-ring.js";
export { type DecodeSegmentExpect, decodeSegment, type EncodeSegmentOptions, encodeSegment } from "./segment.js";
export { closeSegmentWorkers, configureSegmentWorkers, segmentWorkers, segmentWorkersPart } from "./segment-workers.js";
// Raw codec access for benchmarks and tooling; segments themselves go through encode/decodeSegment.
export { compress as compressPayload, decompress as decompressPayload } from "./codec.js";
