/**
 * Mutations of valid QANS files for the fuzz properties: bytes flipped, the file truncated, bytes
 * spliced in or cut out, and structure-aware rewrites of any fixed field of any structure (file
 * header, metadata frame, tensor headers, block headers and rANS states, index, trailer) with its
 * structure's checksum re-sealed, alone or alike in a tensor header and its index entry.
 */
import fc from "fast-check";
import {
  fileLayout,
  indexEntryOffset,
  resealBlock,
  resealFileHeader,
  resealIndex,
  resealMetadata,
  resealTensorHeader,
  resealTrailer,
  type FileLayout,
} from "../sdk/testing/patch.js";

// ---------------------------------------------------------------------------------------------
// Structure-aware fields: every fixed field of every structure, with how to re-seal it

export interface Field {
  offset: number;
  width: 1 | 2 | 4 | 8;
}

export interface Structure {
  name: string;
  fields: Field[];
  reseal(bytes: Uint8Array): void;
}

function u8s(from: number, to: number): Field[] {
  const fields: Field[] = [];
  for (let p = from; p < to; p++) fields.push({ offset: p, width: 1 });
  return fields;
}

/** 1-, 2- and 4-byte windows at every offset of a region whose fields are not fixed. */
function windows(from: number, to: number): Field[] {
  const fields: Field[] = [];
  for (let p = from; p < to; p++) {
    fields.push({ offset: p, width: 1 });
    if (p + 2 <= to) fields.push({ offset: p, width: 2 });
    if (p + 4 <= to) fields.push({ offset: p, width: 4 });
  }
  return fields;
}

/** The descriptor fields shared by tensor headers and index entries (spec §7.1, §11), from the name length on. */
function descriptorFields(bytes: Uint8Array, at: number): { fields: Field[]; end: number } {
  const nameLength = bytes[at] | (bytes[at + 1] << 8);
  let p = at + 2 + nameLength;
  const rank = bytes[p + 2];
  const fields: Field[] = [{ offset: at, width: 2 }, ...u8s(at + 2, p), ...u8s(p, p + 4)];
  p += 4;
  for (let d = 0; d < rank; d++, p += 8) fields.push({ offset: p, width: 8 });
  fields.push(...u8s(p, p + 4));
  return { fields, end: p + 4 };
}

export function structures(bytes: Uint8Array, layout: FileLayout): Structure[] {
  const list: Structure[] = [
    {
      name: "file header",
      fields: [...u8s(0, 8), { offset: 8, width: 2 }, { offset: 10, width: 2 }, { offset: 12, width: 4 }, ...u8s(16, 60)],
      reseal: resealFileHeader,
    },
    {
      name: "metadata frame",
      fields: [{ offset: 64, width: 4 }, { offset: 68, width: 4 }, ...u8s(72, 64 + layout.metadata.length - 4)],
      reseal: (b) => resealMetadata(b, layout),
    },
  ];
  for (const [t, tensor] of layout.tensors.entries()) {
    const at = tensor.headerOffset;
    const descriptor = descriptorFields(bytes, at + 8);
    list.push({
      name: `tensor header ${t}`,
      fields: [{ offset: at, width: 4 }, { offset: at + 4, width: 4 }, ...descriptor.fields, ...windows(descriptor.end, at + tensor.headerLength - 4)],
      reseal: (b) => resealTensorHeader(b, layout, t),
    });
    for (const [i, blockAt] of tensor.blockHeaders.entries()) {
      const payload = tensor.entry.payloadLengths[i];
      const payloadFields: Field[] = [];
      for (let p = 0; p + 4 <= Math.min(payload, 128); p += 4) payloadFields.push({ offset: blockAt + 16 + p, width: 4 });
      payloadFields.push(...u8s(blockAt + 16 + Math.min(payload, 128), blockAt + 16 + Math.min(payload, 160)));
      list.push({
        name: `block ${i} of tensor ${t}`,
        fields: [...u8s(blockAt, blockAt + 2), { offset: blockAt + 2, width: 2 }, { offset: blockAt + 4, width: 4 }, { offset: blockAt + 8, width: 4 }, ...payloadFields],
        reseal: (b) => resealBlock(b, blockAt),
      });
    }
  }
  const index = layout.index.offset;
  const indexFields: Field[] = [
    { offset: index, width: 4 },
    { offset: index + 4, width: 4 },
    { offset: index + 8, width: 8 },
    { offset: index + 16, width: 8 },
    { offset: index + 24, width: 8 },
    { offset: index + 32, width: 8 },
  ];
  for (const [t, tensor] of layout.tensors.entries()) {
    const descriptor = descriptorFields(bytes, indexEntryOffset(layout, t));
    const p = descriptor.end;
    indexFields.push(...descriptor.fields, { offset: p, width: 8 }, { offset: p + 8, width: 4 }, { offset: p + 12, width: 8 });
    for (let i = 0; i < tensor.entry.payloadLengths.length; i++) indexFields.push({ offset: p + 20 + 4 * i, width: 4 });
  }
  list.push({ name: "index", fields: indexFields, reseal: (b) => resealIndex(b, layout) });
  const trailer = layout.trailerOffset;
  list.push({
    name: "trailer",
    fields: [{ offset: trailer, width: 8 }, { offset: trailer + 8, width: 8 }, { offset: trailer + 16, width: 8 }, { offset: trailer + 24, width: 2 }, { offset: trailer + 26, width: 2 }, ...u8s(trailer + 32, trailer + 40)],
    reseal: (b) => resealTrailer(b, trailer),
  });
  return list;
}

