/**
 * Invalid vectors with one defect inside a tensor frame: the tensor header and its frequency tables
 * and quantisation parameters, block headers, and RANS and RAW payloads (spec §7 to §10). Each is
 * one targeted change of a valid vector, with the checksums of changed structures re-sealed unless
 * the checksum is under test. A change that alters a frame's length lays the file out again
 * (`assembleFile`), with the index and trailer written to match.
 */
import { concatBytes } from "../sdk/format/bytes.js";
import { MemorySource, QansReader } from "../sdk/index.js";
import { resealBlock, resealRange, resealTensorHeader, type FileLayout } from "../sdk/testing/patch.js";
import {
  BASE,
  CONST,
  DOWN_PROJ,
  EMBED,
  K_PROJ,
  NORM,
  NORM_IN,
  Q_PROJ,
  RANS,
  RANS_L,
  RAW,
  assembleFile,
  blocksOf,
  fail,
  firstBlock,
  firstTable,
  framePieces,
  mapTensorHeader,
  parsedTable,
  ransEncodeFrom,
  shiftFrequency,
  tensorNamed,
  varintLength,
  view,
  withPayload,
  writeVarint,
  type BlockRef,
  type HeaderMap,
  type InvalidDef,
  type TableMap,
} from "./file-surgery.js";

/** Changes tensor `name`'s header through its field map and re-seals it. */
function patchHeader(name: string, change: (bytes: Uint8Array, header: HeaderMap) => void) {
  return (bytes: Uint8Array, layout: FileLayout): Uint8Array => {
    const t = tensorNamed(layout, name);
    change(bytes, mapTensorHeader(bytes, layout.tensors[t].headerOffset));
    resealTensorHeader(bytes, layout, t);
    return bytes;
  };
}

/** Changes the first table `accept` takes and re-seals its tensor header. */
function patchTable(accept: (table: TableMap) => boolean, change: (bytes: Uint8Array, table: TableMap) => void) {
  return (bytes: Uint8Array, layout: FileLayout): Uint8Array => {
    const { t, table } = firstTable(bytes, layout, accept);
    change(bytes, table);
    resealTensorHeader(bytes, layout, t);
    return bytes;
  };
}

/** Changes the first block `accept` takes; re-seals its checksum unless `seal` is false. */
function patchBlock(accept: (block: BlockRef) => boolean, what: string, change: (bytes: Uint8Array, block: BlockRef) => void, seal = true) {
  return (bytes: Uint8Array, layout: FileLayout): Uint8Array => {
    const block = firstBlock(bytes, layout, accept, what);
    change(bytes, block);
    if (seal) resealBlock(bytes, block.at);
    return bytes;
  };
}

/** Replaces the payload of the first block `accept` takes (header re-sealed) and lays the file out again. */
function replacePayload(accept: (block: BlockRef) => boolean, what: string, payload: (old: Uint8Array, block: BlockRef) => Uint8Array) {
  return (bytes: Uint8Array, layout: FileLayout): Uint8Array => {
    const block = firstBlock(bytes, layout, accept, what);
    const frame = framePieces(bytes, layout, block.tensor);
    const piece = frame.blocks[block.ordinal];
    frame.blocks[block.ordinal] = withPayload(piece, payload(piece.payload, block));
    return assembleFile(bytes, layout, new Map([[block.tensor, frame]]));
  };
}

/** The first RANS block of tensor `name`. */
const ransBlockOf = (name: string) => (block: BlockRef) => block.mode === RANS && block.name === name;

/** The decoded symbols of block `block` (its stream's symbols in the block's range), read with the SDK. */
async function blockSymbols(bytes: Uint8Array, layout: FileLayout, block: BlockRef): Promise<Uint8Array> {
  const { entry } = layout.tensors[block.tensor];
  const reader = await QansReader.open(new MemorySource(bytes));
  const { streams } = await reader.readStreams(entry.name);
  const start = Math.floor(block.ordinal / entry.streamCount) * 2 ** entry.log2Block;
  return streams[block.stream].slice(start, start + block.count);
}

