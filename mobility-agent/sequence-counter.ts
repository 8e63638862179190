import fs from "node:fs";
import { writeFileAtomicSync } from "../common/fs/index.js";

/** Numbers handed out between two writes of the counter file while running. */
const RESERVATION = 4096;

/**
 * The machine's one write sequence (across all disks). The file holds a reservation ceiling while
 * running — rewritten once per RESERVATION numbers, not per write — and the exact next number
 * after a clean stop, so a crash can skip numbers but never hand one out twice.
 */
export class SequenceCounter {
  private nextValue: number;
  private ceiling: number;

  constructor(private readonly file: string) {
    this.nextValue = Math.max(1, readNumber(file) ?? 1);
    this.ceiling = this.nextValue;
  }

  /** The number the next write will get. */
  get next(): number {
    return this.nextValue;
  }

  /** The highest number handed out (0 when none). */
  get last(): number {
    return this.nextValue - 1;
  }

  take(): number {
    if (this.nextValue >= this.ceiling) this.reserve(this.nextValue + RESERVATION);
    return this.nextValue++;
  }

  /**
   * Moves the counter so the next number is `next`. Only for numbers nobody else holds: the
   * process server said it holds nothing above next-1, or they never left this process.
   */
  setNext(next: number): void {
    this.nextValue = Math.max(1, next);
    this.reserve(this.nextValue + RESERVATION);
  }

  /** Writes the exact next number (clean stop). */
  close(): void {
    this.reserve(this.nextValue);
  }

  private reserve(ceiling: number): void {
    writeFileAtomicSync(this.file, `${ceiling}\n`);
    this.ceiling = ceiling;
  }
}

function readNumber(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, "utf8").trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
