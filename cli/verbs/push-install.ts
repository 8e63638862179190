import type { Command } from "commander";
import { wholeNumber } from "../arguments.js";
import { jobDocument } from "../commands/jobs.js";
import { labDir } from "../lab/index.js";
import { printJson } from "../output.js";
import { PushInstallError, type PushInstallResult, type PushInstallRole, pushInstall } from "../push-install/index.js";
import { dirOption, run } from "./options.js";

/** The SSH and target options push-install and `protect --push-install` share. */
export function addPushInstallOptions(cmd: Command, hostFlag: boolean): Command {
  if (hostFlag) cmd.option("--push-install <host>", "first push-install the agent onto this host over SSH (named after the machine)");
  return cmd
    .option("--ssh-user <user>", "SSH user on the target")
    .option("--identity <key>", "private key file for SSH")
    .option("--password-file <file>", "file holding the SSH password")
    .option("--port <port>", "SSH port", "22")
    .option("--disk <path:size>", "an image file of the agent on the target, created sparse when missing (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option("--remote-dir <dir>", "where the target keeps the package, the install and the state (default ~/.srlab, /var/lib/srlab for root)")
    .option("--listen <addr>", "address the daemon listens on at the target (default: the SSH host)");
}

interface PushFlags {
  sshUser?: string;
  identity?: string;
  passwordFile?: string;
  port: string;
  disk: string[];
  remoteDir?: string;
  listen?: string;
}

/** Runs a push install from parsed flags; progress on stderr. */
export function pushInstallWith(dir: string, host: string, o: PushFlags, role: PushInstallRole, name?: string): Promise<PushInstallResult> {
  if (!o.sshUser) throw new Error("--ssh-user is required for a push install");
  return pushInstall(
    dir,
    {
      host,
      port: wholeNumber("--port", o.port, 1, 65_535),
      sshUser: o.sshUser,
      identity: o.identity,
      passwordFile: o.passwordFile,
      role,
      name,
      disks: o.disk,
      remoteDir: o.remoteDir,
      listen: o.listen,
    },
    (line) => process.stderr.write(`${line}\n`),
  );
}

/** `srlab push-install HOST`: ASR's push installation of the mobility service, over SSH. */
export function registerPushInstallCommands(program: Command): void {
  addPushInstallOptions(
    program
      .command("push-install <host>")
      .description("install srlab on a lab machine over SSH and join it to this lab (a job: connect, prerequisites, copy, install, token, join)")
      .addOption(dirOption())
      .option("--role <role>", "what the host runs: agent, process-server or master-target", "agent")
      .option("--name <name>", "its name in the lab (default: the host's name)")
      .option("--json", "print the job as JSON"),
    false,
  ).action((host: string, o: PushFlags & { dir?: string; role: string; name?: string; json?: boolean }) =>
    run(async () => {
      try {
        const r = await pushInstallWith(labDir(o.dir), host, o, o.role as PushInstallRole, o.name);
        if (o.json) printJson(jobDocument(r.job));
        else console.log(`push install to ${host}: ${o.role} ${r.name} joined (job ${r.job.jobId})`);
      } catch (err) {
        if (err instanceof PushInstallError && o.json) printJson(jobDocument(err.result.job));
        throw err;
      }
    }),
  );
}