function tensorHeader(): InvalidDef[] {
  return [
    {
      file: "bad-magic-tensor-tag.qans",
      from: BASE,
      code: "BAD_MAGIC",
      spec: ["§7.1", "§12"],
      exercises: 'the first tensor frame\'s tag "QTEN" changed to "QTEX" (the tag is checked before the header checksum)',
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        b[layout.tensors[0].headerOffset + 3] = 0x58;
        return b;
      },
    },
    {
      file: "checksum-tensor-header.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§7.1", "§8.3"],
      exercises: "the lowest bit of the first int-quant delta of the first tensor flipped (a silent change of scale without the checksum), checksum not updated",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const quant = mapTensorHeader(b, layout.tensors[0].headerOffset).quant ?? fail("first tensor is not int-quant");
        b[quant.deltasAt] ^= 0x01;
        return b;
      },
    },
    {
      file: "tensor-header-past-end.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§7.1", "§2"],
      exercises: `the header length H in the tensor header of "${NORM}" (the last frame) set so the header would end one byte past the end of the file; the checksum cannot be where H puts it`,
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const at = layout.tensors[tensorNamed(layout, NORM)].headerOffset;
        view(b).setUint32(at + 4, b.length - at + 1, true);
        return b;
      },
    },
    {
      file: "tensor-header-too-short.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§7.1"],
      exercises: "the header length H in the first tensor header 24, below the smallest header with one stream (25)",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        view(b).setUint32(layout.tensors[0].headerOffset + 4, 24, true);
        return b;
      },
    },
    {
      file: "limit-tensor-header-length.qans",
      from: BASE,
      code: "LIMIT_EXCEEDED",
      spec: ["§13", "§7.1"],
      exercises: "the header length H in the first tensor header 2^30 + 1, one more than §13 allows (checked before the file's size and the checksum)",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        view(b).setUint32(layout.tensors[0].headerOffset + 4, 2 ** 30 + 1, true);
        return b;
      },
    },
    {
      file: "reserved-bits-tensor-header.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§7.1", "§2"],
      exercises: "the first of the 3 reserved bytes after the stream count in the first tensor header set to 1; header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchHeader(EMBED, (b, header) => {
        b[header.reservedAt] = 1;
      }),
    },
    {
      file: "bad-utf8-tensor-name.qans",
      from: BASE,
      code: "BAD_UTF8",
      spec: ["§2", "§7.1"],
      exercises: `the first byte of the name in the tensor header of "${Q_PROJ}" set to 0xFF; the index is intact, and the header's own checks come before its comparison with the index; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(Q_PROJ, (b, header) => {
        b[header.nameAt] = 0xff;
      }),
    },
    {
      file: "bad-header-stream-count.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§7.1", "§8.1"],
      exercises: `the stream count in the tensor header of "${NORM}" (raw: one stream) 2, while the index says 1; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(NORM, (b, header) => {
        b[header.streamCountAt] = 2;
      }),
    },
    {
      file: "bad-header-stream-width.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§7.2", "§8.2"],
      exercises: `the symbol width of stream 0 (the exponent plane, w = 8) of "${NORM_IN}" (float-planes of F32) 7; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(NORM_IN, (b, header) => {
        b[header.widthsAt[0]] = 7;
      }),
    },
    {
      file: "bad-header-leftover-bytes.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§7.1"],
      exercises: `4 zero bytes inserted before the checksum of the tensor header of "${NORM}" (H 4 more, checksum re-sealed, the file laid out again): the fields end before H - 4`,
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const t = tensorNamed(layout, NORM);
        const frame = framePieces(b, layout, t);
        const body = frame.header.subarray(0, frame.header.length - 4);
        frame.header = concatBytes([body, new Uint8Array(8)]);
        view(frame.header).setUint32(4, frame.header.length, true);
        resealRange(frame.header, 0, frame.header.length - 4);
        return assembleFile(b, layout, new Map([[t, frame]]));
      },
    },
    {
      file: "int-quant-params-exceed-header.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§8.3", "§7.1", "§13"],
      exercises:
        `the shape in the tensor header of "${EMBED}" (int-quant, one group per row) [2^24, 2^24]: a valid element count whose 2^24 F16 deltas ` +
        "would need 32 MiB, far more than the header holds (a reader must see that before allocating them); header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchHeader(EMBED, (b, header) => {
        view(b).setBigUint64(header.dimsAt, 2n ** 24n, true);
        view(b).setBigUint64(header.dimsAt + 8, 2n ** 24n, true);
      }),
    },
  ];
}

function quantParams(): InvalidDef[] {
  const quant = (header: HeaderMap) => header.quant ?? fail("not an int-quant header");
  return [
    {
      file: "reserved-bits-quant-flags.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§8.3", "§2"],
      exercises: `int-quant flags of "${EMBED}" with bit 3 set (bits 3 to 7 are reserved); header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(EMBED, (b, header) => {
        b[quant(header).flagsAt] |= 8;
      }),
    },
    {
      file: "reserved-bits-quant-field.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§8.3", "§2"],
      exercises: `the reserved u16 after the int-quant flags of "${EMBED}" set to 1; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(EMBED, (b, header) => view(b).setUint16(quant(header).reservedAt, 1, true)),
    },
    {
      file: "bad-header-bits.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§8.3"],
      exercises: `the int-quant bits of "${EMBED}" 5 while its stream is 4 bits wide; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(EMBED, (b, header) => {
        b[quant(header).bitsAt] = 5;
      }),
    },
    {
      file: "limit-group-size.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§8.3", "§13"],
      exercises: `the group size G of "${Q_PROJ}" (32 columns, G = 32) 2^24 + 1, one more than §13 allows (still one group per row, so the parameters keep their length); header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(Q_PROJ, (b, header) => view(b).setUint32(quant(header).groupSizeAt, 2 ** 24 + 1, true)),
    },
    {
      file: "bad-header-zero-point.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§8.3"],
      exercises: `the first zero point of "${DOWN_PROJ}" (asymmetric, b = 2) 4, not below 2^b; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(DOWN_PROJ, (b, header) => {
        b[quant(header).zeroPointsAt ?? fail("not asymmetric")] = 4;
      }),
    },
    {
      file: "bad-header-negative-delta.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§8.3"],
      exercises: `the first delta of "${DOWN_PROJ}" (F32 scales) -0.25: deltas are finite and not negative; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(DOWN_PROJ, (b, header) => {
        if (quant(header).deltaBytes !== 4) fail("F32 scales expected");
        view(b).setFloat32(quant(header).deltasAt, -0.25, true);
      }),
    },
    {
      file: "bad-header-nan-delta.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§8.3"],
      exercises: `the first delta of "${EMBED}" (F16 scales) the F16 NaN 0x7E00; header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchHeader(EMBED, (b, header) => {
        if (quant(header).deltaBytes !== 2) fail("F16 scales expected");
        view(b).setUint16(quant(header).deltasAt, 0x7e00, true);
      }),
    },
    {
      file: "bad-header-input-scale.qans",
      from: "int-quant-per-row.qans",
      code: "BAD_HEADER",
      spec: ["§8.3"],
      exercises: 'the first per-input-channel scale s_0 of "q8.asym.f32.scaled" 0: each s_j is finite and > 0; header checksum re-sealed',
      detectedByRandomAccess: true,
      derive: patchHeader("q8.asym.f32.scaled", (b, header) => view(b).setFloat32(quant(header).inputScaleAt ?? fail("no input scale"), 0, true)),
    },
  ];
}

