/**
 * Holds a machine's new writes while a multi-machine tag is cut: writes that arrive wait (they
 * are never failed) and go on in arrival order at release. The hold always ends: at release, or
 * by itself after its timeout so a lost coordinator cannot freeze the machine.
 */
export class WriteGate {
  private hold?: { opened: Promise<void>; open: () => void; since: number; timer: NodeJS.Timeout };

  /** Resolves when held writes may go on; undefined while writes flow. */
  get closed(): Promise<void> | undefined {
    return this.hold?.opened;
  }

  get isHeld(): boolean {
    return this.hold !== undefined;
  }

  /** Starts holding; `onExpire` runs if the timeout ends the hold. */
  close(timeoutMs: number, onExpire: (heldMs: number) => void): void {
    if (this.hold) return;
    let open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const timer = setTimeout(() => onExpire(this.open()), timeoutMs);
    timer.unref();
    this.hold = { opened, open, since: performance.now(), timer };
  }

  /** Lets the held writes go on; returns how long they were held (ms), 0 if nothing was held. */
  open(): number {
    const hold = this.hold;
    if (!hold) return 0;
    this.hold = undefined;
    clearTimeout(hold.timer);
    hold.open();
    return performance.now() - hold.since;
  }
}
