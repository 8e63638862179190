import type { Command } from "commander";
import {
  changePoint,
  commit,
  failback,
  failover,
  failoverCleanup,
  networkCreate,
  networkList,
  networkMap,
  reprotect,
} from "../commands/failover.js";
import { verify } from "../commands/verify.js";
import { labDir } from "../lab/index.js";
import { dirOption, run } from "./options.js";

/** Recovery verbs: failover and its follow-ups, failback, networks and verify. */
export function registerRecoveryCommands(program: Command): void {
  const pointOptions = (c: Command) =>
    c
      .option("--point <point>", "latest | latest-processed | latest-app-consistent | a recovery point id", "latest")
      .option("--seq <n>", "any single write: recover to exactly this sequence number")
      .option("--at <time>", "any point in time: the last write captured at or before it");

  pointOptions(
    program
      .command("failover <machine>")
      .description("fail a machine over to Azure (or test it with --test) at a recovery point")
      .addOption(dirOption()),
  )
    .option("--test", "test failover into an isolated network; replication keeps running")
    .option("--shutdown-source", "stop the source's writes and drain them first (no data loss)")
    .option("--network <name>", "target network (required for --test)")
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => failover(labDir(o.dir), machine, o)));

  program
    .command("failover-cleanup <machine>")
    .description("delete a test failover's machine and disks")
    .addOption(dirOption())
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => failoverCleanup(labDir(o.dir), machine, o)));

  pointOptions(
    program
      .command("change-point <machine>")
      .description("re-create the failed-over disks from another recovery point (before commit)")
      .addOption(dirOption()),
  )
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => changePoint(labDir(o.dir), machine, o)));

  program
    .command("commit <machine>")
    .description("make a failover final; deletes every other recovery point")
    .addOption(dirOption())
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => commit(labDir(o.dir), machine, o)));

  program
    .command("reprotect <machine>")
    .description("protect a failed-over machine back to on-premises, or a failed-back machine to Azure again")
    .addOption(dirOption())
    .option("--master-target <name>", "master target that receives the failback data")
    .option("--process-server <name>", "process server in Azure")
    .option("--datastore <dir>", "directory for the new images (with --alternate-location)")
    .option("--alternate-location", "fail back to a new image (full copy) instead of the original disk")
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => reprotect(labDir(o.dir), machine, o)));

  program
    .command("failback <machine>")
    .description("planned failover from Azure back to on-premises: stop, drain, apply; no data loss (or back to a point of the way back)")
    .addOption(dirOption())
    .option("--point <point>", "latest (default: everything the Azure machine wrote), latest-app-consistent, or a point id of the way back")
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => failback(labDir(o.dir), machine, o)));

  const network = program.command("network").description("recovery networks and per-machine network mapping");
  network
    .command("create <name>")
    .description("declare a network with its address space and circuit")
    .addOption(dirOption())
    .requiredOption("--address-space <cidr...>", "address space(s), e.g. 10.1.0.0/16")
    .option("--subnet <cidr...>", "subnet(s) inside the address space")
    .option("--circuit <name>", "the circuit (ExpressRoute/VPN) the network attaches to")
    .option("--on-premises", "an on-premises network (default: an Azure network)")
    .option("--json", "print the network as JSON")
    .action((name, o) => run(() => networkCreate(labDir(o.dir), name, o)));
  network
    .command("list")
    .addOption(dirOption())
    .option("--json", "machine-readable output")
    .action((o) => run(() => networkList(labDir(o.dir), o)));
  network
    .command("map <machine>")
    .description("where a machine lands on failover: network, subnet, IP")
    .addOption(dirOption())
    .requiredOption("--network <name>", "target network")
    .option("--subnet <cidr>", "target subnet")
    .option("--ip <address>", "static IP in the target subnet")
    .option("--keep-source-ip <address>", "keep the source machine's IP address")
    .option("--json", "no output")
    .action((machine, o) => run(() => networkMap(labDir(o.dir), machine, o)));

  program
    .command("verify <machine>")
    .description("recompute the fingerprint of each recovered disk and compare it with the source's at the same sequence")
    .addOption(dirOption())
    .option("--point <id>", "a recovery point (or group point) id")
    .option("--failed-over", "the failed-over disks")
    .option("--test", "the test failover's disks")
    .option("--replica", "the replica disks (once they have processed everything the source wrote)")
    .option("--failed-back", "the on-premises disks of a failed-back machine, against the Azure disks they came back from (before commit)")
    .option("--json", "print every check as JSON")
    .action((machine, o) => run(() => verify(labDir(o.dir), machine, o)));

}