function freqTables(): InvalidDef[] {
  const firstBitmapOfWidth = (width: number) => (table: TableMap) => table.flag === 1 && table.width === width;
  return [
    {
      file: "reserved-bits-table-flag.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§7.2", "§2"],
      exercises: "the table flag of the first stream with a table set to 3 (0, 1 and 2 are defined); tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchTable(
        () => true,
        (b, table) => {
          b[table.flagAt] = 3;
        },
      ),
    },
    {
      file: "bad-freq-table-sum-low.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3", "§7.2"],
      exercises: "one frequency of the first table decreased by one (varint length kept), so the frequencies sum to 2^k - 1; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        shiftFrequency(b, layout, -1);
        return b;
      },
    },
    {
      file: "bad-freq-table-sum-high.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3", "§7.2"],
      exercises: "one frequency of the first table increased by one (varint length kept, still below 2^k), so the frequencies sum to 2^k + 1; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        shiftFrequency(b, layout, 1);
        return b;
      },
    },
    {
      file: "bad-freq-table-zero-frequency.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: "the first one-byte frequency of the first table set to 0 for a symbol the table marks present; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchTable(
        (table) => table.freqs.some((f) => f.length === 1),
        (b, table) => {
          b[table.freqs.find((f) => f.length === 1)!.at] = 0;
        },
      ),
    },
    {
      file: "bad-freq-table-k-16.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3", "§13"],
      exercises: "the probability scale k of the first table 16, one more than §13 allows; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchTable(
        () => true,
        (b, table) => {
          b[table.kAt] = 16;
        },
      ),
    },
    {
      file: "bad-freq-table-k-9.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3", "§13"],
      exercises: "the probability scale k of the first table 9, one less than §13 allows; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchTable(
        () => true,
        (b, table) => {
          b[table.kAt] = 9;
        },
      ),
    },
    {
      file: "bad-freq-table-non-minimal-varint.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises:
        "the first two-byte frequency varint of the first table rewritten as a non-minimal varint (its low 7 bits, then a 0x00 continuation " +
        "byte): the same length, a value that has a shorter form; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchTable(
        (table) => table.freqs.some((f) => f.length === 2),
        (b, table) => {
          const f = table.freqs.find((x) => x.length === 2)!;
          b[f.at] = 0x80 | (f.value & 0x7f);
          b[f.at + 1] = 0;
        },
      ),
    },
    {
      file: "bad-freq-table-bitmap-beyond-width.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: `bit 4 of the one-byte presence bitmap of "${DOWN_PROJ}" (w = 2: symbols 0 to 3) set; tensor header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchTable(firstBitmapOfWidth(2), (b, table) => {
        b[table.presenceAt] |= 0x10;
      }),
    },
    {
      file: "bad-freq-table-one-symbol.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: `the presence bitmap of "${DOWN_PROJ}" (w = 2) reduced to symbol 0 alone: a table needs at least 2 present symbols (checked before the frequencies are read); tensor header checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchTable(firstBitmapOfWidth(2), (b, table) => {
        b[table.presenceAt] = 0x01;
      }),
    },
    {
      file: "bad-freq-table-no-runs.qans",
      from: "precision.qans",
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: "the run count R of the first table written with presence runs (flag 2) set from 1 to 0; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) =>
        patchTable(
          (x) => x.flag === 2 && b[x.presenceAt] === 1,
          (bytes, table) => {
            bytes[table.presenceAt] = 0;
          },
        )(b, layout),
    },
    {
      file: "bad-freq-table-too-many-runs.qans",
      from: "float-planes-f16.qans",
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: "the run count R of the exponent plane's table (w = 5, presence runs) set to 17: more runs than 32 symbols can hold with gaps between them (R > 2^(w-1)); tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchTable(
        (table) => table.flag === 2 && table.width === 5,
        (b, table) => {
          b[table.presenceAt] = 17;
        },
      ),
    },
    {
      file: "bad-freq-table-run-gap-zero.qans",
      from: "float-planes-bf16.qans",
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: 'the gap before the second run of the exponent plane\'s table of "weights" (w = 8, two runs) set to 0, so the runs touch: runs must be maximal; tensor header checksum re-sealed',
      detectedByRandomAccess: true,
      derive: patchTable(
        (table) => table.flag === 2 && table.runs.length >= 2,
        (b, table) => {
          b[table.runs[1].gap.at] = 0;
        },
      ),
    },
    {
      file: "bad-freq-table-run-past-end.qans",
      from: "float-planes-f16.qans",
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: "the first run of the exponent plane's table (w = 5, presence runs) given a gap of 31 (its first symbol 31), so its two or more symbols run past symbol 31; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchTable(
        (table) => table.flag === 2 && table.width === 5 && table.runs[0].lengthMinusOne.value >= 1,
        (b, table) => {
          b[table.runs[0].gap.at] = 31;
        },
      ),
    },
    {
      file: "freq-table-missing-symbol.qans",
      from: BASE,
      code: "BLOCK_OVERRUN",
      spec: ["§10.2", "§10.3"],
      exercises:
        `symbol 15, which occurs in the stream of "${K_PROJ}", made absent from its table (bitmap, w = 4) and its frequency given to symbol 0, ` +
        "which does not occur: a valid table of the same size that gives an occurring symbol frequency 0. Decoding with it gives other " +
        "symbols and, before the block's 512 symbols are decoded, needs a word past the payload: BLOCK_OVERRUN, the first error §10.2's " +
        "exact decoder meets; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const t = tensorNamed(layout, K_PROJ);
        const table = mapTensorHeader(b, layout.tensors[t].headerOffset).tables[0];
        if (table.flag !== 1 || table.width !== 4 || table.symbols[0] === 0 || table.symbols[table.symbols.length - 1] !== 15) fail("unexpected table");
        const values = [table.freqs[table.freqs.length - 1].value, ...table.freqs.slice(0, -1).map((f) => f.value)];
        let at = table.freqs[0].at;
        for (const value of values) {
          writeVarint(b, at, value);
          at += varintLength(value);
        }
        if (at !== table.end) fail("the table changed length");
        b[table.presenceAt] |= 0x01;
        b[table.presenceAt + 1] &= 0x7f;
        resealTensorHeader(b, layout, t);
        return b;
      },
    },
  ];
}

