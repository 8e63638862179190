import { parseDuration, parseRate, parseSize } from "../common/units/index.js";

/**
 * Checks of command-line values, run before a command starts anything: each throws one line that
 * names the flag, what it needs and what it got.
 */

/** A whole number within [min, max]; "abc", "-1", "1.5" and "" are refused. */
export function wholeNumber(flag: string, value: string | number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = String(value ?? "").trim();
  const n = /^[+]?\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new Error(`${flag} must be a whole number ${range}, got "${value ?? ""}"`);
  }
  return n;
}

/** Disks are addressed in 512-byte sectors (NBD, page blobs): sizes must be whole sectors. */
export const SECTOR_BYTES = 512;

export function diskSize(flag: string, value: string): number {
  let n: number;
  try {
    n = parseSize(value);
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
  if (n <= 0) throw new Error(`${flag} must be larger than 0, got "${value}"`);
  if (n % SECTOR_BYTES !== 0) throw new Error(`${flag} must be a multiple of ${SECTOR_BYTES} bytes, got "${value}" (${n} bytes)`);
  return n;
}

/** A size that may be 0 (e.g. "no fixed block size"), with the parser's message under the flag's name. */
export function size(flag: string, value: string): number {
  try {
    return parseSize(value);
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
}

export function rate(flag: string, value: string): number {
  try {
    return parseRate(value);
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
}

/** Milliseconds; `positive` refuses 0. */
export function duration(flag: string, value: string, positive = false): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
  if (positive && ms <= 0) throw new Error(`${flag} must be longer than 0, got "${value}"`);
  return ms;
}
