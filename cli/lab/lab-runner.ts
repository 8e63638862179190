import { randomBytes } from "node:crypto";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KeyedMutex, PollTimeoutError, pollUntil, runLimited } from "../../common/async/index.js";
import { azuriteBlobMainPath, azuriteConnectionString } from "../../common/azurite/index.js";
import { ensureLabPki } from "../../common/tls/index.js";
import { addMachines } from "./add-machines.js";
import { checkHealth } from "./health-probe.js";
import { PortAllocator } from "./free-port.js";
import { ensureJoinToken } from "./lab-join.js";
import { applyHeadNetwork, azuriteHost, dialAddress, type HeadNetwork, headCertificateNames } from "./lab-head.js";
import { agentConfig, azureAgentConfig, configServerConfig, masterTargetConfig, processServerConfig } from "./lab-configs.js";
import { type LabComponent, LabLayout, type LabManifest } from "./lab-layout.js";
import { clearReady, isAlive, spawnSupervised, stopProcess, waitReady } from "./processes.js";

export interface UpOptions {
  dir: string;
  machines: number;
  disksPerMachine: number;
  diskSizeBytes: number;
  processServers: number;
  timeUnitSeconds: number;
  storage: "azurite" | "directory" | "azure";
  connectionString?: string;
  onProgress?: (line: string) => void;
  /** --listen / --advertise; absent values keep what the lab has (lab.json). */
  network?: HeadNetwork;
  /** Whether --disk-size / --disks were given: machines added to an existing lab copy its first machine's disks otherwise. */
  explicitDiskSize?: boolean;
  explicitDisks?: boolean;
}

const CLI_MAIN = fileURLToPath(new URL("../main.js", import.meta.url));
const START_TIMEOUT_MS = 60_000;
/**
 * Daemons of one role started at once. Each Node daemon spends a second or two of CPU loading;
 * 32 agents booting together on two cores all missed their ready timeout, while a few at a time
 * are each ready in seconds and the whole group is up sooner.
 */
const START_CONCURRENCY = Math.max(2, 2 * availableParallelism());

/** Creates the lab on first use (PKI, ports, configs) and starts every component that is not running. */
export async function labUp(options: UpOptions): Promise<LabManifest> {
  const layout = new LabLayout(options.dir);
  const say = options.onProgress ?? (() => {});
  checkUpOptions(options);
  makeLabDirs(layout);
  const manifest = layout.exists() ? layout.read() : await createLab(layout, options);
  // On an existing lab, --machines N adds the machines it lacks.
  const added = await addMachines(layout, manifest, options.machines, { sizeBytes: options.explicitDiskSize ? options.diskSizeBytes : undefined, perMachine: options.explicitDisks ? options.disksPerMachine : undefined });
  if (added.length) say(`adding ${added.join(", ")}`);
  await applyHeadNetwork(layout, manifest, options.network ?? {});
  const pki = await ensureLabPki(
    layout.pkiDir,
    manifest.components.filter((c) => c.role !== "azurite").map((c) => c.name),
    headCertificateNames(manifest),
  );
  manifest.caFile = pki.caFile;

  const order: LabComponent["role"][] = ["azurite", "config-server", "process-server", "master-target", "agent"];
  const started: LabComponent[] = [];
  try {
    for (const role of order) {
      const group = manifest.components.filter((c) => c.role === role);
      // A few at a time; after a failure no further one starts, and the siblings still starting
      // settle first, so each one that started is known and stopped below.
      await runLimited(group, START_CONCURRENCY, async (c) => {
        if (await startComponent(layout, manifest, c, say)) started.push(c);
      });
      layout.write(manifest);
    }
    say("waiting for every component to report healthy");
    await waitHealthy(manifest);
  } catch (err) {
    // A failed up leaves nothing of its own running: stop what this call started, newest first.
    if (started.length) say(`start failed: stopping the ${started.length} component(s) this call started`);
    await stopComponents(started.reverse(), say);
    layout.write(manifest);
    throw err;
  }
  layout.write(manifest);
  return manifest;
}

