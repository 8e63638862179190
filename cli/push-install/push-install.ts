import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { joinTokenRoles, prerequisiteCodes, pushInstallRoles } from "../../common/enum-names/index.js";
import { pollUntil } from "../../common/async/index.js";
import { type Job, type JobResult, JobState, JobType } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { diskSize } from "../arguments.js";
import { keepClientJobAlive } from "../client-job-keepalive.js";
import { joinAddress } from "../lab/index.js";
import { type PackedSrlab, packSrlab } from "./package-tarball.js";
import { judgePrerequisites, type PrerequisiteFailure, prerequisiteScript, type TargetFacts } from "./prerequisites.js";
import { SshSession, shellQuote } from "./ssh-session.js";

export const PUSH_INSTALL_ROLES = ["agent", "process-server", "master-target"] as const;
export type PushInstallRole = (typeof PUSH_INSTALL_ROLES)[number];

export interface PushInstallOptions {
  host: string;
  port: number;
  sshUser: string;
  /** Private key file; or passwordFile. */
  identity?: string;
  passwordFile?: string;
  role: PushInstallRole;
  /** Component (machine) name; default the target's host name. */
  name?: string;
  /** `PATH:SIZE` image files of an agent, on the target. */
  disks: string[];
  /** Where the target keeps the package, the install and the daemon's state. */
  remoteDir?: string;
  /** Where the daemon listens on the target (default: the address used for SSH). */
  listen?: string;
}

export interface PushInstallResult {
  job: Job;
  name: string;
  facts?: TargetFacts;
  failures: PrerequisiteFailure[];
}

/** Package, install and npm cache take about 6× the packed size (≈ 45 MiB); the rest is headroom for state. */
export const REQUIRED_FREE_BYTES = 512 * 2 ** 20;

const STEPS = {
  connect: "Connect",
  prerequisites: "Prerequisites check",
  copy: "Copy package",
  install: "Install package",
  token: "Create join token",
  join: "Join configuration server",
} as const;

/**
 * Why a step failed, as a code scripts can match (the prerequisite check has its own codes, one
 * per failed prerequisite): the job's step message and the error both start with it.
 */
export const STEP_FAILURE_CODES = {
  [STEPS.connect]: "SSH_CONNECT_FAILED",
  [STEPS.copy]: "COPY_FAILED",
  [STEPS.install]: "INSTALL_FAILED",
  [STEPS.token]: "TOKEN_FAILED",
  [STEPS.join]: "JOIN_FAILED",
} as const;

/** A step's failure with a more specific code than its step's own. */
class StepFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A failed push install: one line, with the job that records it. */
export class PushInstallError extends Error {
  constructor(
    message: string,
    readonly result: PushInstallResult,
  ) {
    super(message);
  }
}

/**
 * ASR's push installation, from the head node: over SSH (ssh2), check the target, copy the srlab
 * package (`npm pack` of this version with its dependencies bundled), install it offline with
 * npm into a prefix, and run `srlab join` there with a fresh single-use join token — as a
 * systemd service where systemd runs and the SSH user is root, detached otherwise. Recorded as a
 * `PushInstall` job (srlab jobs). A failed prerequisite stops before anything is copied or any
 * token exists.
 */
