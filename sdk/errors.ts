/**
 * The one error type that QANS readers and writers throw. `code` is stable and listed in
 * spec/qans-v1.md §12; messages name the structure and, where known, the byte offset.
 */
export const ERROR_CODES = [
  "BAD_MAGIC",
  "UNSUPPORTED_VERSION",
  "RESERVED_BITS",
  "TRUNCATED",
  "TRAILING_DATA",
  "CHECKSUM_MISMATCH",
  "BAD_FREQ_TABLE",
  "BAD_FINAL_STATE",
  "BLOCK_OVERRUN",
  "BAD_BLOCK",
  "BAD_HEADER",
  "BAD_METADATA",
  "BAD_DTYPE",
  "BAD_ENCODING",
  "BAD_SHAPE",
  "BAD_UTF8",
  "OFFSET_OUT_OF_RANGE",
  "MISALIGNED",
  "NONZERO_PADDING",
  "LIMIT_EXCEEDED",
  "DUPLICATE_NAME",
  "INDEX_MISMATCH",
  "NOT_FOUND",
  "BAD_INPUT",
  "INVALID_ARGUMENT",
  "IO_ERROR",
] as const;

export type QansErrorCode = (typeof ERROR_CODES)[number];

export class QansError extends Error {
  readonly code: QansErrorCode;

  constructor(code: QansErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "QansError";
    this.code = code;
  }
}

export function isQansError(value: unknown): value is QansError {
  return value instanceof QansError;
}

/** Throws `QansError(code, message)` unless `condition` holds. */
export function check(condition: unknown, code: QansErrorCode, message: string | (() => string)): asserts condition {
  if (!condition) throw new QansError(code, typeof message === "function" ? message() : message);
}

/** Maps a Node fs/system error to IO_ERROR, keeping QansErrors as they are. */
export function asQansError(error: unknown, context: string): QansError {
  if (error instanceof QansError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new QansError("IO_ERROR", `${context}: ${detail}`, { cause: error });
}
