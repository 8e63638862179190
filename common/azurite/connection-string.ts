/** Azurite's fixed development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT_NAME = "devstoreaccount1";
export const AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Connection string for an Azurite blob endpoint (path-style URL: http://host:port/account). */
export function azuriteConnectionString(port: number, host = "127.0.0.1"): string {
  return [
    "DefaultEndpointsProtocol=http",
    `AccountName=${AZURITE_ACCOUNT_NAME}`,
    `AccountKey=${AZURITE_ACCOUNT_KEY}`,
    `BlobEndpoint=http://${host}:${port}/${AZURITE_ACCOUNT_NAME}`,
  ].join(";");
}
