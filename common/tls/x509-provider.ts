// @peculiar/x509 relies on decorator metadata and a WebCrypto provider; set both up once, before
// any x509 class is used, so every importer of this folder gets a working library.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle;
