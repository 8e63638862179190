import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export type LabRole = "azurite" | "config-server" | "process-server" | "master-target" | "agent";

export interface LabComponent {
  name: string;
  role: LabRole;
  /** YAML config file (none for Azurite). */
  configFile?: string;
  logFile: string;
  readyFile: string;
  grpcPort?: number;
  /** Last known pid; 0 when stopped. */
  pid: number;
}

/** lab.json: what `srlab up` created, so `status`, `down` and a second `up` find it again. */
export interface LabManifest {
  version: 1;
  passphrase: string;
  timeUnitSeconds: number;
  storage: { kind: "azure" | "directory"; connectionString?: string; directory?: string; azuritePort?: number };
  configServerAddress: string;
  caFile: string;
  /** `srlab up --listen`: where the configuration server and process servers listen (loopback when absent). */
  listen?: string;
  /** `srlab up --advertise`: host names and addresses in their certificates, handed to joiners. */
  advertise?: string[];
  components: LabComponent[];
}

/** Paths of a lab directory. */
export class LabLayout {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  get manifestFile(): string {
    return join(this.dir, "lab.json");
  }
  get pkiDir(): string {
    return join(this.dir, "pki");
  }
  get configDir(): string {
    return join(this.dir, "config");
  }
  get logDir(): string {
    return join(this.dir, "logs");
  }
  get runDir(): string {
    return join(this.dir, "run");
  }
  /** The keeper's state of a supervised daemon (pid, restarts, last exit). */
  supervisorFile(name: string): string {
    return join(this.runDir, `${name}.supervisor.json`);
  }
  dataDir(name: string): string {
    return join(this.dir, "data", name);
  }
  get adminCredentialFile(): string {
    return join(this.dataDir("config-server"), "admin.credential");
  }

  exists(): boolean {
    return existsSync(this.manifestFile);
  }

  read(): LabManifest {
    if (!this.exists()) throw new Error(`no lab in ${this.dir}: start one with "srlab up --dir ${this.dir}"`);
    return JSON.parse(readFileSync(this.manifestFile, "utf8")) as LabManifest;
  }

  write(manifest: LabManifest): void {
    writeFileSync(this.manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  }

  /**
   * Reads, changes and writes the manifest with nothing in between, so a change made meanwhile
   * by another part of the same process (a concurrent start of another component) is kept.
   */
  update(change: (manifest: LabManifest) => void): LabManifest {
    const manifest = this.read();
    change(manifest);
    this.write(manifest);
    return manifest;
  }

  adminCredential(): string {
    if (!existsSync(this.adminCredentialFile)) {
      throw new Error(`the lab in ${this.dir} has no admin credential yet: is it running? (srlab up --dir ${this.dir})`);
    }
    return readFileSync(this.adminCredentialFile, "utf8").trim();
  }
}

/** The directory commands use: --dir, else $SRLAB_DIR, else ./.srlab. */
export function labDir(flag: string | undefined): string {
  return flag ?? process.env.SRLAB_DIR ?? ".srlab";
}
