/** Runs async tasks strictly one after another, whatever the previous task's outcome. */
export class SerialQueue {
  private last: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.last.then(task);
    this.last = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }
}