/** Values `up` refuses before it creates or starts anything (the CLI checks its flags the same way). */
export function checkUpOptions(o: UpOptions): void {
  const whole = (name: string, v: number, min: number) => {
    if (!Number.isSafeInteger(v) || v < min) throw new Error(`${name} must be a whole number of at least ${min}, got ${v}`);
  };
  whole("machines", o.machines, 1);
  whole("disks per machine", o.disksPerMachine, 1);
  whole("process servers", o.processServers, 1);
  whole("disk size", o.diskSizeBytes, 1);
  if (o.diskSizeBytes % 512 !== 0) throw new Error(`disk size must be a multiple of 512 bytes, got ${o.diskSizeBytes}`);
  if (!(o.timeUnitSeconds > 0)) throw new Error(`time unit must be longer than 0, got ${o.timeUnitSeconds} s`);
}

/** The lab's directories; a path that exists but is no directory gets one clear line. */
function makeLabDirs(layout: LabLayout): void {
  for (const d of [layout.dir, layout.configDir, layout.logDir, layout.runDir]) {
    try {
      mkdirSync(d, { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" || code === "ENOTDIR") {
        throw new Error(`${layout.dir} cannot hold a lab: ${notADirectory(d)} is a file, not a directory`);
      }
      if (code === "EACCES" || code === "EPERM") throw new Error(`${layout.dir} cannot hold a lab: no permission to create ${d}`);
      throw err;
    }
  }
}

/** The first path from the root down to `path` that exists and is not a directory. */
function notADirectory(path: string): string {
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join("/") || "/";
    try {
      if (!statSync(p).isDirectory()) return p;
    } catch {
      return path;
    }
  }
  return path;
}

async function stopComponents(components: LabComponent[], say: (l: string) => void): Promise<void> {
  for (const c of components) {
    const outcome = await stopProcess(c.pid);
    if (outcome !== "absent") say(`${c.name} ${outcome}`);
    c.pid = 0;
    clearReady(c.readyFile);
  }
}

async function createLab(layout: LabLayout, options: UpOptions): Promise<LabManifest> {
  const ports = new PortAllocator();
  try {
    return await createLabWithPorts(layout, options, () => ports.next());
  } finally {
    await ports.release();
  }
}

async function createLabWithPorts(layout: LabLayout, options: UpOptions, freePort: () => Promise<number>): Promise<LabManifest> {
  const components: LabComponent[] = [];
  const add = (name: string, role: LabComponent["role"], grpcPort?: number): LabComponent => {
    const c: LabComponent = {
      name,
      role,
      configFile: role === "azurite" ? undefined : join(layout.configDir, `${name}.yaml`),
      logFile: join(layout.logDir, `${name}.log`),
      readyFile: join(layout.runDir, `${name}.ready.json`),
      grpcPort,
      pid: 0,
    };
    components.push(c);
    return c;
  };
  const storage: LabManifest["storage"] = { kind: "azure" };
  if (options.storage === "azurite") {
    storage.azuritePort = await freePort();
    storage.connectionString = azuriteConnectionString(storage.azuritePort);
    add("azurite", "azurite");
  } else if (options.storage === "azure") {
    if (!options.connectionString) throw new Error("--storage azure needs --connection-string (or AZURE_STORAGE_CONNECTION_STRING)");
    storage.connectionString = options.connectionString;
  } else {
    storage.kind = "directory";
    storage.directory = join(layout.dir, "storage");
  }
  const csPort = await freePort();
  const manifest: LabManifest = {
    version: 1,
    passphrase: randomBytes(18).toString("base64url"),
    timeUnitSeconds: options.timeUnitSeconds,
    storage,
    configServerAddress: `127.0.0.1:${csPort}`,
    caFile: "",
    components,
  };
  const cs = add("config-server", "config-server", csPort);
  const psNames = Array.from({ length: options.processServers }, (_, i) => `process-server-${i + 1}`);
  const pss: LabComponent[] = [];
  for (const n of psNames) pss.push(add(n, "process-server", await freePort()));
  const azurePs = add("process-server-azure", "process-server", await freePort());
  const mt = add("master-target", "master-target", await freePort());
  const agents: Array<{ c: LabComponent; nbdPort: number }> = [];
  for (let i = 1; i <= options.machines; i++) agents.push({ c: add(`machine-${i}`, "agent", await freePort()), nbdPort: await freePort() });

  const pki = await ensureLabPki(
    layout.pkiDir,
    components.filter((c) => c.role !== "azurite").map((c) => c.name),
  );
  manifest.caFile = pki.caFile;
  writeFileSync(join(layout.dir, "passphrase"), `${manifest.passphrase}\n`, { mode: 0o600 });
  // It holds the passphrase: owner-only, like the passphrase file.
  writeFileSync(cs.configFile!, configServerConfig(layout, pki, manifest, csPort, await freePort()), { mode: 0o600 });
  for (const ps of pss) writeFileSync(ps.configFile!, processServerConfig(layout, pki, manifest, ps.name, ps.grpcPort!, "on-premises"));
  writeFileSync(azurePs.configFile!, processServerConfig(layout, pki, manifest, azurePs.name, azurePs.grpcPort!, "azure"));
  writeFileSync(mt.configFile!, masterTargetConfig(layout, pki, manifest, mt.name, mt.grpcPort!));
  for (const { c, nbdPort } of agents) {
    writeFileSync(
      c.configFile!,
      agentConfig(layout, pki, manifest, c.name, c.grpcPort!, nbdPort, options.diskSizeBytes, options.disksPerMachine),
    );
  }
  layout.write(manifest);
  return manifest;
}

