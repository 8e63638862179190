import { Client, type ConnectConfig, type SFTPWrapper } from "ssh2";

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** Private key (OpenSSH or PEM); or a password. */
  privateKey?: Buffer;
  password?: string;
  readyTimeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * One SSH connection to a push-install target, through the ssh2 library (no `ssh` process):
 * commands run with `exec`, files travel over SFTP.
 */
export class SshSession {
  /** SHA-256 of the host key the server presented (base64, as OpenSSH prints it). */
  hostKeySha256 = "";

  private constructor(private readonly client: Client) {}

  static connect(target: SshTarget): Promise<SshSession> {
    const client = new Client();
    const session = new SshSession(client);
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      password: target.password,
      readyTimeout: target.readyTimeoutMs ?? 20_000,
      hostHash: "sha256",
      hostVerifier: (hash: string) => {
        session.hostKeySha256 = Buffer.from(hash, "hex").toString("base64").replace(/=+$/, "");
        return true;
      },
    };
    return new Promise((resolve, reject) => {
      client.once("ready", () => resolve(session));
      client.once("error", (err) => reject(new Error(`ssh to ${target.username}@${target.host}:${target.port}: ${err.message}`)));
      client.connect(config);
    });
  }

  /** Runs a command (through the user's shell on the target); resolves with its exit code and output. */
  exec(command: string, options: { timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) return reject(err);
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const timer = options.timeoutMs
          ? setTimeout(() => {
              stream.close();
              reject(new Error(`command on the target did not finish within ${Math.round(options.timeoutMs! / 1000)} s`));
            }, options.timeoutMs)
          : undefined;
        stream.on("data", (d: Buffer) => out.push(d));
        stream.stderr.on("data", (d: Buffer) => errOut.push(d));
        stream.on("close", (code: number | null, signal?: string) => {
          if (timer) clearTimeout(timer);
          resolve({
            code: code ?? (signal ? 128 : 1),
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(errOut).toString("utf8"),
          });
        });
      });
    });
  }

  /** Copies a local file to the target over SFTP, reporting bytes sent. */
  async upload(localPath: string, remotePath: string, onProgress?: (sent: number, total: number) => void): Promise<void> {
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => this.client.sftp((err, s) => (err ? reject(err) : resolve(s))));
    try {
      await new Promise<void>((resolve, reject) =>
        sftp.fastPut(localPath, remotePath, { step: (sent, _chunk, total) => onProgress?.(sent, total) }, (err) => (err ? reject(err) : resolve())),
      );
    } finally {
      sftp.end();
    }
  }

  close(): void {
    this.client.end();
  }
}

/** Quotes a value for a POSIX shell command line. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