/** A descriptor field of a tensor (name, dtype, encoding, rank, β, a dimension, S, reserved) in its header and its index entry. */
export interface PairedField {
  header: Field;
  entry: Field;
  reseal(bytes: Uint8Array): void;
}

export function pairedFields(bytes: Uint8Array, layout: FileLayout): PairedField[] {
  const pairs: PairedField[] = [];
  for (const [t, tensor] of layout.tensors.entries()) {
    const inHeader = descriptorFields(bytes, tensor.headerOffset + 8).fields;
    const inEntry = descriptorFields(bytes, indexEntryOffset(layout, t)).fields;
    const reseal = (b: Uint8Array) => {
      resealTensorHeader(b, layout, t);
      resealIndex(b, layout);
    };
    inHeader.forEach((header, i) => pairs.push({ header, entry: inEntry[i], reseal }));
  }
  return pairs;
}

export function readField(bytes: Uint8Array, field: Field): bigint {
  let value = 0n;
  for (let i = field.width - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[field.offset + i]);
  return value;
}

export function writeField(bytes: Uint8Array, field: Field, value: bigint): void {
  let v = BigInt.asUintN(8 * field.width, value);
  for (let i = 0; i < field.width; i++, v >>= 8n) bytes[field.offset + i] = Number(v & 0xffn);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

export const INTERESTING = [
  0n, 1n, 2n, 3n, 7n, 8n, 9n, 10n, 11n, 12n, 15n, 16n, 20n, 21n, 24n, 25n, 31n, 32n, 33n, 63n, 64n, 65n, 127n, 128n, 255n, 256n,
  4095n, 4096n, 4097n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 2n ** 24n, 2n ** 24n + 1n, 2n ** 30n, 2n ** 31n - 1n, 2n ** 31n,
  2n ** 32n - 1n, 2n ** 32n, 2n ** 48n, 2n ** 48n + 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 64n, 2n ** 64n - 1n,
];

export type Rewrite = { structure: number; field: number; value: { kind: "set"; value: bigint } | { kind: "add"; delta: number } };

export const rewriteArb: fc.Arbitrary<Rewrite> = fc.record({
  structure: fc.nat(),
  field: fc.nat(),
  value: fc.oneof(
    fc.record({ kind: fc.constant("set" as const), value: fc.constantFrom(...INTERESTING) }),
    fc.record({ kind: fc.constant("set" as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    fc.record({ kind: fc.constant("add" as const), delta: fc.integer({ min: -70, max: 70 }).filter((d) => d !== 0) }),
  ),
});

// ---------------------------------------------------------------------------------------------
// Applying mutations

/** XOR masks at offsets taken modulo the file's length. */
export const flipsArb = fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 8 });
export type Flips = { at: number; xor: number }[];

export function flipBytes(bytes: Uint8Array, flips: Flips): void {
  for (const { at, xor } of flips) bytes[at % bytes.length] ^= xor;
}

/** The first `length % (size + 1)` bytes: any length from empty to whole. */
export function truncated(bytes: Uint8Array, length: number): Uint8Array {
  return bytes.subarray(0, length % (bytes.length + 1));
}

/** Up to 64 bytes removed and up to 64 inserted at an offset taken modulo the length plus one. */
export const spliceArb = fc.record({ at: fc.nat(), remove: fc.nat({ max: 64 }), insert: fc.uint8Array({ maxLength: 64 }) });
export type Splice = { at: number; remove: number; insert: Uint8Array };

export function spliced(bytes: Uint8Array, { at, remove, insert }: Splice): Uint8Array {
  const cut = at % (bytes.length + 1);
  const out = new Uint8Array(bytes.length - Math.min(remove, bytes.length - cut) + insert.length);
  out.set(bytes.subarray(0, cut));
  out.set(insert, cut);
  out.set(bytes.subarray(cut + remove), cut + insert.length);
  return out;
}

/** Each rewrite sets one field of one structure of `list` (both picked modulo), then re-seals those structures. */
export function rewriteFields(bytes: Uint8Array, list: Structure[], rewrites: Rewrite[]): void {
  const touched = new Set<Structure>();
  for (const rewrite of rewrites) {
    const structure = list[rewrite.structure % list.length];
    const field = structure.fields[rewrite.field % structure.fields.length];
    writeField(bytes, field, rewrittenValue(bytes, field, rewrite));
    touched.add(structure);
  }
  for (const structure of touched) structure.reseal(bytes);
}

/** Each rewrite sets one descriptor field alike in a tensor header and its index entry, then re-seals both. */
export function rewritePairs(bytes: Uint8Array, pairs: PairedField[], rewrites: Rewrite[]): void {
  const touched = new Set<PairedField>();
  for (const rewrite of rewrites) {
    const pair = pairs[(rewrite.structure + rewrite.field) % pairs.length];
    const value = rewrittenValue(bytes, pair.header, rewrite);
    writeField(bytes, pair.header, value);
    writeField(bytes, pair.entry, value);
    touched.add(pair);
  }
  for (const pair of touched) pair.reseal(bytes);
}

function rewrittenValue(bytes: Uint8Array, field: Field, rewrite: Rewrite): bigint {
  return rewrite.value.kind === "set" ? rewrite.value.value : readField(bytes, field) + BigInt(rewrite.value.delta);
}

/** One mutation of any kind above. */
export type Mutation =
  | { kind: "flips"; flips: Flips }
  | { kind: "truncate"; length: number }
  | { kind: "splice"; splice: Splice }
  | { kind: "rewrite"; rewrites: Rewrite[] }
  | { kind: "paired rewrite"; rewrites: Rewrite[] };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flips" as const), flips: flipsArb }),
  fc.record({ kind: fc.constant("truncate" as const), length: fc.nat() }),
  fc.record({ kind: fc.constant("splice" as const), splice: spliceArb }),
  fc.record({ kind: fc.constant("rewrite" as const), rewrites: fc.array(rewriteArb, { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant("paired rewrite" as const), rewrites: fc.array(rewriteArb, { minLength: 1, maxLength: 2 }) }),
);

/**
 * `bytes` (a valid file, left unchanged) with the mutation applied. A paired rewrite of a file
 * without tensors leaves it as it was.
 */
export async function mutated(bytes: Uint8Array, mutation: Mutation): Promise<Uint8Array> {
  switch (mutation.kind) {
    case "truncate":
      return truncated(bytes, mutation.length).slice();
    case "splice":
      return spliced(bytes, mutation.splice);
  }
  const out = bytes.slice();
  if (mutation.kind === "flips") {
    flipBytes(out, mutation.flips);
    return out;
  }
  const layout = await fileLayout(bytes);
  if (mutation.kind === "rewrite") rewriteFields(out, structures(bytes, layout), mutation.rewrites);
  else {
    const pairs = pairedFields(bytes, layout);
    if (pairs.length > 0) rewritePairs(out, pairs, mutation.rewrites);
  }
  return out;
}