/** Starts `c` unless it runs; true when this call started it (a failed start is stopped again). */
async function startComponent(layout: LabLayout, manifest: LabManifest, c: LabComponent, say: (l: string) => void): Promise<boolean> {
  if (isAlive(c.pid)) {
    say(`${c.name} already running (pid ${c.pid})`);
    return false;
  }
  clearReady(c.readyFile);
  if (c.role === "azurite") {
    const dataDir = join(layout.dir, "azurite");
    mkdirSync(dataDir, { recursive: true });
    const port = manifest.storage.azuritePort!;
    c.pid = spawnSupervised(
      [azuriteBlobMainPath(), "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--blobHost", azuriteHost(manifest), "--blobPort", String(port), "--location", dataDir],
      c.logFile,
      layout.supervisorFile(c.name),
      undefined,
    );
    try {
      await waitTcp(azuriteHost(manifest) === "0.0.0.0" ? "127.0.0.1" : azuriteHost(manifest), port, c.pid, c.logFile);
    } catch (err) {
      await stopProcess(c.pid);
      c.pid = 0;
      throw err;
    }
    say(`azurite listening on ${azuriteHost(manifest)}:${port} (pid ${c.pid})`);
    return true;
  }
  await ensureJoinToken(layout, manifest, c);
  c.pid = spawnSupervised([CLI_MAIN, c.role, "--config", c.configFile!], c.logFile, layout.supervisorFile(c.name), c.readyFile);
  try {
    await waitReady(c.readyFile, c.pid, START_TIMEOUT_MS, c.logFile);
  } catch (err) {
    await stopProcess(c.pid);
    c.pid = 0;
    throw new Error(`${c.name} failed to start: ${(err as Error).message}`);
  }
  say(`${c.name} started (pid ${c.pid})`);
  return true;
}

