// Errors of the CUDA backend. `GpuUnavailableError` says why the backend cannot run here at all
// (no addon, no driver, no device, no cuBLASLt); `GpuError` is a failure while running (out of
// memory, bad input found by a kernel, a CUDA error), with the addon's code.

export type GpuUnavailableCode =
  | 'GPU_ADDON_NOT_BUILT'
  | 'GPU_ADDON_LOAD_FAILED'
  | 'GPU_NO_DRIVER'
  | 'GPU_DRIVER_TOO_OLD'
  | 'GPU_NO_DEVICE'
  | 'GPU_NO_CUBLASLT';

export class GpuUnavailableError extends Error {
  override readonly name = 'GpuUnavailableError';
  constructor(
    readonly code: GpuUnavailableCode,
    message: string,
  ) {
    super(message);
  }
}

/** A failure while running: GPU_OUT_OF_MEMORY, GPU_BAD_INPUT, GPU_CUBLASLT_ERROR, a cudaError name, … */
export class GpuError extends Error {
  override readonly name = 'GpuError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Rethrows an error from the addon as a GpuError (keeping its code), anything else unchanged. */
export function rethrowNative(e: unknown, context?: string): never {
  if (e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && !(e instanceof GpuError)) {
    const code = (e as NodeJS.ErrnoException).code!;
    if (code === 'GPU_NO_CUBLASLT') throw new GpuUnavailableError('GPU_NO_CUBLASLT', e.message);
    throw new GpuError(code, context ? `${context}: ${e.message}` : e.message);
  }
  throw e;
}
