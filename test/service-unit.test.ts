import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { REPO_ROOT } from "./support/dist.js";
import { installService, planUnit, quoteWord, renderUnit, SYSTEM_UNIT_DIR, uninstallService, unitName } from "../cli/service/index.js";
import { DAEMON_ALLOCATOR_ENV, DAEMON_NODE_FLAGS } from "../common/bytes/index.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-unit-"));
// Config files outside /tmp and /home wherever the checkout lives (CI may clone into /tmp), so
// the units keep PrivateTmp= and ProtectHome=yes.
const configRoot = existsSync("/dev/shm") ? "/dev/shm" : join(REPO_ROOT, "node_modules", ".cache");
mkdirSync(configRoot, { recursive: true });
const configDir = mkdtempSync(join(configRoot, "srlab-unit-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(configDir, { recursive: true, force: true });
});

// The unit must name a real file for systemd-analyze; the entry script is only an argument.
const ENTRY = join(dir, "dist", "cli", "main.js");
mkdirSync(join(dir, "dist", "cli"), { recursive: true });
writeFileSync(ENTRY, "");

const link = { address: "cs.lab:7000", passphrase: "deployment-passphrase" };
const tls = { caFile: "/etc/srlab/ca.pem", certFile: "/etc/srlab/daemon.pem", keyFile: "/etc/srlab/daemon.key" };

/** A config file per role, in the shape `srlab up` writes them, with absolute paths on a lab host. */
const CONFIGS: Record<string, object> = {
  "config-server": { name: "cs", dataDir: "/srv/srlab/cs", passphrase: link.passphrase, storage: { kind: "directory", directory: "/srv/blobs" }, tls },
  "process-server": { name: "ps-1", dataDir: "/srv/srlab/ps-1", configServer: link, cache: { dir: "/srv/cache/ps-1" }, tls },
  "mobility-agent": {
    name: "machine-1",
    dataDir: "/var/lib/srlab/mobility-agent/m1",
    configServer: link,
    disks: [{ path: "/srv/disks/machine-1/d0.img", sizeBytes: 1 << 20 }],
    nbd: { port: 10809, socketPath: "/run/srlab/nbd.sock" },
    log: { file: "/var/log/srlab/agent.log" },
    tls,
  },
  "master-target": { name: "mt", dataDir: "/srv/srlab/mt", configServer: link, datastore: "/srv/datastore", tls },
};

function configFile(name: string, content: object, where = configDir): string {
  const file = join(where, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(content)); // JSON is YAML
  return file;
}

const plan = (role: string, content: object, extra: Partial<Parameters<typeof planUnit>[0]> = {}, where?: string) =>
  planUnit({ role, configFile: configFile(`${role}-${Math.random()}`, content, where), nodePath: process.execPath, entry: ENTRY, ...extra });

