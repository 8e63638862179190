import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { jobTypes } from "../../common/enum-names/index.js";
import { html, renderPage, type SafeHtml } from "../../common/html/index.js";
import type { Logger } from "../../common/logger.js";
import { ReplicationState, type TelemetrySample } from "../../proto/index.js";
import { DASHBOARD_ACTION_CSP, DASHBOARD_CSP, DASHBOARD_CSP_HEADER, type DashboardPage, renderDashboardPage, renderRegions } from "./layout.js";
import { ACTIONS, ActionTokens, type ActionName, type DashboardActions, isActionName } from "./actions.js";
import { authenticateRequest, clearedSessionCookie, parseCookies, SESSION_COOKIE, sessionCookie } from "./request-auth.js";
import { pageAt } from "./routes.js";
import { DashboardSessions } from "./sessions.js";
import { type DashboardSource, Snapshot } from "./snapshot.js";

export interface DashboardServerOptions {
  host: string;
  port: number;
  source: DashboardSource;
  /** Whether a bearer token is the admin credential (the configuration server's own check). */
  isAdminCredential: (credential: string) => boolean;
  sessionMs: number;
  loginLinkMs: number;
  logger: Logger;
  /** Browsers watching at once; more get 503 (each costs a render per sample). */
  maxStreams?: number;
  /** Actions that change things (dashboard.actions); undefined keeps the dashboard read-only. */
  actions?: DashboardActions;
}

interface Stream {
  res: ServerResponse;
  path: string;
  sent: Map<string, string>;
}

/**
 * The web dashboard: read-only HTML pages rendered on the server, kept live by server-sent
 * events (regions re-rendered on each telemetry sample, sent only when they changed, and new
 * chart points). Every response needs the admin credential or a session cookie; without one it
 * is 401 with nothing about the deployment in it.
 */
export class DashboardServer {
  readonly sessions: DashboardSessions;
  private server?: Server;
  private readonly streams = new Set<Stream>();
  private previous?: TelemetrySample;
  private readonly onSample = (sample: TelemetrySample) => this.push(sample);
  private readonly actionTokens = new ActionTokens(randomBytes(32));

  constructor(private readonly o: DashboardServerOptions) {
    this.sessions = new DashboardSessions({ sessionMs: o.sessionMs, loginLinkMs: o.loginLinkMs });
  }

  /** `http://host:port/` once started. */
  get url(): string {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) return "";
    const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      try {
        this.handle(req, res);
      } catch (err) {
        this.o.logger.error("dashboard request failed", { path: req.url, error: (err as Error).message });
        if (!res.headersSent) this.plain(res, 500, "Internal error", "The page could not be rendered; the configuration server's log has the reason.");
        else res.end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    this.o.source.sampler.on("sample", this.onSample);
  }

  async stop(): Promise<void> {
    this.o.source.sampler.off("sample", this.onSample);
    for (const s of this.streams) s.res.end();
    this.streams.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A one-time login link (for `srlab dashboard`). */
  loginLink(): { url: string; expiresAt: Date } {
    const { token, expiresAt } = this.sessions.issueLoginToken();
    return { url: `${this.url}login?token=${token}`, expiresAt };
  }

  private headers(res: ServerResponse): void {
    res.setHeader("Content-Security-Policy", DASHBOARD_CSP_HEADER);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("Cache-Control", "no-store");
  }

  private plain(res: ServerResponse, status: number, title: string, message: string, extraHead = ""): void {
    this.headers(res);
    res.statusCode = status;
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    const page = renderPage({ title, body: html`<p>${message}</p>`, csp: DASHBOARD_CSP });
    res.end(extraHead ? page.replace("</head>", `${extraHead}</head>`) : page);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    const action = this.o.actions ? /^\/machines\/([^/]+)\/actions\/([a-z-]+)$/.exec(url.pathname) : null;
    if (action && (req.method === "GET" || req.method === "POST")) {
      const access = authenticateRequest(req.headers, this.sessions, this.o.isAdminCredential);
      if (!access) {
        this.plain(res, 401, "Log in to the srlab dashboard", "Run “srlab dashboard” on the lab machine and open the one-time login link it prints.");
        return;
      }
      let machine: string;
      try {
        machine = decodeURIComponent(action[1]!);
      } catch {
        this.plain(res, 404, "Not found", `Nothing at ${url.pathname}.`);
        return;
      }
      const name = action[2]!;
      if (!isActionName(name)) {
        this.plain(res, 404, "Not found", `There is no action ${name}.`);
        return;
      }
      const sessionId = access.kind === "session" ? access.sessionId : undefined;
      if (req.method === "GET") this.confirmAction(res, machine, name, sessionId);
      else void this.runAction(req, res, machine, name, sessionId);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      this.plain(res, 405, "Read-only", "The dashboard only shows; change things with the srlab CLI.");
      return;
    }
    if (url.pathname === "/login") {
      this.login(url, req, res);
      return;
    }
    const access = authenticateRequest(req.headers, this.sessions, this.o.isAdminCredential);
    if (!access) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="srlab dashboard"');
      this.plain(res, 401, "Log in to the srlab dashboard", "Run “srlab dashboard” on the lab machine and open the one-time login link it prints.");
      return;
    }
    if (url.pathname === "/logout") {
      if (access.kind === "session") this.sessions.end(access.sessionId);
      res.setHeader("Set-Cookie", clearedSessionCookie());
      this.plain(res, 200, "Logged out", "The session has ended. “srlab dashboard” prints a new login link.");
      return;
    }
    if (url.pathname === "/events") {
      this.events(url, req, res);
      return;
    }
    const report = /^\/jobs\/([0-9a-f-]{36})\/([A-Za-z0-9][A-Za-z0-9._-]*)$/.exec(url.pathname);
    if (report) {
      this.report(req, res, report[1]!, report[2]!);
      return;
    }
    const page = pageAt(url.pathname, new Snapshot(this.o.source));
    if (!page) {
      this.plain(res, 404, "Not found", `Nothing at ${url.pathname}.`);
      return;
    }
    this.headers(res);
    res.statusCode = 200;
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.end(req.method === "HEAD" ? undefined : renderDashboardPage(page, url.pathname));
  }

