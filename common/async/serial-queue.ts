/**
 * Runs asynchronous sections one after another, in the order they were queued, never two at once.
 * A failed section rejects only its own promise; the next one still runs. Being a queue of
 * exclusive sections, it is also the mutex (`Mutex`): per machine, validate + append must see a
 * stable last sequence; per log, rotation, writes and deletions must not interleave.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once everything queued so far has finished (successfully or not). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}

/** Mutual exclusion for async sections: the same FIFO queue, named for what callers use it for. */
export { SerialQueue as Mutex };