const settings = (text: string, key: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

describe("srlab service: unit text", () => {
  test.each(Object.keys(CONFIGS))("%s: notify readiness, restart, state and logs directories, hardening", async (role) => {
    const spec = await plan(role, CONFIGS[role]!);
    const text = renderUnit(spec);
    const command = role === "mobility-agent" ? "agent" : role;
    expect(settings(text, "ExecStart")).toEqual([[process.execPath, ...DAEMON_NODE_FLAGS, ENTRY, command, "--config", spec.configFile].join(" ")]);
    expect(settings(text, "Type")).toEqual(["notify"]);
    expect(settings(text, "NotifyAccess")).toEqual(["main"]);
    expect(settings(text, "Restart")).toEqual(["on-failure"]);
    expect(settings(text, "WatchdogSec")).toEqual(["30s"]);
    expect(settings(text, "StateDirectory")).toEqual([`srlab/${role}`]);
    expect(settings(text, "WorkingDirectory")).toEqual([`/var/lib/srlab/${role}`]);
    expect(settings(text, "LogsDirectory")).toEqual(["srlab"]);
    for (const [name, value] of Object.entries(DAEMON_ALLOCATOR_ENV)) expect(settings(text, "Environment")).toContain(`${name}=${value}`);
    for (const [key, value] of [
      ["NoNewPrivileges", "yes"],
      ["ProtectSystem", "strict"],
      ["ProtectHome", "yes"],
      ["PrivateTmp", "yes"],
      ["PrivateDevices", "yes"],
      ["RestrictNamespaces", "yes"],
      ["SystemCallFilter", "@system-service"],
      ["CapabilityBoundingSet", ""],
    ]) {
      expect(settings(text, key!), key).toEqual([value]);
    }
    // V8 compiles code at run time: this option would kill every daemon.
    expect(text).not.toMatch(/^MemoryDenyWriteExecute=/m);
    expect(settings(text, "WantedBy")).toEqual(["multi-user.target"]);
  });

  test("each daemon may write exactly where its config says, outside the state and logs directories", async () => {
    const rw = async (role: string) => settings(renderUnit(await plan(role, CONFIGS[role]!)), "ReadWritePaths");
    expect(await rw("config-server")).toEqual(["-/srv/blobs", "-/srv/srlab/cs"]);
    expect(await rw("process-server")).toEqual(["-/srv/cache/ps-1", "-/srv/srlab/ps-1"]);
    // dataDir under the state directory and log.file under /var/log/srlab need nothing more.
    expect(await rw("mobility-agent")).toEqual(["-/run/srlab", "-/srv/disks/machine-1"]);
    expect(await rw("master-target")).toEqual(["-/srv/datastore", "-/srv/srlab/mt"]);
    const extra = await plan("master-target", CONFIGS["master-target"]!, { extraReadWritePaths: ["/srv/failback"] });
    expect(extra.readWritePaths).toContain("/srv/failback");
  });

  test("a config without log.file logs into LogsDirectory; one with log.file keeps it", async () => {
    const ps = renderUnit(await plan("process-server", CONFIGS["process-server"]!));
    const logSettings = (text: string) => settings(text, "Environment").filter((e) => e.startsWith("SRLAB_LOG__"));
    expect(logSettings(ps)).toEqual(["SRLAB_LOG__FILE=/var/log/srlab/process-server.log"]);
    const agent = renderUnit(await plan("agent", CONFIGS["mobility-agent"]!));
    expect(logSettings(agent)).toEqual([]);
  });

  test("relative paths stay inside the state directory (the working directory)", async () => {
    const spec = await plan("process-server", { name: "ps", dataDir: "data", configServer: link, cache: { dir: "cache" } });
    expect(spec.readWritePaths).toEqual([]);
  });

  test("files under /home, /tmp or a port below 1024 relax exactly the setting they need", async () => {
    const home = await plan("process-server", { ...CONFIGS["process-server"], dataDir: "/home/lab/ps" }, { user: "lab" });
    const homeText = renderUnit(home);
    expect(settings(homeText, "ProtectHome")).toEqual(["read-only"]);
    expect(settings(homeText, "ReadWritePaths")).toContain("-/home/lab/ps");
    expect(settings(homeText, "User")).toEqual(["lab"]);

    const dataInTmp = renderUnit(await plan("process-server", { ...CONFIGS["process-server"], dataDir: "/tmp/ps" }));
    expect(settings(dataInTmp, "PrivateTmp")).toEqual([]);
    expect(settings(dataInTmp, "ReadWritePaths")).toContain("-/tmp/ps");
    const configInTmp = await plan("process-server", CONFIGS["process-server"]!, {}, "/tmp");
    expect(configInTmp.privateTmp).toBe(false);
    rmSync(configInTmp.configFile);

    const low = renderUnit(await plan("agent", { ...CONFIGS["mobility-agent"], nbd: { port: 809 } }, { user: "lab" }));
    expect(settings(low, "CapabilityBoundingSet")).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(settings(low, "AmbientCapabilities")).toEqual(["CAP_NET_BIND_SERVICE"]);
    const asRoot = await plan("agent", CONFIGS["mobility-agent"]!, { user: "root" });
    expect(asRoot.user).toBeUndefined();
  });

  test("words with spaces, quotes, % and $ reach the daemon as written", () => {
    expect(quoteWord("/srv/srlab/ps.yaml")).toBe("/srv/srlab/ps.yaml");
    expect(quoteWord("/srv/my lab/ps.yaml")).toBe('"/srv/my lab/ps.yaml"');
    expect(quoteWord("/srv/100%/$HOME")).toBe("/srv/100%%/$$HOME");
    expect(quoteWord('a"b')).toBe('"a\\"b"');
    expect(() => quoteWord("a\nb")).toThrow(/line break/);
  });

  test("bad input is one clear error and writes nothing", async () => {
    await expect(plan("cache-server", CONFIGS["process-server"]!)).rejects.toThrow(/unknown role "cache-server": expected one of config-server, process-server, mobility-agent, master-target/);
    await expect(plan("process-server", { name: "ps", dataDir: "/srv/ps" })).rejects.toThrow(/invalid configuration in .*configServer/);
    await expect(planUnit({ role: "process-server", configFile: join(dir, "missing.yaml"), nodePath: process.execPath, entry: ENTRY })).rejects.toThrow(
      /cannot read config file/,
    );
    await expect(plan("process-server", CONFIGS["process-server"]!, { entry: "/src/cli/main.ts" })).rejects.toThrow(/build it/);
    await expect(plan("process-server", CONFIGS["process-server"]!, { user: "bad user" })).rejects.toThrow(/not a valid user name/);
  });
});

describe("srlab service: install and uninstall", () => {
  test("install writes the unit, creates its directories and reloads systemd; uninstall stops it and removes only srlab's unit", async () => {
    const unitDir = join(dir, "units");
    mkdirSync(unitDir);
    const cache = join(dir, "fresh-cache");
    const spec = await plan("process-server", { ...CONFIGS["process-server"], cache: { dir: cache }, dataDir: "ps-data" });
    const calls: string[][] = [];
    const path = await installService(spec, { unitDir, start: true, systemctl: (a) => calls.push(a) });
    expect(path).toBe(join(unitDir, "srlab-process-server.service"));
    expect(readFileSync(path, "utf8")).toBe(renderUnit(spec));
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(statSync(cache).isDirectory()).toBe(true);
    expect(calls).toEqual([["daemon-reload"], ["enable", "--now", "srlab-process-server.service"]]);

    calls.length = 0;
    uninstallService("process-server", { unitDir, systemctl: (a) => calls.push(a) });
    expect(calls).toEqual([["disable", "--now", "srlab-process-server.service"], ["daemon-reload"]]);
    expect(() => statSync(path)).toThrow();
    expect(() => uninstallService("process-server", { unitDir, systemctl: () => undefined })).toThrow(/nothing to uninstall/);
    writeFileSync(join(unitDir, unitName("master-target")), "[Service]\nExecStart=/bin/true\n");
    expect(() => uninstallService("master-target", { unitDir, systemctl: () => undefined })).toThrow(/not written by srlab/);
  });

  test("--start where systemd does not run is one clear error, and nothing is written or created", async () => {
    const cache = join(dir, "never-created-cache");
    const spec = await plan("process-server", { ...CONFIGS["process-server"], cache: { dir: cache } });
    const unitFile = join(SYSTEM_UNIT_DIR, unitName(spec.role));
    const existed = existsSync(unitFile);
    await expect(installService(spec, { start: true, systemd: false })).rejects.toThrow(
      /^cannot start srlab-process-server\.service: systemd does not run on this host \(no \/run\/systemd\/system; it is not PID 1 here.*nothing was written or started\. Run the daemon with srlab join --detach/,
    );
    expect(existsSync(unitFile)).toBe(existed);
    expect(existsSync(cache)).toBe(false);
    // A unit directory systemd does not read cannot be started from either.
    const elsewhere = mkdtempSync(join(dir, "elsewhere-"));
    await expect(installService(spec, { unitDir: elsewhere, start: true })).rejects.toThrow(/--start needs the unit in \/etc\/systemd\/system .*nothing was written/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  test("without systemd, install writes the unit, calls no systemctl and says it is not loaded", async () => {
    const unitDir = mkdtempSync(join(dir, "no-systemd-"));
    const spec = await plan("master-target", CONFIGS["master-target"]!);
    const said: string[] = [];
    const path = await installService(spec, { unitDir, systemd: false, say: (l) => said.push(l) });
    expect(readFileSync(path, "utf8")).toBe(renderUnit(spec));
    expect(said.at(-1)).toMatch(/the unit is written, not loaded/);
  });

  test("install refuses an account the host does not have", async () => {
    const spec = await plan("process-server", CONFIGS["process-server"]!, { user: "srlab-no-such-user" });
    await expect(installService(spec, { unitDir: dir, systemctl: () => undefined })).rejects.toThrow(/no user "srlab-no-such-user"/);
  });
});

function hasSystemdAnalyze(): boolean {
  try {
    execFileSync("systemd-analyze", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** systemd-analyze verify's complaints about this one file (it exits 0 on many of them). */
function verify(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile("systemd-analyze", ["verify", "--man=no", file], (err, stdout, stderr) => {
      const lines = `${stdout}${stderr}`.split("\n").filter((l) => l.includes(file) || l.startsWith(`${basename(file)}:`));
      if (err && lines.length === 0) reject(new Error(`systemd-analyze verify failed: ${stderr}`));
      else resolve(err ? [...lines, `exit ${err.code}`] : lines);
    });
  });
}

describe("srlab service: systemd-analyze verify", () => {
  // A plain account: systemd warns about "nobody" on purpose, and root needs no User= line.
  const users = [userInfo().username, "daemon"].filter((u) => {
    try {
      execFileSync("getent", ["passwd", u], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  });

  test.for(Object.keys(CONFIGS))("%s unit passes systemd-analyze verify", async (role, ctx) => {
    if (!hasSystemdAnalyze()) ctx.skip("systemd-analyze not installed (apt-get install systemd)");
    for (const user of users) {
      const spec = await plan(role, CONFIGS[role]!, { user });
      const unitDir = mkdtempSync(join(dir, "verify-"));
      const file = join(unitDir, unitName(spec.role));
      writeFileSync(file, renderUnit(spec));
      expect(await verify(file), `${role} as ${user}`).toEqual([]);
    }
  });

  // What srlab join --service writes as root (config and keys in /etc/srlab, state in
  // /var/lib/srlab) is the unit systemd gets on a joined host.
  test.for(["agent", "process-server", "master-target"])("a unit for a %s joined as a service passes systemd-analyze verify", async (role, ctx) => {
    if (!hasSystemdAnalyze()) ctx.skip("systemd-analyze not installed (apt-get install systemd)");
    const name = `joined-${role}`;
    const joined = {
      name,
      dataDir: `/var/lib/srlab/data/${name}`,
      listen: { host: "10.0.0.2", port: 7443 },
      metrics: { host: "10.0.0.2", port: 9464 },
      log: { level: "info", format: "json" },
      tls: { caFile: "/etc/srlab/pki/ca.pem", certFile: `/etc/srlab/pki/${name}.pem`, keyFile: `/etc/srlab/pki/${name}-key.pem` },
      readyFile: `/var/lib/srlab/run/${name}.ready.json`,
      configServer: { address: "head.lab:7000", credential: "component-credential" },
      ...(role === "agent" ? { disks: [{ path: `/var/lib/srlab/data/${name}/disk-0.img`, sizeBytes: 1 << 30 }], nbd: { host: "10.0.0.2", port: 10809 } } : {}),
      ...(role === "process-server" ? { location: "on-premises" } : {}),
    };
    const spec = await plan(role, joined);
    const unitDir = mkdtempSync(join(dir, "verify-joined-"));
    const file = join(unitDir, unitName(spec.role));
    writeFileSync(file, renderUnit(spec));
    expect(await verify(file)).toEqual([]);
  });

  test("the check notices a broken unit (so a clean result means something)", async (ctx) => {
    if (!hasSystemdAnalyze()) ctx.skip("systemd-analyze not installed (apt-get install systemd)");
    const spec = await plan("process-server", CONFIGS["process-server"]!);
    const unitDir = mkdtempSync(join(dir, "broken-"));
    const file = join(unitDir, unitName(spec.role));
    writeFileSync(file, renderUnit(spec).replace("ProtectHome=yes", "ProtectHome=maybe").replace(`ExecStart=${process.execPath}`, "ExecStart=/nonexistent/node"));
    const complaints = await verify(file);
    expect(complaints.join("\n")).toMatch(/protect home value/i);
    expect(complaints.join("\n")).toMatch(/nonexistent\/node/);
  });
});