  /** An action's page: the form. Its Confirm button is what changes anything. */
  private actionPage(res: ServerResponse, status: number, title: string, body: SafeHtml): void {
    this.headers(res);
    res.setHeader("Content-Security-Policy", `${DASHBOARD_ACTION_CSP}; frame-ancestors 'none'`);
    res.statusCode = status;
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.end(renderPage({ title, body, csp: DASHBOARD_ACTION_CSP }));
  }

  /** GET: says what the action will do and asks for confirmation (and a network or tag name). */
  private confirmAction(res: ServerResponse, machine: string, action: ActionName, sessionId: string | undefined): void {
    const m = new Snapshot(this.o.source).machineByName(machine);
    if (!m) {
      this.plain(res, 404, "Not found", `There is no machine ${machine}.`);
      return;
    }
    const text = ACTIONS[action];
    const back = `/machines/${encodeURIComponent(m.name)}`;
    const networks = action === "test-failover" ? this.o.actions!.azureNetworks() : [];
    const field =
      action === "test-failover"
        ? networks.length
          ? html`<p><label>isolated network <select name="network">${networks.map((n) => html`<option value="${n}">${n}</option>`)}</select></label></p>`
          : html`<p class="reason">there is no Azure network yet (srlab network create NAME --address-space CIDR)</p>`
        : action === "tag"
          ? html`<p><label>tag name <input name="tag" maxlength="100" placeholder="made up when empty"></label></p>`
          : "";
    const state = ReplicationState[m.state]?.replace("REPLICATION_STATE_", "").toLowerCase().replaceAll("_", " ") ?? "unknown";
    this.actionPage(
      res,
      200,
      `${text.title}: ${m.name}`,
      html`<h1>${text.title} of ${m.name}?</h1>
<p>${text.effect}</p>
<p>The machine is ${state}. The same as <span class="code">${text.cli(m.name)}</span>, with the same checks.</p>
<form method="post" action="${back}/actions/${action}" data-confirm-form="${action}">
<input type="hidden" name="token" value="${sessionId ? this.actionTokens.issue(sessionId) : ""}">
${field}
<p><button type="submit" data-confirm="${action}">Confirm</button> <a href="${back}" data-cancel>Cancel</a></p>
</form>`,
    );
  }

  /** POST: the confirmed action, run through the AdminService's handlers; the answer names the job. */
  private async runAction(req: IncomingMessage, res: ServerResponse, machine: string, action: ActionName, sessionId: string | undefined): Promise<void> {
    const back = `/machines/${encodeURIComponent(machine)}`;
    try {
      const form = await readForm(req);
      // A session must show the token of its own form; a bearer credential is no cookie a site can borrow.
      if (sessionId !== undefined && !this.actionTokens.check(sessionId, form.get("token") ?? undefined)) {
        this.plain(res, 403, "Not confirmed", "The action was not confirmed from this dashboard session; open the machine's page and try again.");
        return;
      }
      const job = await this.o.actions!.run(action, machine, { network: form.get("network") ?? undefined, tag: form.get("tag") ?? undefined });
      this.o.logger.info("dashboard action", { action, machine, jobId: job.jobId });
      this.actionPage(
        res,
        200,
        `${ACTIONS[action].title}: ${machine}`,
        html`<h1>${ACTIONS[action].title} of ${machine} started</h1>
<p data-started-job="${job.jobId}">${jobTypes.name(job.type)} job ${job.jobId}.</p>
<p><a href="/jobs">Jobs</a> · <a href="${back}">${machine}</a></p>`,
      );
    } catch (err) {
      const e = err as Error & { code?: string };
      const status = e.code === "NOT_FOUND" ? 404 : e.code === "INVALID_ARGUMENT" || e.code === "FORM_TOO_LARGE" ? 400 : 409;
      this.actionPage(res, status, "Not started", html`<h1>${ACTIONS[action].title} of ${machine} was not started</h1>
<p class="reason" data-action-error>${e.message}</p>
<p><a href="${back}">Back to ${machine}</a></p>`);
    }
  }

