/** A segment failed validation: bad magic, unknown key, failed authentication or a header mismatch. */
export class SegmentIntegrityError extends Error {
  override readonly name = "SegmentIntegrityError";
}
