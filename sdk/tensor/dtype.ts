import { QansError } from "../errors.js";

/** Element types. The numeric codes are the on-disk values (spec §5). */
export const DTYPES = {
  F64: { code: 0, size: 8 },
  F32: { code: 1, size: 4 },
  F16: { code: 2, size: 2 },
  BF16: { code: 3, size: 2 },
  I64: { code: 4, size: 8 },
  I32: { code: 5, size: 4 },
  I16: { code: 6, size: 2 },
  I8: { code: 7, size: 1 },
  U8: { code: 8, size: 1 },
  BOOL: { code: 9, size: 1 },
  U16: { code: 10, size: 2 },
  U32: { code: 11, size: 4 },
  U64: { code: 12, size: 8 },
  F8_E4M3: { code: 13, size: 1 },
  F8_E5M2: { code: 14, size: 1 },
} as const;

export type DType = keyof typeof DTYPES;

const BY_CODE: DType[] = [];
for (const [name, info] of Object.entries(DTYPES)) BY_CODE[info.code] = name as DType;

export function dtypeSize(dtype: DType): number {
  return DTYPES[dtype].size;
}

export function dtypeCode(dtype: DType): number {
  return DTYPES[dtype].code;
}

export function isDType(name: string): name is DType {
  return Object.prototype.hasOwnProperty.call(DTYPES, name);
}

/** Decodes an on-disk dtype code, throwing BAD_DTYPE for codes this version does not define. */
export function dtypeFromCode(code: number, where: string): DType {
  const name = BY_CODE[code];
  if (name === undefined) throw new QansError("BAD_DTYPE", `${where}: unknown dtype code ${code}`);
  return name;
}

/** The float dtypes that float-planes and int-quant accept. */
export function isFloatPlaneDType(dtype: DType): dtype is "F32" | "F16" | "BF16" {
  return dtype === "F32" || dtype === "F16" || dtype === "BF16";
}
