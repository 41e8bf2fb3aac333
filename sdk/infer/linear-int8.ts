import { kernels } from "../codec/kernels.js";
import { QansError } from "../errors.js";
import type { QuantParams } from "../quant/rtn.js";
import type { LinearWeight } from "./linear.js";
import { NativeWeight, checkProduct, checkRow } from "./native-weight.js";
import { nativeQuantFields, quantParamBytes, symbolRowsProduct, type QuantMatrix } from "./symbol-rows.js";

/**
 * A matrix kept as its decoded int-quant symbols, one byte a weight whatever the bit width, with
 * the tensor's parameters; products dequantise the rows as they use them (spec §8.3), so they equal
 * the F32 holder's bit for bit at a quarter of its memory.
 */
export class SymbolWeight implements LinearWeight, QuantMatrix {
  readonly residentBytes: number;
  private readonly native: NativeWeight | undefined;
  private readonly rowBuffer: Float32Array;

  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly params: QuantParams,
    readonly symbols: Uint8Array,
    private readonly where = "int8 weight",
  ) {
    if (!(symbols instanceof Uint8Array) || symbols.length !== rows * cols) {
      throw new QansError("INVALID_ARGUMENT", `${where}: a ${rows} x ${cols} matrix needs ${rows * cols} symbols`);
    }
    this.residentBytes = symbols.byteLength + quantParamBytes(params);
    this.rowBuffer = new Float32Array(cols);
    this.native = NativeWeight.create({ kind: 1, rows, cols, symbols, ...nativeQuantFields(params) }, where);
  }

  matvec(x: Float32Array, out: Float32Array): void {
    this.matmul(x, 1, out);
  }

  matmul(xs: Float32Array, n: number, out: Float32Array): void {
    checkProduct(this.rows, this.cols, xs, n, out, this.where);
    if (this.native) this.native.product(xs, n, out);
    else symbolRowsProduct(this, this.symbols, 0, 0, this.rows, xs, n, out, this.rowBuffer);
  }

  row(r: number, out: Float32Array): void {
    checkRow(this.rows, this.cols, r, out, this.where);
    const { cols } = this;
    kernels().dequantize(this.params, this.symbols.subarray(r * cols, (r + 1) * cols), this.rows, cols, out.subarray(0, cols), r * cols);
  }
}
