export { credentialOf } from "./auth.js";
export { AUTHORIZATION_HEADER, bearerMetadata, channelCredentials, channelOptions, type ClientTls, unaryCall, waitForReady } from "./client.js";
export { failStream, serverStream, unary } from "./handlers.js";
export { widenReceiveWindow } from "./receive-window.js";
export { GrpcServer, type GrpcServerOptions, type ServiceRegistration } from "./server.js";
export type { TlsFiles } from "./tls-files.js";
