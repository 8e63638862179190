import { accessSync, constants, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { type JoinPlan, JOIN_ROLES, joinHost, planJoin } from "../join/index.js";
import { type LabComponent, LabLayout, type LabManifest, PortAllocator, spawnSupervised, waitReady } from "../lab/index.js";
import { announceReady, installService, planUnit, SYSTEM_UNIT_DIR, systemdNotRunningMessage, systemdRunning } from "../service/index.js";

const CLI_MAIN = fileURLToPath(new URL("../main.js", import.meta.url));
const START_TIMEOUT_MS = 60_000;

/** `srlab join ROLE …`: a daemon on this host joins the lab whose configuration server it is given. */
export function registerJoinCommands(program: Command, run: (fn: () => Promise<unknown>) => Promise<void>): void {
  program
    .command("join <role>")
    .description(`join this host to a lab as ${JOIN_ROLES.join(", ")}: pin the lab CA, get a certificate for a key made here, register with a join token, start the daemon`)
    .option("--config-server <host:port>", "the head node's configuration server (srlab token create prints the whole command)")
    .option("--token <token>", "a join token of this role (srlab token create --role ROLE)")
    .option("--ca-hash <sha256:hex>", "hash of the lab CA's public key: nothing is sent unless the server presents this CA")
    .option("--name <name>", "component name (default: this host's name; for an agent, the machine's name)")
    .option("--listen <addr>", "HOST[:PORT] this daemon serves on and is reached at, put in its certificate (default: the host's first non-loopback IPv4 address)")
    .option("--dir <dir>", "where config, keys and state go (default: /etc/srlab + /var/lib/srlab as root, else $SRLAB_DIR or ./.srlab)")
    .option("--disk <path[:size]>", "agent: a disk image, created sparse at SIZE when missing (repeatable; default one 1 GiB image)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option("--detach", "start the daemon in the background and return (srlab down --dir DIR stops it)")
    .option("--service", "install and start it as a systemd service (srlab service install)")
    .option("--json", "print what was joined as JSON")
    .action((role: string, o) =>
      run(async () => {
        const say = (line: string) => process.stderr.write(`${line}\n`);
        const plan = planJoin(role, o);
        if (plan.start === "service") checkCanInstallService();
        // Ports are chosen once, on the --listen address, and kept in the config across restarts.
        const allocator = new PortAllocator(plan.listen.host);
        const ports = { grpc: plan.listen.port || (await allocator.next()), metrics: await allocator.next(), nbd: plan.role === "agent" ? await allocator.next() : 0 };
        await allocator.release();
        const joined = await joinHost(plan, ports, say);
        const summary = { role: plan.role, name: plan.name, componentId: joined.componentId, machineId: joined.machineId || null, address: joined.address, metricsAddress: joined.metricsAddress, configFile: plan.paths.configFile, dir: plan.paths.dir };
        say(`config ${plan.paths.configFile}; serving on ${joined.address}, /metrics on ${joined.metricsAddress}`);
        if (plan.start === "foreground") {
          if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
          await runForeground(plan);
          return;
        }
        if (plan.start === "detach") {
          const pid = await startDetached(plan);
          say(`${plan.name} started (pid ${pid}); stop it with srlab down --dir ${plan.paths.dir}`);
        } else {
          const spec = await planUnit({ role: plan.role, configFile: plan.paths.configFile, nodePath: process.execPath, entry: realpathSync(process.argv[1]!) });
          await installService(spec, { start: true, say });
        }
        if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      }),
    );
}

/** --service needs systemd and a writable unit directory: checked before the join uses the token. */
function checkCanInstallService(): void {
  if (!systemdRunning()) throw new Error(`${systemdNotRunningMessage("--service")}; the join token is unused`);
  try {
    accessSync(SYSTEM_UNIT_DIR, constants.W_OK);
  } catch {
    throw new Error(`--service: cannot write units to ${SYSTEM_UNIT_DIR}; run srlab join as root (sudo) or use --detach`);
  }
}

/** The daemon in this process until SIGTERM/SIGINT, as `srlab ROLE --config FILE` runs it. */
async function runForeground(plan: JoinPlan): Promise<void> {
  const file = plan.paths.configFile;
  if (plan.role === "agent") await (await import("../../mobility-agent/index.js")).runMobilityAgent(file, {});
  else if (plan.role === "process-server") await (await import("../../process-server/index.js")).runProcessServer(file, {});
  else await (await import("../../master-target/index.js")).runMasterTarget(file, {});
  await announceReady(plan.role);
}

/**
 * Starts the daemon under a keeper, recorded in DIR/lab.json the way `srlab up` records its
 * daemons, so `srlab down --dir DIR` stops it (other components joined into DIR stay listed).
 */
async function startDetached(plan: JoinPlan): Promise<number> {
  const layout = new LabLayout(plan.paths.dir);
  const manifest: LabManifest = layout.exists()
    ? layout.read()
    : { version: 1, passphrase: "", timeUnitSeconds: 60, storage: { kind: "directory" }, configServerAddress: plan.configServer.address, caFile: plan.paths.caFile, components: [] };
  const c: LabComponent = { name: plan.name, role: plan.role, configFile: plan.paths.configFile, logFile: plan.paths.logFile, readyFile: plan.paths.readyFile, grpcPort: undefined, pid: 0 };
  c.pid = spawnSupervised([CLI_MAIN, plan.role, "--config", plan.paths.configFile], c.logFile, plan.paths.supervisorFile, c.readyFile);
  manifest.components = [...manifest.components.filter((x) => x.name !== c.name), c];
  layout.write(manifest);
  await waitReady(c.readyFile, c.pid, START_TIMEOUT_MS, c.logFile);
  return c.pid;
}
