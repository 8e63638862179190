import { joinToken } from "./support/join-token.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminServiceClient, ComponentRole, ConfigurationServiceClient, JobState, JobType, SiteLocation } from "../proto/index.js";
import { channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { ConfigServer, configServerOptions } from "../config-server/index.js";
import { authenticateRequest, DashboardSessions, parseCookies, SESSION_COOKIE, sessionCookie } from "../config-server/dashboard/index.js";
import { testConfigServerOptions } from "./support/config-server-options.js";

describe("dashboard sessions", () => {
  const clock = { t: 1_000_000 };
  const sessions = () => new DashboardSessions({ sessionMs: 60_000, loginLinkMs: 5_000, now: () => clock.t });

  test("a login token gives one session, once", () => {
    const s = sessions();
    const { token, expiresAt } = s.issueLoginToken();
    expect(expiresAt.getTime()).toBe(clock.t + 5_000);
    const first = s.redeem(token);
    expect(first).toBeDefined();
    expect(s.isValid(first!.sessionId)).toBe(true);
    expect(s.redeem(token)).toBeUndefined();
    expect(s.sessionCount).toBe(1);
  });

  test("an expired token, an unknown token and an empty one are refused", () => {
    const s = sessions();
    const { token } = s.issueLoginToken();
    clock.t += 5_001;
    expect(s.redeem(token)).toBeUndefined();
    expect(s.redeem("not-a-token")).toBeUndefined();
    expect(s.redeem("")).toBeUndefined();
  });

  test("a session ends when it expires or is ended; a made-up id is never valid", () => {
    const s = sessions();
    const a = s.redeem(s.issueLoginToken().token)!;
    const b = s.redeem(s.issueLoginToken().token)!;
    expect(s.isValid("x".repeat(43))).toBe(false);
    expect(s.isValid(undefined)).toBe(false);
    s.end(b.sessionId);
    expect(s.isValid(b.sessionId)).toBe(false);
    clock.t += 60_000;
    expect(s.isValid(a.sessionId)).toBe(false);
  });

  test("a flood of logins keeps only the newest sessions", () => {
    const s = new DashboardSessions({ sessionMs: 60_000, loginLinkMs: 5_000, maxSessions: 3, now: () => clock.t });
    const ids = Array.from({ length: 5 }, () => s.redeem(s.issueLoginToken().token)!.sessionId);
    expect(s.sessionCount).toBe(3);
    expect(ids.map((id) => s.isValid(id))).toEqual([false, false, true, true, true]);
  });
});

describe("dashboard request authentication", () => {
  const s = new DashboardSessions({ sessionMs: 60_000, loginLinkMs: 5_000 });
  const session = s.redeem(s.issueLoginToken().token)!.sessionId;
  const isAdmin = (c: string) => c === "the-admin-credential";

  test("cookies parse, and the session cookie is HttpOnly and SameSite=Strict", () => {
    expect([...parseCookies("a=1; srlab_session=abc; =x; junk; a=2")]).toEqual([
      ["a", "1"],
      ["srlab_session", "abc"],
    ]);
    const cookie = sessionCookie("abc", 3600);
    expect(cookie).toContain(`${SESSION_COOKIE}=abc`);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Max-Age=3600");
  });

  test("the admin credential, a live session, or nobody", () => {
    expect(authenticateRequest({ authorization: "Bearer the-admin-credential" }, s, isAdmin)).toEqual({ kind: "admin" });
    expect(authenticateRequest({ cookie: `${SESSION_COOKIE}=${session}` }, s, isAdmin)).toEqual({ kind: "session", sessionId: session });
    expect(authenticateRequest({}, s, isAdmin)).toBeUndefined();
    expect(authenticateRequest({ cookie: `${SESSION_COOKIE}=forged` }, s, isAdmin)).toBeUndefined();
    expect(authenticateRequest({ authorization: "Bearer wrong" }, s, isAdmin)).toBeUndefined();
    expect(authenticateRequest({ authorization: "Basic dXNlcjpwYXNz" }, s, isAdmin)).toBeUndefined();
    // A wrong credential is not rescued by a good cookie.
    expect(authenticateRequest({ authorization: "Bearer wrong", cookie: `${SESSION_COOKIE}=${session}` }, s, isAdmin)).toBeUndefined();
  });
});

describe("the configuration server's dashboard over HTTP", () => {
  const dir = mkdtempSync(join(tmpdir(), "srlab-dash-"));
  let server: ConfigServer;
  let admin: AdminServiceClient;
  let credential: string;

  interface Reply {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }
  const get = (path: string, headers: Record<string, string> = {}, method = "GET", untilEvent?: string): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request(new URL(path, server.dashboardUrl), { method, headers }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
          if (untilEvent && body.includes(untilEvent)) {
            res.destroy();
            resolve({ status: res.statusCode!, headers: res.headers, body });
          }
        });
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on("error", reject);
      req.end();
    });

  beforeAll(async () => {
    const options = testConfigServerOptions(dir, { telemetry: { intervalMs: 200 } });
    server = new ConfigServer(options, silentLogger());
    await server.start();
    credential = readFileSync(join(dir, "cs", "admin.credential"), "utf8").trim();
    admin = new AdminServiceClient(server.grpcAddress, channelCredentials(undefined));
    const components = new ConfigurationServiceClient(server.grpcAddress, channelCredentials(undefined));
    await unaryCall(components, components.register, {
      passphrase: "",
      joinToken: await joinToken(server, "process-server"),
      role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
      name: "ps-visible-only-when-logged-in",
      address: "127.0.0.1:1",
      location: SiteLocation.SITE_LOCATION_ON_PREMISES,
      disks: [],
      version: "test",
      certificateRequest: "",
      hostName: "",
      metricsAddress: "",
    });
    components.close();
  });
  afterAll(async () => {
    admin?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const login = async () =>
    unaryCall(admin, admin.createDashboardLogin, {}, credential);

  test("is on by default, on loopback, and written to the ready file's address", () => {
    expect(server.dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  test("without a credential every path is 401 and shows nothing of the deployment", async () => {
    for (const path of ["/", "/machines", "/process-servers", "/jobs", "/alerts", "/machines/x", "/events?view=/", "/no-such-page"]) {
      const r = await get(path);
      expect(r.status, path).toBe(401);
      expect(r.body).not.toContain("ps-visible-only-when-logged-in");
      expect(r.body).toContain("srlab dashboard");
    }
    const forged = await get("/", { cookie: `${SESSION_COOKIE}=${"A".repeat(43)}` });
    expect(forged.status).toBe(401);
    const wrong = await get("/", { authorization: "Bearer agent/forged.bm90LWEtbWFj" });
    expect(wrong.status).toBe(401);
  });

  test("the admin credential as a bearer token opens every page", async () => {
    const r = await get("/process-servers", { authorization: `Bearer ${credential}` });
    expect(r.status).toBe(200);
    expect(r.body).toContain("ps-visible-only-when-logged-in");
    expect(r.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(r.headers["cache-control"]).toBe("no-store");
  });

  test("a one-time login link sets an HttpOnly, SameSite=Strict session cookie and works once", async () => {
    const link = await login();
    expect(link.loginUrl.startsWith(server.dashboardUrl)).toBe(true);
    expect(link.dashboardUrl).toBe(server.dashboardUrl);
    expect(link.expiresAt!.getTime()).toBeGreaterThan(Date.now());
    const first = await get(link.loginUrl);
    expect(first.status).toBe(200);
    const cookie = String(first.headers["set-cookie"]);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const session = /srlab_session=([^;]+)/.exec(cookie)![1]!;
    const page = await get("/", { cookie: `${SESSION_COOKIE}=${session}` });
    expect(page.status).toBe(200);
    expect(page.body).toContain("ps-visible-only-when-logged-in");
    const again = await get(link.loginUrl);
    expect(again.status).toBe(401);
    expect(again.headers["set-cookie"]).toBeUndefined();
  });

  test("a session's event stream pushes the page's regions; changes are refused", async () => {
    const link = await login();
    const session = /srlab_session=([^;]+)/.exec(String((await get(link.loginUrl)).headers["set-cookie"]))![1]!;
    const events = await get("/events?view=/process-servers", { cookie: `${SESSION_COOKIE}=${session}` }, "GET", "event: regions");
    expect(events.status).toBe(200);
    expect(events.headers["content-type"]).toContain("text/event-stream");
    expect(events.body).toContain("ps-visible-only-when-logged-in");
    const post = await get("/", { cookie: `${SESSION_COOKIE}=${session}` }, "POST");
    expect(post.status).toBe(405);
    const logout = await get("/logout", { cookie: `${SESSION_COOKIE}=${session}` });
    expect(logout.status).toBe(200);
    expect((await get("/", { cookie: `${SESSION_COOKIE}=${session}` })).status).toBe(401);
  });

  test("a job the CLI runs shows on the jobs page with its report, served sandboxed and only with the credential", async () => {
    const bearer = { authorization: `Bearer ${credential}` };
    const { job } = await unaryCall(admin, admin.createClientJob, { type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: ["load", "verify"] }, credential);
    expect(JobState[job!.state]).toBe("JOB_STATE_IN_PROGRESS");
    await unaryCall(admin, admin.updateClientJob, { jobId: job!.jobId, stepName: "load", stepState: JobState.JOB_STATE_SUCCEEDED, progressPercent: 100, message: "", finish: 0, error: "", result: undefined }, credential);
    const html = "<!doctype html><title>run</title><p>the story of the run</p>";
    await unaryCall(admin, admin.attachJobReport, { jobId: job!.jobId, name: "report.html", content: Buffer.from(html) }, credential);
    const done = await unaryCall(admin, admin.updateClientJob, { jobId: job!.jobId, stepName: "", stepState: 0, progressPercent: 0, message: "", finish: JobState.JOB_STATE_SUCCEEDED, error: "", result: { kind: { $case: "loadTest", value: { verdict: { passed: true, exitCode: 0, reason: "" }, reportDir: "", summary: undefined } } } }, credential);
    expect(done.job!.reports).toEqual(["report.html"]);
    expect(done.job!.steps.map((s) => JobState[s.state])).toEqual(["JOB_STATE_SUCCEEDED", "JOB_STATE_SUCCEEDED"]);

    const page = await get("/jobs", bearer);
    expect(page.body).toContain(`href="/jobs/${job!.jobId}/report.html"`);
    const path = `/jobs/${job!.jobId}/report.html`;
    expect((await get(path)).status).toBe(401);
    const report = await get(path, bearer);
    expect(report.status).toBe(200);
    expect(report.body).toBe(html);
    expect(report.headers["content-security-policy"]).toMatch(/^sandbox allow-scripts;/);
    expect((await get(`/jobs/${job!.jobId}/junit.xml`, bearer)).status).toBe(404);
    expect((await get(`/jobs/${job!.jobId}/..%2Fadmin.credential`, bearer)).status).toBe(404);

    // An ended job takes no more updates, a report needs a plain name, and an unknown end state is refused.
    await expect(unaryCall(admin, admin.updateClientJob, { jobId: job!.jobId, stepName: "verify", stepState: JobState.JOB_STATE_FAILED, progressPercent: 0, message: "", finish: 0, error: "", result: undefined }, credential)).rejects.toThrow(/already finished/);
    await expect(unaryCall(admin, admin.attachJobReport, { jobId: job!.jobId, name: "../x.html", content: Buffer.from("x") }, credential)).rejects.toThrow(/plain file name/);
    const other = await unaryCall(admin, admin.createClientJob, { type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: [] }, credential);
    await expect(unaryCall(admin, admin.updateClientJob, { jobId: other.job!.jobId, stepName: "", stepState: 0, progressPercent: 0, message: "", finish: JobState.JOB_STATE_SKIPPED, error: "", result: undefined }, credential)).rejects.toThrow(/finish must be SUCCEEDED, FAILED or CANCELLED/);
    const pushResult = { kind: { $case: "pushInstall" as const, value: { host: "h", name: "", role: 1, stateDir: "", facts: undefined, failures: [] } } };
    await expect(unaryCall(admin, admin.updateClientJob, { jobId: other.job!.jobId, stepName: "", stepState: 0, progressPercent: 0, message: "", finish: JobState.JOB_STATE_SUCCEEDED, error: "", result: pushResult }, credential)).rejects.toThrow(/a LoadTest job ends with a loadTest result, not pushInstall/);
    await expect(unaryCall(admin, admin.updateClientJob, { jobId: other.job!.jobId, stepName: "load", stepState: 0, progressPercent: 0, message: "", finish: 0, error: "", result: pushResult }, credential)).rejects.toThrow(/a result is given with finish/);
    expect((await unaryCall(admin, admin.getJob, { jobId: other.job!.jobId }, credential)).job!.state, "refused updates left the job as it was").toBe(other.job!.state);
    await expect(unaryCall(admin, admin.createClientJob, { type: JobType.JOB_TYPE_FAILOVER, machine: "", steps: [] }, credential)).rejects.toThrow(/job type Failover: the CLI records only LoadTest and PushInstall jobs/);
  });
});

describe("a configuration server without its dashboard", () => {
  const start = async (dashboard: Record<string, unknown>) => {
    const dir = mkdtempSync(join(tmpdir(), "srlab-dash-off-"));
    const server = new ConfigServer(
      configServerOptions.parse({
        dataDir: join(dir, "cs"),
        insecure: true,
        passphrase: "correct horse battery",
        storage: { kind: "directory", directory: join(dir, "storage") },
        dashboard,
      }),
      silentLogger(),
    );
    await server.start();
    const admin = new AdminServiceClient(server.grpcAddress, channelCredentials(undefined));
    const credential = readFileSync(join(dir, "cs", "admin.credential"), "utf8").trim();
    return {
      server,
      login: () => unaryCall(admin, admin.createDashboardLogin, {}, credential),
      stop: async () => {
        admin.close();
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };

  test("dashboard.enabled false (as from the environment) serves nothing, and srlab dashboard says why", async () => {
    const off = await start({ enabled: "false" });
    try {
      expect(off.server.dashboardUrl).toBe("");
      await expect(off.login()).rejects.toThrow(/dashboard is off.*dashboard\.enabled: false/);
    } finally {
      await off.stop();
    }
  });

  test("a taken port leaves the configuration server running without the dashboard, and says so", async () => {
    const first = await start({});
    const port = Number(new URL(first.server.dashboardUrl).port);
    const second = await start({ port });
    try {
      expect(second.server.dashboardUrl).toBe("");
      expect(second.server.grpcAddress).not.toBe("");
      await expect(second.login()).rejects.toThrow(new RegExp(`could not listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});