export async function pushInstall(labDir: string, o: PushInstallOptions, say: (line: string) => void): Promise<PushInstallResult> {
  // Everything the user typed is checked before the lab or the target is contacted.
  if (!PUSH_INSTALL_ROLES.includes(o.role)) throw new Error(`--role must be one of ${PUSH_INSTALL_ROLES.join(", ")}, got "${o.role}"`);
  if (!o.identity === !o.passwordFile) throw new Error("give exactly one of --identity KEY and --password-file FILE");
  if (o.disks.length && o.role !== "agent") throw new Error("--disk is for agents only");
  for (const d of o.disks) {
    const at = d.lastIndexOf(":");
    if (at <= 0) throw new Error(`--disk must be PATH:SIZE, got "${d}"`);
    diskSize("--disk", d.slice(at + 1));
  }
  const privateKey = o.identity ? await readFile(o.identity).catch((e: Error) => Promise.reject(new Error(`--identity ${o.identity}: ${e.message}`))) : undefined;
  const password = o.passwordFile
    ? (await readFile(o.passwordFile, "utf8").catch((e: Error) => Promise.reject(new Error(`--password-file ${o.passwordFile}: ${e.message}`)))).replace(/\r?\n$/, "")
    : undefined;

  return AdminClient.using(labDir, async (admin) => {
    const { job: created, leaseSeconds } = await admin.call(admin.client.createClientJob, { type: JobType.JOB_TYPE_PUSH_INSTALL, machine: "", steps: Object.values(STEPS) });
    const jobId = created!.jobId;
    const stopRenewing = keepClientJobAlive(admin, jobId, leaseSeconds);
    say(`push install to ${o.sshUser}@${o.host}:${o.port}: job ${jobId}`);
    const update = (stepName: string, stepState: JobState, message = "", progressPercent = 0) =>
      admin.call(admin.client.updateClientJob, { jobId, stepName, stepState, progressPercent, message, finish: 0, error: "", result: undefined });
    const step = async <T>(name: string, fn: () => Promise<{ value: T; message: string }>): Promise<T> => {
      await update(name, JobState.JOB_STATE_IN_PROGRESS);
      say(`  ${name}…`);
      try {
        const { value, message } = await fn();
        await update(name, JobState.JOB_STATE_SUCCEEDED, message, 100);
        say(`  ${name}: ${message}`);
        return value;
      } catch (err) {
        // The prerequisite check names its own codes; every other step's failure gets one.
        const code = err instanceof StepFailure ? err.code : STEP_FAILURE_CODES[name as keyof typeof STEP_FAILURE_CODES];
        const coded = code ? new Error(`${code}: ${(err as Error).message}`) : (err as Error);
        await update(name, JobState.JOB_STATE_FAILED, coded.message);
        throw coded;
      }
    };

    let ssh: SshSession | undefined;
    let facts: TargetFacts | undefined;
    let failures: PrerequisiteFailure[] = [];
    let name = o.name ?? "";
    try {
      ssh = await step(STEPS.connect, async () => {
        const s = await SshSession.connect({ host: o.host, port: o.port, username: o.sshUser, privateKey, password });
        return { value: s, message: `connected as ${o.sshUser}; host key SHA256:${s.hostKeySha256}` };
      });
      const session = ssh;
      const home = (await session.exec(`printf '%s' "$HOME"`)).stdout.trim();
      const base = o.remoteDir ?? (o.sshUser === "root" ? "/var/lib/srlab" : join(home || "/tmp", ".srlab"));
      const stateDir = join(base, o.role);
      await step(STEPS.prerequisites, async () => {
        const r = await session.exec(`sh -c ${shellQuote(prerequisiteScript(stateDir))}`, { timeoutMs: 60_000 });
        const judged = judgePrerequisites(r.stdout, stateDir, REQUIRED_FREE_BYTES);
        facts = judged.facts;
        failures = judged.failures;
        if (failures.length) throw new Error(failures.map((f) => `${f.code}: ${f.message}`).join("; "));
        return {
          value: undefined,
          message: `node ${facts.nodeVersion}, npm ${facts.npmVersion}, ${Math.floor(facts.freeBytes / 2 ** 20)} MiB free, ${stateDir} writable, host name ${facts.hostname} resolves, systemd ${facts.systemd ? "running" : "not running"}`,
        };
      });
      name ||= facts!.hostname;
      let remoteTarball = "";
      await step(STEPS.copy, async () => {
        const packed: PackedSrlab = await packSrlab(join(labDir, "push-install"), say).catch((e: Error) => Promise.reject(new StepFailure("PACK_FAILED", e.message)));
        remoteTarball = join(base, "packages", basename(packed.file));
        const mk = await session.exec(`mkdir -p ${shellQuote(join(base, "packages"))}`);
        if (mk.code !== 0) throw new Error(`cannot create ${join(base, "packages")}: ${mk.stderr.trim()}`);
        let lastPercent = -1;
        await session.upload(packed.file, remoteTarball, (sent, total) => {
          const percent = Math.floor((sent / total) * 100);
          if (percent >= lastPercent + 10) {
            lastPercent = percent;
            void update(STEPS.copy, JobState.JOB_STATE_IN_PROGRESS, `${Math.floor(sent / 2 ** 20)} of ${Math.ceil(total / 2 ** 20)} MiB`, percent).catch(() => undefined);
          }
        });
        return { value: undefined, message: `srlab ${packed.version} (${(packed.sizeBytes / 2 ** 20).toFixed(1)} MiB${packed.cached ? ", packed earlier" : ""}) → ${remoteTarball}` };
      });
      const prefix = join(base, "install");
      const srlabBin = join(prefix, "bin", "srlab");
      await step(STEPS.install, async () => {
        // Every dependency is inside the tarball: no registry is asked (--offline), and no install
        // script runs (native modules come built with the package).
        const cmd = [
          "npm install --global --offline --ignore-scripts --no-audit --no-fund --no-update-notifier",
          `--cache ${shellQuote(join(base, "npm-cache"))} --prefix ${shellQuote(prefix)} ${shellQuote(remoteTarball)}`,
          `&& test -x ${shellQuote(srlabBin)}`,
        ].join(" ");
        const r = await session.exec(cmd, { timeoutMs: 30 * 60_000 });
        if (r.code !== 0) throw new Error(`npm install on the target failed: ${errorLine(r.stderr) || `exit ${r.code}`}`);
        // The installed CLI and the daemon it will run load every module they import: a package
        // missing a dependency fails here, not when the join has used the token.
        const daemon = join(prefix, "lib", "node_modules", "srlab", "dist", DAEMON_DIR[o.role], "index.js");
        const load = await session.exec(`${shellQuote(srlabBin)} --help >/dev/null && node -e 'import(process.argv[1])' ${shellQuote(daemon)}`, { timeoutMs: 5 * 60_000 });
        if (load.code !== 0) throw new StepFailure("PACKAGE_INCOMPLETE", `the installed srlab does not load on the target: ${errorLine(load.stderr) || `exit ${load.code}`}`);
        return { value: undefined, message: `installed into ${prefix}; srlab and its ${o.role} load` };
      });
      const token = await step(STEPS.token, async () => {
        const id = admin.identity();
        try {
          const r = await id.call(id.client.createJoinToken, { role: joinTokenRoles.parse(o.role), ttlSeconds: 3600, reusable: false, description: `push install to ${o.host}` });
          return { value: r, message: `single-use ${o.role} token ${r.info?.tokenId ?? ""}, valid 1 h` };
        } finally {
          id.client.close();
        }
      });
      await step(STEPS.join, async () => {
        const service = facts!.systemd && facts!.uid === 0;
        const args = remoteJoinCommand({
          srlabBin,
          role: o.role,
          configServer: joinAddress(admin.manifest),
          token: token.token,
          caHash: token.caHash,
          name,
          stateDir,
          listen: o.listen ?? o.host,
          disks: o.disks,
          service,
        });
        const r = await session.exec(args.map(shellQuote).join(" "), { timeoutMs: 10 * 60_000 });
        if (r.code !== 0) throw new Error(`srlab join on the target failed: ${errorLine(r.stderr) || errorLine(r.stdout) || `exit ${r.code}`}`);
        await pollUntil(
          `${name} to register and report`,
          async () => {
            const { components } = await admin.call(admin.client.listComponents, {});
            // Registered, and heartbeating (its command stream is open from then on).
            const c = components.find((x) => x.name === name);
            return c?.lastHeartbeat && c.registeredAt && c.lastHeartbeat >= c.registeredAt ? true : undefined;
          },
          { timeoutMs: 120_000, intervalMs: 500 },
        );
        return { value: undefined, message: `${o.role} ${name} joined (${service ? "systemd service" : "detached daemon"}, state in ${stateDir})` };
      });
      const job = (await admin.call(admin.client.updateClientJob, {
        jobId,
        stepName: "",
        stepState: 0,
        progressPercent: 0,
        message: "",
        finish: JobState.JOB_STATE_SUCCEEDED,
        error: "",
        result: pushInstallResult({ host: o.host, name, role: o.role, stateDir, facts, failures }),
      })).job!;
      return { job, name, facts, failures };
    } catch (err) {
      const message = (err as Error).message;
      const job = (
        await admin.call(admin.client.updateClientJob, {
          jobId,
          stepName: "",
          stepState: 0,
          progressPercent: 0,
          message: "",
          finish: JobState.JOB_STATE_FAILED,
          error: message,
          result: pushInstallResult({ host: o.host, name: "", role: o.role, stateDir: "", facts, failures }),
        })
      ).job!;
      throw new PushInstallError(`push install to ${o.host} failed (job ${jobId}): ${message}`, { job, name, facts, failures });
    } finally {
      stopRenewing();
      ssh?.close();
    }
  });
}

