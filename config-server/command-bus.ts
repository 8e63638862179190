import * as grpc from "@grpc/grpc-js";
import { type CommandResult, WatchCommandsResponse } from "../proto/index.js";
import type { Logger } from "../common/logger.js";
import type { ConfigStore } from "./store/index.js";

type CommandBody = NonNullable<WatchCommandsResponse["command"]>;

export interface CommandOutcome {
  success: boolean;
  error: string;
  /** Of the command's own kind (the store refuses another); undefined on failure or when nothing. */
  result: CommandResult | undefined;
}

/**
 * Delivers commands to components over their WatchCommands streams. Commands live in the
 * store's outbox until answered, so a command survives a restart of either side and is resent
 * when the component reconnects.
 */
export class CommandBus {
  private readonly streams = new Map<string, Set<grpc.ServerWritableStream<unknown, WatchCommandsResponse>>>();
  private readonly waiters = new Map<string, (outcome: CommandOutcome) => void>();
  private readonly credentialOf = new WeakMap<object, string>();

  constructor(
    private readonly store: ConfigStore,
    private readonly logger: Logger,
  ) {}

  /** Attaches a component's stream (opened with credential `credentialId`) and replays its unanswered commands. */
  attach(componentId: string, call: grpc.ServerWritableStream<unknown, WatchCommandsResponse>, credentialId = ""): Promise<void> {
    let set = this.streams.get(componentId);
    if (!set) {
      set = new Set();
      this.streams.set(componentId, set);
    }
    set.add(call);
    if (credentialId) this.credentialOf.set(call, credentialId);
    for (const pending of this.store.pendingCommands(componentId)) {
      call.write({ ...WatchCommandsResponse.fromJSON(pending.payload), commandId: pending.commandId });
    }
    return new Promise((resolve) => {
      const detach = () => {
        set.delete(call);
        resolve();
      };
      call.on("cancelled", detach);
      call.on("close", detach);
      call.on("error", detach);
    });
  }

  /** Ends the command streams opened with revoked credentials: they receive no further command. */
  cut(credentialIds: ReadonlySet<string>, reason: string): void {
    for (const set of this.streams.values()) {
      for (const call of [...set]) {
        const id = this.credentialOf.get(call);
        if (!id || !credentialIds.has(id)) continue;
        set.delete(call);
        call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: `credential ${id} was revoked (${reason}); this stream is closed` });
      }
    }
  }

  isConnected(componentId: string): boolean {
    return (this.streams.get(componentId)?.size ?? 0) > 0;
  }

  /** Queues a command and resolves with the component's answer. */
  send(componentId: string, jobId: string, command: CommandBody): Promise<CommandOutcome> {
    return this.enqueue(componentId, jobId, command).answered;
  }

  private enqueue(componentId: string, jobId: string, command: CommandBody): { commandId: string; answered: Promise<CommandOutcome> } {
    const body: WatchCommandsResponse = { commandId: "", jobId, command };
    const commandId = this.store.enqueueCommand(componentId, jobId, WatchCommandsResponse.toJSON(body) as object);
    const message = { ...body, commandId };
    const answered = new Promise<CommandOutcome>((resolve) => this.waiters.set(commandId, resolve));
    for (const call of this.streams.get(componentId) ?? []) call.write(message);
    this.logger.debug("command sent", { componentId, commandId, command: command.$case, live: this.isConnected(componentId) });
    return { commandId, answered };
  }

  /**
   * send() with a deadline: an answer that does not come in time fails the command (it leaves
   * the outbox, so a component that connects later never runs it).
   */
  async sendWithin(componentId: string, jobId: string, command: CommandBody, timeoutMs: number): Promise<CommandOutcome> {
    const { commandId, answered } = this.enqueue(componentId, jobId, command);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<CommandOutcome>((resolve) => {
      timer = setTimeout(() => {
        this.complete(commandId, false, `no answer within ${Math.round(timeoutMs / 1000)} s`, undefined);
        resolve({ success: false, error: `no answer within ${Math.round(timeoutMs / 1000)} s`, result: undefined });
      }, timeoutMs);
    });
    try {
      return await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fire-and-forget form for commands nobody waits on. */
  post(componentId: string, jobId: string, command: CommandBody): void {
    this.send(componentId, jobId, command).then((outcome) => {
      if (!outcome.success) this.logger.warn("command failed", { componentId, command: command.$case, error: outcome.error });
    });
  }

  /**
   * A component that registers again is a new process: what it was running died with the old one.
   * Its unanswered commands fail now instead of being replayed into the new process.
   */
  abandon(componentId: string, reason: string): void {
    for (const pending of this.store.pendingCommands(componentId)) this.complete(pending.commandId, false, reason, undefined);
  }

  /**
   * Records a component's answer and hands it to whoever waits. A result of another kind than the
   * command's is refused (INVALID_ARGUMENT) before anything is recorded or handed on.
   */
  complete(commandId: string, success: boolean, error: string, result: CommandResult | undefined): void {
    const stored = this.store.completeCommand(commandId, { success, error, result });
    const waiter = this.waiters.get(commandId);
    this.waiters.delete(commandId);
    // A retransmit finds the first answer recorded: the waiter gets that one.
    waiter?.({ success: stored.success ?? success, error: stored.error, result: stored.result });
  }

  close(): void {
    for (const set of this.streams.values()) for (const call of set) call.end();
    this.streams.clear();
  }
}
