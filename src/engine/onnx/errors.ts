// Errors raised while reading or writing ONNX models. Both carry the file they concern, when
// known, so that every message shown to a user can name it.

/** The bytes are not a well-formed ONNX protobuf (truncated, bad wire type, not ONNX at all). */
export class OnnxFormatError extends Error {
  override name = 'OnnxFormatError';
  /** The file the bytes came from, when known. */
  file?: string;

  constructor(message: string, file?: string) {
    super(file === undefined ? message : `${file}: ${message}`);
    this.file = file;
  }

  /** The same error attributed to `file` (the message gains the file name once). */
  withFile(file: string): OnnxFormatError {
    if (this.file !== undefined) return this;
    const e = new OnnxFormatError(this.message, file);
    e.stack = this.stack;
    return e;
  }
}

/** A problem with a model file or its external data on disk (missing, unreadable, unsafe path). */
export class ModelFileError extends Error {
  override name = 'ModelFileError';
  file?: string;
  /** The underlying system error code (ENOENT, ENOSPC, …), when there was one. */
  code?: string;

  constructor(message: string, file?: string, options?: { cause?: unknown; code?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.file = file;
    this.code = options?.code;
  }
}
