import { QansError } from "../errors.js";
import type { LinearWeight } from "./linear.js";
import { NativeWeight, checkProduct, checkRow } from "./native-weight.js";
import { orderedDotRows } from "./product-order.js";

/**
 * A matrix kept decoded as binary32, row-major, whose products follow the product order
 * (product-order.ts): the fastest holder and the largest, four bytes a weight. Built from an
 * int-quant tensor's dequantised values it gives the same products, bit for bit, as the symbol and
 * compressed holders of the same tensor.
 */
export class F32Weight implements LinearWeight {
  readonly residentBytes: number;
  private readonly native: NativeWeight | undefined;

  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly values: Float32Array,
    private readonly where = "F32 weight",
  ) {
    if (!(values instanceof Float32Array) || values.length !== rows * cols) {
      throw new QansError("INVALID_ARGUMENT", `${where}: a ${rows} x ${cols} matrix needs ${rows * cols} values`);
    }
    this.residentBytes = values.byteLength;
    this.native = NativeWeight.create({ kind: 0, rows, cols, values }, where);
  }

  matvec(x: Float32Array, out: Float32Array): void {
    this.matmul(x, 1, out);
  }

  matmul(xs: Float32Array, n: number, out: Float32Array): void {
    checkProduct(this.rows, this.cols, xs, n, out, this.where);
    if (this.native) this.native.product(xs, n, out);
    else orderedDotRows(this.values, 0, this.rows, this.cols, xs, n, out, 0, this.rows);
  }

  row(r: number, out: Float32Array): void {
    checkRow(this.rows, this.cols, r, out, this.where);
    out.set(this.values.subarray(r * this.cols, (r + 1) * this.cols));
  }
}