async function waitTcp(host: string, port: number, pid: number, logFile: string): Promise<void> {
  const { connect } = await import("node:net");
  const listening = async (): Promise<boolean> => {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (!ok && !isAlive(pid)) throw new Error(`azurite exited during start; see ${logFile}`);
    return ok;
  };
  try {
    await pollUntil(`azurite on port ${port}`, listening, { timeoutMs: START_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof PollTimeoutError) throw new Error(`azurite did not listen on ${port}; see ${logFile}`);
    throw err;
  }
}

async function waitHealthy(manifest: LabManifest): Promise<void> {
  const until = Date.now() + START_TIMEOUT_MS;
  const daemons = manifest.components.filter((c) => c.grpcPort);
  for (const c of daemons) {
    const serving = async (): Promise<boolean> => {
      try {
        if ((await checkHealth(dialAddress(manifest, c), manifest.caFile)) === "SERVING") return true;
      } catch {
        // not yet
      }
      if (!isAlive(c.pid)) throw new Error(`${c.name} exited; see ${c.logFile}`);
      return false;
    };
    try {
      await pollUntil(`${c.name} to serve`, serving, { timeoutMs: Math.max(0, until - Date.now()), intervalMs: 200 });
    } catch (err) {
      if (err instanceof PollTimeoutError) throw new Error(`${c.name} is not SERVING; see ${c.logFile}`);
      throw err;
    }
  }
}

/** Stops every component of the lab, agents first and Azurite last. */
export async function labDown(dir: string, onProgress: (line: string) => void = () => {}): Promise<void> {
  const layout = new LabLayout(dir);
  const manifest = layout.read();
  const order: LabComponent["role"][] = ["agent", "master-target", "process-server", "config-server", "azurite"];
  for (const role of order) {
    await Promise.all(
      manifest.components
        .filter((c) => c.role === role)
        .map(async (c) => {
          const outcome = await stopProcess(c.pid);
          if (outcome !== "absent") onProgress(`${c.name} ${outcome}`);
          c.pid = 0;
          clearReady(c.readyFile);
        }),
    );
  }
  layout.write(manifest);
}

export { LabLayout };

/** Component name of a machine's agent in Azure. */
export function azureAgentName(machine: string): string {
  return `${machine}-azure`;
}

/**
 * Starts and stops of Azure agents, one at a time per lab: a rehearsal starts several machines at
 * once, and each start spends seconds between reading the manifest and recording its pid.
 */
const azureMachines = new KeyedMutex();

/** Starts the failed-over machine "in Azure" (after a committed failover); idempotent. */
export function startAzureMachine(dir: string, machine: string): Promise<LabComponent> {
  const layout = new LabLayout(dir);
  return azureMachines.run(layout.dir, async () => {
    const manifest = layout.read();
    const name = azureAgentName(machine);
    let c = manifest.components.find((x) => x.name === name);
    if (!c) {
      const ports = new PortAllocator();
      const [grpcPort, nbdPort] = [await ports.next(), await ports.next()];
      await ports.release();
      c = {
        name,
        role: "agent",
        configFile: join(layout.configDir, `${name}.yaml`),
        logFile: join(layout.logDir, `${name}.log`),
        readyFile: join(layout.runDir, `${name}.ready.json`),
        grpcPort,
        pid: 0,
      };
      const pki = await ensureLabPki(layout.pkiDir, [...manifest.components.filter((x) => x.role !== "azurite").map((x) => x.name), name]);
      writeFileSync(c.configFile!, azureAgentConfig(layout, pki, manifest, name, machine, grpcPort, nbdPort));
      manifest.components.push(c);
      recordComponent(layout, c);
    }
    const agent = c;
    try {
      await startComponent(layout, manifest, agent, () => {});
    } finally {
      // Only this component's entry: whatever else changed in the manifest meanwhile stays.
      recordComponent(layout, agent);
    }
    return agent;
  });
}

/** Writes one component's entry into the manifest as it is on disk now. */
function recordComponent(layout: LabLayout, c: LabComponent): void {
  layout.update((m) => {
    const i = m.components.findIndex((x) => x.name === c.name);
    if (i >= 0) m.components[i] = c;
    else m.components.push(c);
  });
}

/** Stops and forgets the machine's agent in Azure (after failback is committed). */
export function removeAzureMachine(dir: string, machine: string): Promise<void> {
  const layout = new LabLayout(dir);
  return azureMachines.run(layout.dir, async () => {
    const name = azureAgentName(machine);
    const c = layout.read().components.find((x) => x.name === name);
    if (!c) return;
    await stopProcess(c.pid);
    clearReady(c.readyFile);
    layout.update((m) => {
      m.components = m.components.filter((x) => x.name !== name);
    });
  });
}