function blocks(): InvalidDef[] {
  const isMode = (mode: number) => (block: BlockRef) => block.mode === mode;
  return [
    {
      file: "checksum-block.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§9"],
      exercises: "one bit of the last payload byte of the first RANS block flipped, block checksum not updated",
      detectedByRandomAccess: true,
      derive: patchBlock(isMode(RANS), "RANS block", (b, block) => {
        b[block.at + 16 + block.payload - 1] ^= 0x10;
      }, false),
    },
    {
      file: "reserved-bits-block-header.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§9", "§2"],
      exercises: "the reserved u16 at offset 2 of the first block header set to 1, block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchBlock(() => true, "block", (b, block) => view(b).setUint16(block.at + 2, 1, true)),
    },
    {
      file: "reserved-bits-raw-block.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§9", "§2"],
      exercises: `byte 1 of the RAW block header of "${NORM}" set to 1 (zero for RAW blocks); block checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchBlock(isMode(RAW), "RAW block", (b, block) => {
        b[block.at + 1] = 1;
      }),
    },
    {
      file: "bad-block-mode.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9"],
      exercises: "the mode of the first block 3 (0 RAW, 1 CONST, 2 RANS are defined); block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchBlock(() => true, "block", (b, block) => {
        b[block.at] = 3;
      }),
    },
    {
      file: "bad-block-count.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9", "§7.3"],
      exercises: "the symbol count n of the first block one more than §7.3 gives; block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchBlock(() => true, "block", (b, block) => view(b).setUint32(block.at + 4, block.count + 1, true)),
    },
    {
      file: "bad-block-lane-code.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9", "§10.1"],
      exercises: "the lane code (byte 1) of the first RANS block header set to 6, one above the largest (5, one lane); block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchBlock(isMode(RANS), "RANS block", (b, block) => {
        b[block.at + 1] = 6;
      }),
    },
    {
      file: "bad-block-const-symbol.qans",
      from: "shapes.qans",
      code: "BAD_BLOCK",
      spec: ["§9"],
      exercises: 'the symbol of the CONST block of "scalar.quant" (int-quant, w = 4) 16, not below 2^w; block checksum re-sealed',
      detectedByRandomAccess: true,
      derive: patchBlock((block) => block.mode === CONST && block.name === "scalar.quant", "CONST block", (b, block) => {
        b[block.at + 1] = 16;
      }),
    },
    {
      file: "bad-block-const-payload.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9"],
      exercises: `the first CONST block (of "${NORM_IN}") given a payload of 2 zero bytes (P = 2, block checksum re-sealed, the file laid out again): a CONST payload is empty`,
      detectedByRandomAccess: true,
      derive: replacePayload(isMode(CONST), "CONST block", () => new Uint8Array(2)),
    },
    {
      file: "bad-block-raw-length.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9"],
      exercises: `a zero byte appended to the RAW payload of "${NORM}" (64 symbols of 8 bits: P must be 64, it is 65; block checksum re-sealed, the file laid out again)`,
      detectedByRandomAccess: true,
      derive: replacePayload(isMode(RAW), "RAW block", (old) => concatBytes([old, new Uint8Array(1)])),
    },
    {
      file: "bad-block-rans-odd-length.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9"],
      exercises: "a zero byte appended to the first RANS payload, so P is odd (block checksum re-sealed, the file laid out again)",
      detectedByRandomAccess: true,
      derive: replacePayload(isMode(RANS), "RANS block", (old) => concatBytes([old, new Uint8Array(1)])),
    },
    {
      file: "bad-block-rans-too-long.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9", "§13"],
      exercises:
        `the one-lane RANS payload of "${Q_PROJ}" (n = 1024) padded with zeros to 4N + 2n + 2 = 2054 bytes, one word more than §13 allows ` +
        "(but within the index's 128 + 2n); block checksum re-sealed, the file laid out again",
      detectedByRandomAccess: true,
      derive: replacePayload(ransBlockOf(Q_PROJ), "RANS block", (old, block) => {
        if (block.lanes !== 1) fail("a one-lane block expected");
        const out = new Uint8Array(4 + 2 * block.count + 2);
        out.set(old);
        return out;
      }),
    },
    {
      file: "bad-block-rans-too-short.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9"],
      exercises: `the one-lane RANS payload of "${K_PROJ}" cut to 2 bytes, less than its 4-byte state (block checksum re-sealed, the file laid out again)`,
      detectedByRandomAccess: true,
      derive: replacePayload(ransBlockOf(K_PROJ), "RANS block", (old) => old.slice(0, 2)),
    },
    {
      file: "bad-block-rans-without-table.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9", "§7.2"],
      exercises: `the RAW block of "${NORM}", whose stream has no frequency table, marked RANS with one lane (mode 2, lane code 5); block checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchBlock(isMode(RAW), "RAW block", (b, block) => {
        b[block.at] = RANS;
        b[block.at + 1] = 5;
      }),
    },
    {
      file: "nonzero-padding-between-blocks.qans",
      from: BASE,
      code: "NONZERO_PADDING",
      spec: ["§2", "§9"],
      exercises: `the first padding byte between the first and second block of "${NORM_IN}" set to 1 (padding is covered by no checksum)`,
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const tensor = layout.tensors[tensorNamed(layout, NORM_IN)];
        const at = tensor.blockHeaders[0] + 16 + tensor.entry.payloadLengths[0];
        if (at >= tensor.blockHeaders[1]) fail("no padding between blocks");
        b[at] = 1;
        return b;
      },
    },
    {
      file: "nonzero-padding-raw-bits.qans",
      from: "unicode-metadata.qans",
      code: "NONZERO_PADDING",
      spec: ["§9"],
      exercises: "the top bit of the last byte of the first RAW payload whose symbols leave unused bits (a 3-bit plane of 3 symbols: 9 bits in 2 bytes) set; block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const width = (block: BlockRef) => b[mapTensorHeader(b, layout.tensors[block.tensor].headerOffset).widthsAt[block.stream]];
        return patchBlock((block) => block.mode === RAW && (block.count * width(block)) % 8 !== 0, "RAW block with unused bits", (bytes, block) => {
          bytes[block.at + 16 + block.payload - 1] |= 0x80;
        })(b, layout);
      },
    },
  ];
}

