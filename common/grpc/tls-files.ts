/** Paths of the PEM files a daemon uses for TLS; all issued by the lab CA. */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}
