import { createServer, type Server } from "node:http";

export interface HealthSource {
  /** The process is alive and its loops are running. */
  healthy(): boolean;
  /** Leader with its initial sync done, or a standby that has tried for the lease. */
  ready(): boolean;
}

export interface Route {
  readonly contentType: string;
  render(): Promise<string> | string;
}

/**
 * The one HTTP port of the controller: /healthz and /readyz for the container
 * and load-balancer checks, plus extra routes (e.g. /metrics) given by the caller.
 */
export async function startHttpServer(
  port: number,
  health: HealthSource,
  routes: Readonly<Record<string, Route>> = {},
  host = "0.0.0.0",
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const reply = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "method not allowed\n");
    if (path === "/healthz") return health.healthy() ? reply(200, "ok\n") : reply(503, "unhealthy\n");
    if (path === "/readyz") return health.ready() ? reply(200, "ready\n") : reply(503, "not ready\n");
    const route = routes[path];
    if (route) {
      Promise.resolve(route.render()).then(
        (body) => reply(200, body, route.contentType),
        (err: unknown) => reply(500, `${String(err)}\n`),
      );
      return;
    }
    reply(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "EADDRINUSE"
          ? new Error(`HTTP_PORT ${port} is already in use on ${host}: set HTTP_PORT to a free port (0 picks one)`, { cause: err })
          : err,
      );
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;
  return {
    server,
    port: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