  /**
   * A job's report file as its own document. Reports carry their own inline script and style, so
   * they get a CSP of their own, sandboxed: the report runs as an opaque origin that cannot read
   * the session cookie or call the dashboard.
   */
  private report(req: IncomingMessage, res: ServerResponse, jobId: string, name: string): void {
    const content = this.o.source.jobReport(jobId, name);
    if (!content) {
      this.plain(res, 404, "Not found", `Job ${jobId} keeps no report ${name}.`);
      return;
    }
    this.headers(res);
    res.setHeader("Content-Security-Policy", REPORT_CSP);
    res.statusCode = 200;
    res.setHeader("Content-Type", reportContentType(name));
    res.setHeader("Content-Length", content.length);
    res.end(req.method === "HEAD" ? undefined : content);
  }

  /**
   * Spends a one-time token for a session cookie. The answer is a page that moves on to the
   * dashboard by itself (not a redirect), so the first page request comes from the dashboard's
   * own origin and the SameSite=Strict cookie goes with it.
   */
  private login(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const redeemed = this.sessions.redeem(url.searchParams.get("token") ?? "");
    if (!redeemed) {
      this.plain(res, 401, "Login link not valid", "This login link was already used or has expired. Run “srlab dashboard” for a new one.");
      return;
    }
    // A browser that already had a session keeps only the new one.
    const old = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (old) this.sessions.end(old);
    res.setHeader("Set-Cookie", sessionCookie(redeemed.sessionId, (redeemed.expiresAt.getTime() - Date.now()) / 1000));
    this.o.logger.info("dashboard session started", { expiresAt: redeemed.expiresAt.toISOString() });
    this.plain(res, 200, "Logged in", "Opening the dashboard…", '<meta http-equiv="refresh" content="0;url=/">');
  }

  private events(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const path = url.searchParams.get("view") ?? "/";
    if (!pageAt(path, new Snapshot(this.o.source))) {
      this.plain(res, 404, "Not found", `No page at ${path}.`);
      return;
    }
    if (this.streams.size >= (this.o.maxStreams ?? 64)) {
      this.plain(res, 503, "Too many viewers", "Too many dashboard pages are open; close some and reload.");
      return;
    }
    this.headers(res);
    res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", Connection: "keep-alive" });
    res.write("retry: 2000\n\n");
    const stream: Stream = { res, path, sent: new Map() };
    this.streams.add(stream);
    const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
    ping.unref();
    req.on("close", () => {
      clearInterval(ping);
      this.streams.delete(stream);
    });
    // What the page was served with is what it shows; the first sample brings it up to date.
  }

  /** One sample: every open page gets the regions that changed and its new chart points. */
  private push(sample: TelemetrySample): void {
    const previous = this.previous;
    this.previous = sample;
    if (this.streams.size === 0) return;
    const snap = new Snapshot(this.o.source);
    // Pages watched by several browsers are rendered once per sample.
    const rendered = new Map<string, { page: DashboardPage; regions: Map<string, string> } | undefined>();
    for (const s of this.streams) {
      try {
        if (!rendered.has(s.path)) {
          const page = pageAt(s.path, snap);
          rendered.set(s.path, page && { page, regions: renderRegions(page) });
        }
        const view = rendered.get(s.path);
        if (!view) continue;
        const { page, regions } = view;
        const changed: Array<{ id: string; html: string }> = [];
        for (const [id, markup] of regions) {
          if (s.sent.get(id) === markup) continue;
          s.sent.set(id, markup);
          changed.push({ id, html: markup });
        }
        if (changed.length) s.res.write(`event: regions\ndata: ${JSON.stringify(changed)}\n\n`);
        const points = page.chartPoints?.(sample, previous);
        if (points?.length) s.res.write(`event: charts\ndata: ${JSON.stringify(points)}\n\n`);
      } catch (err) {
        this.o.logger.warn("dashboard update failed", { view: s.path, error: (err as Error).message });
      }
    }
  }
}

const REPORT_CSP = "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'";

function reportContentType(name: string): string {
  if (name.endsWith(".html")) return "text/html; charset=utf-8";
  if (name.endsWith(".json")) return "application/json";
  if (name.endsWith(".xml")) return "application/xml";
  return "text/plain; charset=utf-8";
}

/** A small urlencoded form body (the action forms carry a token and one field). */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = "";
  for await (const chunk of req) {
    body += (chunk as Buffer).toString("utf8");
    if (body.length > 8192) throw Object.assign(new Error("the form is too large"), { code: "FORM_TOO_LARGE" });
  }
  return new URLSearchParams(body);
}