function rans(): InvalidDef[] {
  return [
    {
      file: "bad-final-state.qans",
      from: BASE,
      code: "BAD_FINAL_STATE",
      spec: ["§10.2"],
      exercises: "the stored state of lane 0 of the first RANS block set to 2^15 - 1, just below L; block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchBlock((block) => block.mode === RANS, "RANS block", (b, block) => view(b).setUint32(block.at + 16, 2 ** 15 - 1, true)),
    },
    {
      file: "bad-final-state-high.qans",
      from: BASE,
      code: "BAD_FINAL_STATE",
      spec: ["§10.2"],
      exercises: "the stored state of lane 0 of the first RANS block set to 2^31, just above the interval [L, 2^31); block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchBlock((block) => block.mode === RANS, "RANS block", (b, block) => view(b).setUint32(block.at + 16, 2 ** 31, true)),
    },
    {
      file: "bad-final-state-end.qans",
      from: BASE,
      code: "BAD_FINAL_STATE",
      spec: ["§10.2"],
      exercises:
        `the one-lane RANS block of "${Q_PROJ}" encoded again from the same symbols and table with its lane started at L + 1 instead of L ` +
        "(block checksum re-sealed, the file laid out again): every state is in range and every word is consumed, but decoding ends at L + 1",
      detectedByRandomAccess: true,
      derive: finalStateNotL,
    },
    {
      file: "rans-trailing-words.qans",
      from: BASE,
      code: "TRAILING_DATA",
      spec: ["§10.2", "§9"],
      exercises: `one zero word appended to the one-lane RANS payload of "${Q_PROJ}" (block checksum re-sealed, the file laid out again): decoding ends with a word left`,
      detectedByRandomAccess: true,
      derive: replacePayload(ransBlockOf(Q_PROJ), "RANS block", (old) => concatBytes([old, new Uint8Array(2)])),
    },
    {
      file: "rans-block-overrun.qans",
      from: BASE,
      code: "BLOCK_OVERRUN",
      spec: ["§10.2", "§9"],
      exercises: `the last word removed from the one-lane RANS payload of "${Q_PROJ}" (block checksum re-sealed, the file laid out again): the last renormalisation needs a word past the payload`,
      detectedByRandomAccess: true,
      derive: replacePayload(ransBlockOf(Q_PROJ), "RANS block", (old, block) => {
        if (old.length <= 4 * block.lanes) fail("the block has no words");
        return old.slice(0, old.length - 2);
      }),
    },
  ];
}

