export { toSrlabError, isRecoverable } from "./classify.js";
export { ErrorCode, isErrorCode, isRecoverableCode, grpcStatusOf } from "./error-codes.js";
export { ERROR_CODE_METADATA_KEY, fromGrpcError, isServiceError } from "./from-grpc.js";
export { DEFAULT_TIME_UNIT_MS, type RetryOptions, retrySchedule, retryWithBackoff } from "./retry.js";
export { isSrlabError, SrlabError, type SrlabErrorOptions } from "./srlab-error.js";
export { toGrpcError } from "./to-grpc.js";
