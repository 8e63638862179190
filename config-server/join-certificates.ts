import { readFileSync } from "node:fs";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { checkCertificateRequest, type LabCa, signCertificateRequest } from "../common/tls/index.js";

/**
 * Signs the certificate requests of components joining from other hosts (srlab join) with the
 * lab CA. The CA's key is read when the first request comes, so a configuration server without
 * one (a lab made before it was configured) still starts and refuses only the requests.
 */
export class JoinCertificates {
  private ca?: LabCa;

  constructor(private readonly files: { caFile?: string; caKeyFile?: string }) {}

  /** The signed certificate (PEM) for the component named `commonName`; one INVALID_ARGUMENT line for a bad request. */
  async sign(csrPem: string, commonName: string): Promise<string> {
    const ca = this.load();
    let checked: Awaited<ReturnType<typeof checkCertificateRequest>>;
    try {
      checked = await checkCertificateRequest(csrPem);
    } catch (err) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, (err as Error).message);
    }
    if (checked.dnsNames.length + checked.ipAddresses.length === 0) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "the certificate request names no host (DNS name or IP address): nothing could reach the component by it");
    }
    return signCertificateRequest(ca, checked, { commonName, usage: "both" });
  }

  private load(): LabCa {
    if (this.ca) return this.ca;
    const { caFile, caKeyFile } = this.files;
    if (!caFile || !caKeyFile) {
      throw new SrlabError(
        ErrorCode.WRONG_STATE,
        "this configuration server signs no certificates: its config has no caKeyFile (the lab CA's key) or no tls.caFile",
      );
    }
    try {
      this.ca = { certPem: readFileSync(caFile, "utf8"), keyPem: readFileSync(caKeyFile, "utf8") };
    } catch (err) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `cannot read the lab CA to sign a certificate: ${(err as Error).message}`);
    }
    return this.ca;
  }
}
