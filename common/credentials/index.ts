// Signed credentials: the configuration server issues, everyone else verifies (docs/credentials.md).
export {
  CREDENTIAL_PREFIX,
  CREDENTIAL_ROLES,
  type CredentialCheck,
  type CredentialClaims,
  type CredentialKeyPair,
  type CredentialRole,
  exportPublicKey,
  generateCredentialKeyPair,
  importPublicKey,
  newCredentialId,
  peekClaims,
  signCredential,
  subjectOf,
  verifyCredential,
} from "./credential-token.js";
export { CredentialVerifier, type VerifiedCaller } from "./credential-verifier.js";
export { caHash } from "./ca-hash.js";
