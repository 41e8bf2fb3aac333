import { fromNative, kernels } from "../codec/kernels.js";
import { QansError } from "../errors.js";
import { nativeAddon, type NativeAddon, type NativeWeightMatrix, type NativeWeightSpec } from "../native/addon.js";

/**
 * A weight holder's matrix in the native addon, when the SDK's kernels are native (not under
 * QANS_NATIVE=0, nor after useKernels("typescript")); holders fall back to their TypeScript
 * products otherwise, which give the same bytes.
 */
export class NativeWeight {
  private constructor(
    private readonly addon: NativeAddon,
    private readonly matrix: NativeWeightMatrix,
    private readonly where: string,
  ) {}

  /** The native matrix for `spec`, or undefined when the kernels in use are TypeScript. */
  static create(spec: NativeWeightSpec, where: string): NativeWeight | undefined {
    const addon = kernels().name === "native" ? nativeAddon() : undefined;
    if (!addon) return undefined;
    try {
      return new NativeWeight(addon, addon.newWeightMatrix(spec), where);
    } catch (error) {
      throw fromNative(error, where);
    }
  }

  product(xs: Float32Array, n: number, out: Float32Array): void {
    try {
      this.addon.weightProduct(this.matrix, xs, n, out);
    } catch (error) {
      throw fromNative(error, this.where);
    }
  }
}

/** Checks a product's arguments against a rows x cols matrix (INVALID_ARGUMENT naming `where`). */
export function checkProduct(rows: number, cols: number, xs: Float32Array, n: number, out: Float32Array, where: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new QansError("INVALID_ARGUMENT", `${where}: the input count ${n} is not a non-negative integer`);
  if (!(xs instanceof Float32Array) || xs.length < n * cols) {
    throw new QansError("INVALID_ARGUMENT", `${where}: ${n} inputs of ${cols} values need a Float32Array of ${n * cols}, got ${describeArray(xs)}`);
  }
  if (!(out instanceof Float32Array) || out.length < n * rows) {
    throw new QansError("INVALID_ARGUMENT", `${where}: ${n} outputs of ${rows} values need a Float32Array of ${n * rows}, got ${describeArray(out)}`);
  }
}

/** Checks a row index and the buffer it is copied into. */
export function checkRow(rows: number, cols: number, r: number, out: Float32Array, where: string): void {
  if (!Number.isSafeInteger(r) || r < 0 || r >= rows) throw new QansError("INVALID_ARGUMENT", `${where}: row ${r} is outside 0..${rows - 1}`);
  if (!(out instanceof Float32Array) || out.length < cols) throw new QansError("INVALID_ARGUMENT", `${where}: a row needs a Float32Array of ${cols}, got ${describeArray(out)}`);
}

function describeArray(value: unknown): string {
  return value instanceof Float32Array ? `${value.length} values` : ((value as object | null)?.constructor?.name ?? String(value));
}
