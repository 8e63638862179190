import fs from "node:fs";
import path from "node:path";
import { removeFileDurablySync, writeFileAtomicSync } from "../common/fs/index.js";

/** What the agent must remember across restarts besides images, bitmaps and the sequence. */
export interface PersistedState {
  machineId?: string;
  /** An assignment arrived: writes are captured and replicated. */
  protected: boolean;
  processServerId?: string;
  processServerAddress?: string;
  resyncRequired: boolean;
  resyncReason: string;
  /**
   * Image paths by disk index that replace the configured ones: a failback to an alternate
   * location moved the machine onto new images.
   */
  diskPaths?: Record<string, string>;
  /** Disks added after protection (`srlab disk add`), besides the configured ones. */
  addedDisks?: Array<{ index: number; path: string; sizeBytes: number }>;
  /** Disks no longer replicated (`srlab disk remove`); their images stay. Indexes are never reused. */
  removedDisks?: number[];
}

const EMPTY: PersistedState = { protected: false, resyncRequired: false, resyncReason: "" };

/** state.json and the clean-shutdown marker in the agent's data directory. */
export class AgentStateStore {
  private readonly stateFile: string;
  private readonly markerFile: string;
  private current: PersistedState;

  constructor(dataDir: string) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.stateFile = path.join(dataDir, "state.json");
    this.markerFile = path.join(dataDir, "clean-shutdown");
    this.current = this.read();
  }

  get state(): Readonly<PersistedState> {
    return this.current;
  }

  update(change: Partial<PersistedState>): void {
    this.current = { ...this.current, ...change };
    writeFileAtomicSync(this.stateFile, `${JSON.stringify(this.current, null, 2)}\n`);
  }

  /**
   * Consumes the clean-shutdown marker: true when the previous run stopped gracefully (or there
   * was no previous run). From here until markCleanShutdown() a crash is detectable.
   */
  takeCleanShutdownMarker(): boolean {
    const firstRun = !fs.existsSync(this.stateFile);
    const clean = fs.existsSync(this.markerFile);
    removeFileDurablySync(this.markerFile);
    return clean || firstRun;
  }

  markCleanShutdown(): void {
    writeFileAtomicSync(this.markerFile, `${new Date().toISOString()}\n`);
  }

  private read(): PersistedState {
    try {
      return { ...EMPTY, ...(JSON.parse(fs.readFileSync(this.stateFile, "utf8")) as Partial<PersistedState>) };
    } catch {
      return { ...EMPTY };
    }
  }
}
