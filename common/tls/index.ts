export {
  type CertificateUsage,
  createLabCa,
  DEFAULT_DNS_NAMES,
  DEFAULT_IP_ADDRESSES,
  type IssueOptions,
  issueCertificate,
  issueForPublicKey,
  type LabCa,
  type LabCaOptions,
  type PemPair,
} from "./lab-ca.js";
export { type ComponentCertFiles, type EnsureLabPkiOptions, ensureLabPki, type LabPki } from "./lab-pki.js";
export {
  type CertificateRequest,
  type CertificateRequestOptions,
  type CheckedRequest,
  checkCertificateRequest,
  createCertificateRequest,
  signCertificateRequest,
} from "./certificate-request.js";
