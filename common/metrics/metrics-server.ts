import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../logger.js";

export interface MetricsServerOptions {
  /** Defaults to loopback: metrics are for the lab's Prometheus, not the world. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  registry: Registry;
  logger?: Logger;
}

export interface MetricsServer {
  port: number;
  /** Full scrape URL, e.g. http://127.0.0.1:9464/metrics. */
  url: string;
  stop(): Promise<void>;
}

/** Serves `GET /metrics` (Prometheus text exposition) and `GET /healthz`. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { host = "127.0.0.1", port = 0, registry, logger } = options;
  const server = createServer((req, res) => {
    handle(req, res, registry).catch((err: unknown) => {
      logger?.error("metrics request failed", { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("metrics collection failed\n");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound}/metrics`;
  logger?.info("metrics endpoint listening", { url });

  let stopped: Promise<void> | undefined;
  return {
    port: bound,
    url,
    stop() {
      stopped ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // A scraper's keep-alive connection would otherwise hold close() open.
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, registry: Registry): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (path !== "/metrics" && path !== "/healthz") {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
    return;
  }
  const body = path === "/metrics" ? await registry.metrics() : "ok\n";
  const contentType = path === "/metrics" ? registry.contentType : "text/plain; charset=utf-8";
  res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(req.method === "HEAD" ? undefined : body);
}