/** What `srlab join` on the target is given. */
export interface RemoteJoin {
  srlabBin: string;
  role: PushInstallRole;
  /** Where the target reaches the configuration server: the head's advertised address, never its loopback one. */
  configServer: string;
  token: string;
  caHash: string;
  name: string;
  stateDir: string;
  listen: string;
  disks: string[];
  service: boolean;
}

/** The `srlab join` command line run on the target (one argv; the caller quotes it for the shell). */
export function remoteJoinCommand(j: RemoteJoin): string[] {
  return [
    j.srlabBin,
    "join",
    j.role,
    "--config-server",
    j.configServer,
    "--token",
    j.token,
    "--ca-hash",
    j.caHash,
    "--name",
    j.name,
    "--dir",
    j.stateDir,
    "--listen",
    j.listen,
    ...j.disks.flatMap((d) => ["--disk", d]),
    j.service ? "--service" : "--detach",
  ];
}

/** Where each role's daemon lives in the package. */
const DAEMON_DIR: Record<PushInstallRole, string> = { agent: "mobility-agent", "process-server": "process-server", "master-target": "master-target" };

/**
 * The line of a command's error output that says what went wrong: srlab's own "srlab: …" line,
 * else a Node error's first line (a stack ends in "Node.js vX", which says nothing), else the last.
 */
export function errorLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return (
    lines.find((l) => l.startsWith("srlab:")) ??
    lines.find((l) => /^(\w*Error\b|Error \[)/.test(l)) ??
    lines.filter((l) => !/^Node\.js v\d/.test(l)).pop() ??
    ""
  );
}

/** The push install as its job's typed result (codes and role as enums). */
function pushInstallResult(r: { host: string; name: string; role: PushInstallRole; stateDir: string; facts?: TargetFacts; failures: PrerequisiteFailure[] }): JobResult {
  return {
    kind: {
      $case: "pushInstall",
      value: {
        host: r.host,
        name: r.name,
        role: pushInstallRoles.parse(r.role),
        stateDir: r.stateDir,
        facts: r.facts,
        failures: r.failures.map((f) => ({ code: prerequisiteCodes.parse(f.code), message: f.message })),
      },
    },
  };
}
