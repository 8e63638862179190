/**
 * What a request does to its range. Reads share; a write excludes every overlapping request; a
 * flush waits for every earlier write anywhere; `all` waits for every earlier request.
 */
export type Access = "read" | "write" | "flush" | "all";

/** One request's place in the order: start it once `ready` settles (undefined: start now). */
export class Ticket {
  /** Earlier requests this one still waits for. */
  blockers = 0;
  /** Later requests waiting for this one. */
  dependents: Ticket[] | undefined;
  ready: Promise<void> | undefined;
  start: (() => void) | undefined;
  left = false;

  constructor(
    readonly offset: number,
    readonly end: number,
    readonly access: Access,
  ) {}
}

function conflicts(earlier: Ticket, later: Ticket): boolean {
  if (later.access === "all") return true;
  if (earlier.access !== "write" && earlier.access !== "read") return false;
  if (later.access === "flush") return earlier.access === "write";
  if (earlier.access === "read" && later.access === "read") return false;
  return earlier.offset < later.end && later.offset < earlier.end && earlier.offset < earlier.end && later.offset < later.end;
}

/**
 * Orders concurrent requests on one disk: a request starts once every earlier request it
 * conflicts with (overlapping, one of them a write) has left, so overlapping writes land — and are
 * captured — in arrival order while disjoint ones run side by side. Arrival order makes the
 * waits acyclic, so nothing can deadlock. Costs one pass over the requests in flight per request,
 * which the NBD server bounds per connection; with nothing in flight a request starts at once,
 * without a promise.
 */
export class OverlapTracker {
  /** Unfinished requests in arrival order (a Set keeps insertion order and deletes in O(1)). */
  private readonly active = new Set<Ticket>();

  /** Requests entered and not yet left. */
  get inFlight(): number {
    return this.active.size;
  }

  /** Queues a request behind the earlier ones it conflicts with; call `leave` when it finished. */
  enter(offset: number, length: number, access: Access): Ticket {
    const ticket = new Ticket(offset, offset + length, access);
    for (const earlier of this.active) {
      if (!conflicts(earlier, ticket)) continue;
      ticket.blockers++;
      if (earlier.dependents) earlier.dependents.push(ticket);
      else earlier.dependents = [ticket];
    }
    if (ticket.blockers > 0) {
      ticket.ready = new Promise<void>((resolve) => {
        ticket.start = resolve;
      });
    }
    this.active.add(ticket);
    return ticket;
  }

  /** The request finished (successfully or not): later ones waiting only for it may start. */
  leave(ticket: Ticket): void {
    if (ticket.left) return;
    ticket.left = true;
    this.active.delete(ticket);
    for (const d of ticket.dependents ?? []) {
      if (--d.blockers === 0) d.start?.();
    }
    ticket.dependents = undefined;
  }

  /** Resolves once every request entered so far has left (undefined when none is in flight). */
  settled(): Promise<void> | undefined {
    if (this.active.size === 0) return undefined;
    const t = this.enter(0, 0, "all");
    const ready = t.ready ?? Promise.resolve();
    return ready.then(() => this.leave(t));
  }
}
