/** A batch does not continue the machine's stream: the sender must resend from `expected`. */
export class SequenceGapError extends Error {
  override readonly name = "SequenceGapError";
  constructor(
    readonly machineId: string,
    readonly expected: number,
    readonly got: number,
  ) {
    super(`machine "${machineId}": expected sequence ${expected}, got ${got} (resend from ${expected})`);
  }
}

/** The cache cannot take writes (closed, or a failed rollback after an I/O error). */
export class CacheUnavailableError extends Error {
  override readonly name = "CacheUnavailableError";
}
