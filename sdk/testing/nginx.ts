import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NGINX_PATH = "/usr/sbin/nginx";

/** One line of the access log, as nginx itself counted it. */
export interface NginxLogEntry {
  method: string;
  uri: string;
  /** The Range request header, "" when there was none. */
  range: string;
  ifMatch: string;
  status: number;
  /** Body bytes sent ($body_bytes_sent). */
  bodyBytes: number;
  /** All bytes sent, headers included ($bytes_sent). */
  bytesSent: number;
}

/** A running nginx serving the files in `root`. */
export interface NginxServer {
  /** The directory served: write files here. */
  readonly root: string;
  readonly port: number;
  /** The URL of `path` (a file name in `root`). */
  url(path: string): string;
  /**
   * The access log's entries so far, in the order nginx finished the requests. A marker request is
   * sent first and waited for, so every request answered before the call is in the list.
   */
  accessLog(): Promise<NginxLogEntry[]>;
  /** Ends nginx and removes its directories. */
  stop(): Promise<void>;
}

const MARK_PREFIX = "/.qans-log-mark-";

/**
 * Starts the system's nginx (Debian package `nginx`) as a child process on a free loopback port,
 * with a configuration, logs, pid file, temporary paths and document root all in a new temporary
 * directory. Throws, with what to install, when nginx is missing.
 */
export async function startNginx(): Promise<NginxServer> {
  if (!existsSync(NGINX_PATH)) {
    throw new Error(`nginx is not installed (${NGINX_PATH} is missing): install the Debian package with "apt-get install -y nginx"; .ci/run does this`);
  }
  const dir = await mkdtemp(join(tmpdir(), "qans-nginx-"));
  // Readable by a worker that drops root privileges.
  await chmod(dir, 0o755);
  const root = join(dir, "root");
  await mkdir(root, { mode: 0o755 });
  for (const sub of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) await mkdir(join(dir, "temp", sub), { recursive: true });
  let lastError: unknown;
  try {
    // Another process may take the free port between choosing and binding it: try a few.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      try {
        const child = await launch(dir, root, port);
        return server(child, dir, root, port);
      } catch (error) {
        lastError = error;
        if (!String(error).includes("Address already in use")) break;
      }
    }
  } catch (error) {
    lastError = error;
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

function config(dir: string, root: string, port: number): string {
  return `# Written by sdk/testing/nginx.ts for one test run.
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;

events {
  worker_connections 256;
}

http {
  log_format qans escape=json '{"method":"$request_method","uri":"$request_uri","range":"$http_range","ifMatch":"$http_if_match","status":$status,"bodyBytes":$body_bytes_sent,"bytesSent":$bytes_sent}';
  access_log ${join(dir, "access.log")} qans;
  client_body_temp_path ${join(dir, "temp", "client_body")};
  proxy_temp_path ${join(dir, "temp", "proxy")};
  fastcgi_temp_path ${join(dir, "temp", "fastcgi")};
  uwsgi_temp_path ${join(dir, "temp", "uwsgi")};
  scgi_temp_path ${join(dir, "temp", "scgi")};
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 30s;

  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
    }
  }
}
`;
}

/** Starts nginx and resolves once it answers on `port`; rejects with its error output if it exits. */
async function launch(dir: string, root: string, port: number): Promise<ChildProcess> {
  const confPath = join(dir, "nginx.conf");
  await writeFile(confPath, config(dir, root, port));
  const child = spawn(NGINX_PATH, ["-p", dir, "-c", confPath, "-e", join(dir, "error.log")], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (data: Buffer) => (output += data.toString()));
  child.stderr!.on("data", (data: Buffer) => (output += data.toString()));
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));
  child.once("error", (error) => (exited = `could not start: ${error.message}`));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const log = await readFile(join(dir, "error.log"), "utf8").catch(() => "");
      throw new Error(`nginx ${exited}: ${output.trim()} ${log.trim()}`.trim());
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}${MARK_PREFIX}start`);
      await response.body?.cancel();
      return child;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  child.kill("SIGKILL");
  throw new Error(`nginx did not answer on port ${port} within 10 s: ${output.trim()}`);
}

function server(child: ChildProcess, dir: string, root: string, port: number): NginxServer {
  let marks = 0;
  const logPath = join(dir, "access.log");
  const parse = (text: string): NginxLogEntry[] =>
    text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as NginxLogEntry);
  return {
    root,
    port,
    url: (path) => `http://127.0.0.1:${port}/${path.replace(/^\//, "")}`,
    async accessLog() {
      // nginx writes a request's line once it has sent the response; a later request's line comes after.
      const mark = `${MARK_PREFIX}${++marks}`;
      const response = await fetch(`http://127.0.0.1:${port}${mark}`);
      await response.body?.cancel();
      const deadline = Date.now() + 5000;
      for (;;) {
        const entries = parse(await readFile(logPath, "utf8").catch(() => ""));
        if (entries.some((entry) => entry.uri === mark)) return entries.filter((entry) => !entry.uri.startsWith(MARK_PREFIX));
        if (Date.now() > deadline) throw new Error(`nginx did not log ${mark} within 5 s`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