/**
 * `bad-final-state-end.qans`, which needs the block's symbols: read back with the SDK, encoded
 * again with file-surgery's own §10.2 encoder, which must first reproduce the stored payload.
 */
async function finalStateNotL(bytes: Uint8Array, layout: FileLayout): Promise<Uint8Array> {
  const t = tensorNamed(layout, Q_PROJ);
  const block = blocksOf(bytes, layout).find((x) => x.tensor === t && x.mode === RANS) ?? fail("no RANS block");
  const symbols = await blockSymbols(bytes, layout, block);
  const table = parsedTable(bytes, layout, t, mapTensorHeader(bytes, layout.tensors[t].headerOffset).tables[0]);
  const frame = framePieces(bytes, layout, t);
  const stored = frame.blocks[block.ordinal].payload;
  const lanes = Array.from({ length: block.lanes }, () => RANS_L);
  const again = ransEncodeFrom(symbols, table, block.lanes, lanes);
  if (again.length !== stored.length || again.some((x, i) => x !== stored[i])) fail("the reference encoder does not reproduce the stored RANS payload");
  lanes[0] = RANS_L + 1;
  frame.blocks[block.ordinal] = withPayload(frame.blocks[block.ordinal], ransEncodeFrom(symbols, table, block.lanes, lanes));
  return assembleFile(bytes, layout, new Map([[t, frame]]));
}

export function frameDefs(): InvalidDef[] {
  return [...tensorHeader(), ...quantParams(), ...freqTables(), ...blocks(), ...rans()];
}
