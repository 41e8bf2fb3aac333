/**
 * Invalid vectors with one defect in the container: file header, metadata frame, padding between
 * frames, index and trailer (spec §3, §4, §6, §11, §13). Each is one targeted change of a valid
 * vector, with the checksums of changed structures re-sealed unless the checksum is under test.
 */
import { align64 } from "../sdk/format/bytes.js";
import { FILE_HEADER_SIZE } from "../sdk/format/constants.js";
import { resealFileHeader, resealIndex, resealMetadata, resealTrailer, type FileLayout } from "../sdk/testing/patch.js";
import {
  BASE,
  EMBED,
  assembleFile,
  K_PROJ,
  NORM,
  NORM_IN,
  Q_PROJ,
  fail,
  getU64,
  mapIndexEntry,
  setU64,
  tensorNamed,
  view,
  type InvalidDef,
} from "./file-surgery.js";
import { addTopLevelMembers } from "./valid-vectors.js";

const ASCII = new TextEncoder();

/** The metadata body as text, and a function that writes `text` over it at a character offset (ASCII before it). */
function metadataText(bytes: Uint8Array, layout: FileLayout): { text: string; at: (needle: string) => number } {
  const body = layout.metadata.offset + 8;
  const text = new TextDecoder().decode(bytes.subarray(body, layout.metadata.offset + layout.metadata.length - 4));
  return {
    text,
    at: (needle) => {
      const i = text.indexOf(needle);
      if (i < 0) fail(`metadata has no ${needle}`);
      return body + i;
    },
  };
}

/** Writes `replacement` (same byte length) over `needle` in the metadata body and re-seals it. */
function replaceInMetadata(bytes: Uint8Array, layout: FileLayout, needle: string, replacement: Uint8Array): Uint8Array {
  if (ASCII.encode(needle).length !== replacement.length) fail(`"${needle}" and its replacement differ in length`);
  bytes.set(replacement, metadataText(bytes, layout).at(needle));
  resealMetadata(bytes, layout);
  return bytes;
}

/** Changes one index field of tensor `name` and re-seals the index. */
function patchEntry(name: string, change: (bytes: Uint8Array, entry: ReturnType<typeof mapIndexEntry>, layout: FileLayout) => void) {
  return (bytes: Uint8Array, layout: FileLayout): Uint8Array => {
    change(bytes, mapIndexEntry(layout, tensorNamed(layout, name)), layout);
    resealIndex(bytes, layout);
    return bytes;
  };
}

/** Changes the index body's prefix (metadata offset at +16, metadata length at +24, tensor count at +32) and re-seals it. */
function patchIndexPrefix(field: 16 | 24 | 32, value: (old: bigint) => bigint) {
  return (bytes: Uint8Array, layout: FileLayout): Uint8Array => {
    const at = layout.index.offset + field;
    setU64(bytes, at, value(getU64(bytes, at)));
    resealIndex(bytes, layout);
    return bytes;
  };
}

function frameEnd(layout: FileLayout, t: number): number {
  const { entry } = layout.tensors[t];
  return entry.frameOffset + entry.frameLength;
}

function magicAndVersion(): InvalidDef[] {
  return [
    {
      file: "bad-magic.qans",
      from: BASE,
      code: "BAD_MAGIC",
      spec: ["§4.1", "§12"],
      exercises: "the first byte of the file magic changed from 'Q' to 'q'; the trailer is intact, so only a reader of the file header sees it",
      detectedByRandomAccess: false,
      derive: (b) => {
        b[0] = 0x71;
        return b;
      },
    },
    {
      file: "bad-magic-metadata-tag.qans",
      from: BASE,
      code: "BAD_MAGIC",
      spec: ["§6", "§12"],
      exercises: 'the metadata frame\'s tag "QMET" changed to "QMEX" (the tag is checked before the checksum)',
      detectedByRandomAccess: true,
      derive: (b) => {
        b[FILE_HEADER_SIZE + 3] = 0x58;
        return b;
      },
    },
    {
      file: "bad-magic-index-tag.qans",
      from: BASE,
      code: "BAD_MAGIC",
      spec: ["§11", "§12"],
      exercises: 'the index frame\'s tag "QIDX" changed to "QIDZ"',
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        b[layout.index.offset + 3] = 0x5a;
        return b;
      },
    },
    {
      file: "bad-end-magic.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§4.2"],
      exercises:
        'the last byte of the trailer\'s end magic "QANSTRL\\n" changed: with no end magic and the file magic at the start, the file reads ' +
        "as one cut short (§4.2 step 2), so the code is TRUNCATED, not BAD_MAGIC",
      detectedByRandomAccess: true,
      derive: (b) => {
        b[b.length - 1] = 0;
        return b;
      },
    },
    {
      file: "unsupported-version-header.qans",
      from: BASE,
      code: "UNSUPPORTED_VERSION",
      spec: ["§4.1", "§14"],
      exercises: "file header major version 2, header checksum re-sealed (the version is checked before the checksum in any case)",
      detectedByRandomAccess: false,
      derive: (b) => {
        view(b).setUint16(8, 2, true);
        resealFileHeader(b);
        return b;
      },
    },
    {
      file: "unsupported-version-trailer.qans",
      from: BASE,
      code: "UNSUPPORTED_VERSION",
      spec: ["§4.2", "§14"],
      exercises: "trailer major version 2, trailer checksum re-sealed; the file header still says 1",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        view(b).setUint16(layout.trailerOffset + 24, 2, true);
        resealTrailer(b);
        return b;
      },
    },
    {
      file: "version-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§4.2"],
      exercises:
        "trailer minor version 1 while the file header says 2, trailer checksum re-sealed: each is a version a 1.2 reader reads, but a reader of " +
        "both (a full verifier) must find them equal",
      detectedByRandomAccess: false,
      derive: (b, layout) => {
        view(b).setUint16(layout.trailerOffset + 26, 1, true);
        resealTrailer(b);
        return b;
      },
    },
  ];
}

function reservedBits(): InvalidDef[] {
  return [
    {
      file: "reserved-bits-header-flags.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§4.1", "§2"],
      exercises: "file header flags = 2: bit 1 set (bit 0 is SET since 1.2, bits 1 to 31 are reserved), header checksum re-sealed",
      detectedByRandomAccess: false,
      derive: (b) => {
        view(b).setUint32(12, 2, true);
        resealFileHeader(b);
        return b;
      },
    },
    {
      file: "reserved-bits-header-bytes.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§4.1", "§2"],
      exercises: "byte 36 of the file header, inside the 44 reserved bytes, set to 1; header checksum re-sealed",
      detectedByRandomAccess: false,
      derive: (b) => {
        b[36] = 1;
        resealFileHeader(b);
        return b;
      },
    },
    {
      file: "reserved-bits-index-flags.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§11", "§2"],
      exercises: "index flags = 2: bit 1 set (bit 0 is SET, bits 1 to 31 are reserved); index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        view(b).setUint32(layout.index.offset + 4, 2, true);
        resealIndex(b, layout);
        return b;
      },
    },
    {
      file: "reserved-bits-index-entry.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§11", "§2"],
      exercises: "the second of the 3 reserved bytes after the stream count in the first index entry set to 1; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.reservedAt + 1] = 1;
      }),
    },
    {
      file: "index-flag-set.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§16.1"],
      exercises:
        "index flag SET (bit 0) set in a file whose file-header flag is clear, index checksum re-sealed: a reader of both must find them equal",
      detectedByRandomAccess: false,
      derive: (b, layout) => {
        view(b).setUint32(layout.index.offset + 4, 1, true);
        resealIndex(b, layout);
        return b;
      },
    },
  ];
}

function truncation(): InvalidDef[] {
  const cut = (file: string, where: string, spec: string[], at: (b: Uint8Array, layout: FileLayout) => number): InvalidDef => ({
    file,
    from: BASE,
    code: "TRUNCATED",
    spec: ["§4.2", ...spec],
    exercises: `the file cut ${where}: the end magic is missing and the file starts with the magic`,
    detectedByRandomAccess: true,
    derive: (b, layout) => b.slice(0, at(b, layout)),
  });
  return [
    cut("truncated-after-header.qans", "right after the 64-byte file header", ["§4.1"], () => FILE_HEADER_SIZE),
    cut("truncated-in-metadata.qans", "10 bytes into the metadata body", ["§6"], () => FILE_HEADER_SIZE + 8 + 10),
    cut("truncated-after-metadata.qans", "right after the metadata frame, before its padding", ["§6", "§3"], (_, layout) => FILE_HEADER_SIZE + layout.metadata.length),
    cut("truncated-in-tensor-header.qans", `20 bytes into the tensor header of "${Q_PROJ}"`, ["§7.1"], (_, layout) => layout.tensors[tensorNamed(layout, Q_PROJ)].headerOffset + 20),
    cut("truncated-in-block-header.qans", `8 bytes into the block header of "${Q_PROJ}"`, ["§9"], (_, layout) => layout.tensors[tensorNamed(layout, Q_PROJ)].blockHeaders[0] + 8),
    {
      ...cut("truncated-mid-block.qans", "in the middle of the first RANS block's payload", ["§9"], (b, layout) => {
        const { blockHeaders, entry } = layout.tensors[0];
        if (b[blockHeaders[0]] !== 2) fail("the first block is not RANS");
        return blockHeaders[0] + 16 + Math.floor(entry.payloadLengths[0] / 2);
      }),
      exercises: "the file cut in the middle of the first RANS block's payload: the end magic is missing and the file starts with the magic",
    },
    cut("truncated-in-index.qans", "in the middle of the index frame", ["§11"], (_, layout) => layout.index.offset + Math.floor(layout.index.length / 2)),
    {
      ...cut("truncated-before-trailer.qans", "", [], (_, layout) => layout.trailerOffset),
      exercises: "the file cut exactly where the trailer starts, as a writer interrupted after the index would leave it",
    },
    cut("truncated-in-trailer.qans", "20 bytes into the 40-byte trailer", [], (_, layout) => layout.trailerOffset + 20),
    {
      file: "truncated-empty.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§4.1", "§4.2"],
      exercises: "an empty file (0 bytes): an empty prefix is a prefix of the magic, so it is TRUNCATED rather than BAD_MAGIC",
      detectedByRandomAccess: true,
      derive: () => new Uint8Array(0),
    },
    {
      file: "short-not-qans.qans",
      from: BASE,
      code: "BAD_MAGIC",
      spec: ["§4.1", "§4.2"],
      exercises: "a 5-byte file that does not start like the magic: shorter than any QANS file and not a prefix of the magic",
      detectedByRandomAccess: true,
      derive: () => ASCII.encode("hello"),
    },
    {
      file: "short-magic-prefix.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§4.1", "§4.2"],
      exercises: "the first 4 bytes of the magic alone: a prefix of the magic, so a cut-short QANS file",
      detectedByRandomAccess: true,
      derive: (b) => b.slice(0, 4),
    },
    {
      file: "metadata-past-end.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§6", "§2"],
      exercises:
        "the metadata body length B set to the file's size: within the 16 MiB limit but past the end of the file, which a reader must " +
        "find before it reads (or allocates) B bytes; the checksum cannot be where B puts it",
      detectedByRandomAccess: true,
      derive: (b) => {
        view(b).setUint32(FILE_HEADER_SIZE + 4, b.length, true);
        return b;
      },
    },
    {
      file: "trailing-data.qans",
      from: BASE,
      code: "TRAILING_DATA",
      spec: ["§4.2", "§3"],
      exercises:
        "40 bytes (a copy of the trailer) appended after the trailer: the last 40 bytes are a valid trailer whose file length is " +
        "40 less than the real size (bytes after a trailer with no end magic of their own would be TRUNCATED instead)",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const out = new Uint8Array(b.length + 40);
        out.set(b);
        out.set(b.subarray(layout.trailerOffset), b.length);
        return out;
      },
    },
  ];
}

function checksums(): InvalidDef[] {
  return [
    {
      file: "checksum-header.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§4.1", "§2"],
      exercises: "one bit of the stored file header checksum flipped",
      detectedByRandomAccess: false,
      derive: (b) => {
        b[60] ^= 0x01;
        return b;
      },
    },
    {
      file: "checksum-metadata.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§6"],
      exercises: "one character of a metadata value changed ('llama-tiny' to 'llama-tinz'), still valid JSON, checksum not updated",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        b[metadataText(b, layout).at("llama-tiny") + 9] = "z".charCodeAt(0);
        return b;
      },
    },
    {
      file: "checksum-index.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§11"],
      exercises: "the frame length of the first index entry increased by one, index checksum not updated",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const at = mapIndexEntry(layout, 0).frameLengthAt;
        setU64(b, at, getU64(b, at) + 1n);
        return b;
      },
    },
    {
      file: "checksum-trailer.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§4.2"],
      exercises: "the lowest bit of the trailer's file length flipped, trailer checksum not updated (the checksum is checked before the length)",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        b[layout.trailerOffset + 16] ^= 0x01;
        return b;
      },
    },
  ];
}

function padding(): InvalidDef[] {
  const poke = (file: string, where: string, detectedByRandomAccess: boolean, place: (layout: FileLayout) => { at: number; next: number }, from = BASE): InvalidDef => ({
    file,
    from,
    code: "NONZERO_PADDING",
    spec: ["§2", "§3"],
    exercises: `the first padding byte ${where} set to 1 (padding is covered by no checksum)${detectedByRandomAccess ? "" : "; a random-access reader never reads it"}`,
    detectedByRandomAccess,
    derive: (b, layout) => {
      const { at, next } = place(layout);
      if (at >= next) fail(`no padding ${where}`);
      b[at] = 1;
      return b;
    },
  });
  return [
    {
      ...poke("nonzero-padding.qans", "between the first tensor header and its first block header", true, (layout) => {
        const tensor = layout.tensors[0];
        return { at: tensor.headerOffset + tensor.headerLength, next: tensor.blockHeaders[0] };
      }),
      spec: ["§2", "§9"],
    },
    poke("nonzero-padding-after-metadata.qans", "after the metadata frame, before the first tensor frame", false, (layout) => ({
      at: FILE_HEADER_SIZE + layout.metadata.length,
      next: layout.tensors[0].entry.frameOffset,
    })),
    poke("nonzero-padding-between-frames.qans", "after the first tensor frame, before the second", false, (layout) => ({
      at: frameEnd(layout, 0),
      next: layout.tensors[1].entry.frameOffset,
    })),
    poke(
      "nonzero-padding-before-index.qans",
      "after the last tensor frame, before the index",
      false,
      (layout) => ({ at: frameEnd(layout, layout.tensors.length - 1), next: layout.index.offset }),
      "shapes.qans",
    ),
  ];
}

function offsets(): InvalidDef[] {
  const trailerField = (bytes: Uint8Array, field: 0 | 8, value: bigint) => setU64(bytes, bytes.length - 40 + field, value);
  return [
    {
      file: "misaligned-index-offset.qans",
      from: BASE,
      code: "MISALIGNED",
      spec: ["§4.2", "§3"],
      exercises: "the trailer's index offset decreased by one and its index length increased by one (their sum still reaches the trailer), trailer checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        trailerField(b, 0, BigInt(layout.index.offset - 1));
        trailerField(b, 8, BigInt(layout.index.length + 1));
        resealTrailer(b);
        return b;
      },
    },
    {
      file: "index-offset-out-of-range.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§4.2"],
      exercises: "the trailer's index offset 64 less (still a multiple of 64), so index offset + index length + 40 falls short of the file length; trailer checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        trailerField(b, 0, BigInt(layout.index.offset - 64));
        resealTrailer(b);
        return b;
      },
    },
    {
      file: "index-offset-wraps.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§4.2", "§2"],
      exercises:
        "the trailer's index offset and index length each increased by 2^63, trailer checksum re-sealed: their sum + 40 equals the file length " +
        "modulo 2^64, so only a reader that computes it without overflow, as §2 requires, rejects it here",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        trailerField(b, 0, BigInt(layout.index.offset) + 2n ** 63n);
        trailerField(b, 8, BigInt(layout.index.length) + 2n ** 63n);
        resealTrailer(b);
        return b;
      },
    },
    {
      file: "metadata-offset.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11"],
      exercises: "the index's metadata frame offset 128 instead of 64; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchIndexPrefix(16, () => 128n),
    },
    {
      file: "metadata-length-past-index.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11"],
      exercises: "the index's metadata frame length 2^40, so 64 + length passes the index offset; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchIndexPrefix(24, () => 2n ** 40n),
    },
    {
      file: "misaligned-frame-offset.qans",
      from: BASE,
      code: "MISALIGNED",
      spec: ["§11", "§3"],
      exercises: `the frame offset of "${Q_PROJ}" in the index increased by one, off the 64-byte grid; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(Q_PROJ, (b, entry) => setU64(b, entry.frameOffsetAt, getU64(b, entry.frameOffsetAt) + 1n)),
    },
    {
      file: "overlapping-frames.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11", "§3"],
      exercises: `the frame offset of "${Q_PROJ}" in the index set 64 bytes past the start of the first frame, inside it: frames overlap; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(Q_PROJ, (b, entry, layout) => setU64(b, entry.frameOffsetAt, layout.tensors[0].entry.frameOffset + 64)),
    },
    {
      file: "frame-gap.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11", "§3"],
      exercises: `the frame offset of "${Q_PROJ}" in the index 64 more: still aligned and inside the file, but leaving a gap after the previous frame; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(Q_PROJ, (b, entry) => setU64(b, entry.frameOffsetAt, getU64(b, entry.frameOffsetAt) + 64n)),
    },
    {
      file: "frame-offset-past-file.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11", "§2"],
      exercises: `the frame offset of "${NORM}" (the last frame) in the index 2^40: aligned, far past the end of the file; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(NORM, (b, entry) => setU64(b, entry.frameOffsetAt, 2n ** 40n)),
    },
    {
      file: "frame-length-wraps.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11", "§2"],
      exercises:
        `the frame length of "${NORM}" in the index 2^64 - 64: frame offset + frame length wraps around 2^64 to just below the offset, so ` +
        "only a reader that checks the length itself against the index offset rejects it here; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(NORM, (b, entry) => setU64(b, entry.frameLengthAt, 2n ** 64n - 64n)),
    },
    {
      file: "header-length-over-frame.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11"],
      exercises: `the tensor header length H of "${NORM_IN}" in the index one more than its frame length; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(NORM_IN, (b, entry, layout) => view(b).setUint32(entry.headerLengthAt, layout.tensors[tensorNamed(layout, NORM_IN)].entry.frameLength + 1, true)),
    },
    {
      file: "header-length-below-minimum.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11", "§7.1"],
      exercises: `the tensor header length H of "${NORM_IN}" in the index 24, below the smallest header (25); index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(NORM_IN, (b, entry) => view(b).setUint32(entry.headerLengthAt, 24, true)),
    },
    {
      file: "payload-length-over-limit.qans",
      from: BASE,
      code: "OFFSET_OUT_OF_RANGE",
      spec: ["§11", "§9", "§13"],
      exercises: `the payload length of the block of "${NORM}" (64 symbols) in the index 258, above the 128 + 2n = 256 no block of 64 symbols can exceed; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(NORM, (b, entry) => view(b).setUint32(entry.payloadLengthsAt, 128 + 2 * 64 + 2, true)),
    },
  ];
}

function indexMismatch(): InvalidDef[] {
  return [
    {
      file: "index-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§9"],
      exercises:
        "the frame length of an index entry whose frame does not end on a 64-byte boundary increased by one: frames stay contiguous " +
        "and before the index, but the length disagrees with the header and block placement; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const t = layout.tensors.findIndex((_, i) => frameEnd(layout, i) % 64 !== 0);
        if (t < 0) fail("every frame ends on a 64-byte boundary");
        const at = mapIndexEntry(layout, t).frameLengthAt;
        setU64(b, at, getU64(b, at) + 1n);
        resealIndex(b, layout);
        return b;
      },
    },
    {
      file: "index-name-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11"],
      exercises: `the index entry of "${EMBED}" renamed "model.embed_tokens.weighs" (still unique), while its tensor header keeps the name; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.nameAt + EMBED.length - 1] = "s".charCodeAt(0);
      }),
    },
    {
      file: "index-dtype-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§5"],
      exercises: `the dtype of "${EMBED}" (int-quant of F32) in the index F16, which int-quant also accepts; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.dtypeAt] = 2;
      }),
    },
    {
      file: "index-encoding-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§8"],
      exercises:
        `the encoding of "${EMBED}" (int-quant, one stream) in the index raw (one stream, one block of 8192 symbols), a valid entry that ` +
        "disagrees with the tensor header; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.encodingAt] = 0;
      }),
    },
    {
      file: "index-shape-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§7.1"],
      exercises: `the shape of "${EMBED}" in the index [32, 64] instead of [64, 32]: the same element count; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        setU64(b, entry.dimsAt, 32);
        setU64(b, entry.dimsAt + 8, 64);
      }),
    },
    {
      file: "index-block-size-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§7.3"],
      exercises: `the log2 block size of "${EMBED}" in the index 16 instead of 17 (its 2048 symbols are one block either way); index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.log2BlockAt] = 16;
      }),
    },
    {
      file: "index-header-length-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§7.1"],
      exercises: `the tensor header length H of "${EMBED}" in the index one more than the header's (the blocks are placed at the same offsets either way); index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => view(b).setUint32(entry.headerLengthAt, view(b).getUint32(entry.headerLengthAt, true) + 1, true)),
    },
    {
      file: "index-payload-length-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§9"],
      exercises:
        `the payload length of the block of "${K_PROJ}" in the index 2 more, and its frame length 2 more to match (the frame still ends before ` +
        "the next 64-byte boundary): a consistent index that disagrees with the block header; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const t = tensorNamed(layout, K_PROJ);
        if (frameEnd(layout, t) % 64 === 0 || frameEnd(layout, t) % 64 > 62) fail(`"${K_PROJ}" ends too close to a 64-byte boundary`);
        const entry = mapIndexEntry(layout, t);
        view(b).setUint32(entry.payloadLengthsAt, layout.tensors[t].entry.payloadLengths[0] + 2, true);
        setU64(b, entry.frameLengthAt, getU64(b, entry.frameLengthAt) + 2n);
        resealIndex(b, layout);
        return b;
      },
    },
    {
      file: "index-metadata-length-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§6"],
      exercises:
        "the index's metadata frame length one more than the frame's (the first tensor frame is at the same aligned offset either way), index " +
        "checksum re-sealed; a random-access reader that reads the frame with the index's length need not notice",
      detectedByRandomAccess: false,
      derive: (b, layout) => {
        if (align64(FILE_HEADER_SIZE + layout.metadata.length + 1) !== align64(FILE_HEADER_SIZE + layout.metadata.length)) fail("metadata frame ends on a boundary");
        return patchIndexPrefix(24, (old) => old + 1n)(b, layout);
      },
    },
    {
      file: "index-body-length-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§4.2"],
      exercises: "the index frame's body length B one more, so 20 + B no longer equals the trailer's index length; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        setU64(b, layout.index.offset + 8, getU64(b, layout.index.offset + 8) + 1n);
        resealIndex(b, layout);
        return b;
      },
    },
  ];
}

function indexEntries(): InvalidDef[] {
  return [
    {
      file: "duplicate-name.qans",
      from: BASE,
      code: "DUPLICATE_NAME",
      spec: ["§11"],
      exercises: `the index entry of "${K_PROJ}" renamed to "${Q_PROJ}" (same length), index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(K_PROJ, (b, entry) => {
        b[entry.nameAt + K_PROJ.indexOf("k_proj")] = "q".charCodeAt(0);
      }),
    },
    {
      file: "bad-utf8-index-name.qans",
      from: BASE,
      code: "BAD_UTF8",
      spec: ["§2", "§11"],
      exercises: "the first byte of the second tensor's name in the index set to 0xFF (never valid in UTF-8), index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(Q_PROJ, (b, entry) => {
        b[entry.nameAt] = 0xff;
      }),
    },
    {
      file: "empty-name.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§11", "§7.1"],
      exercises: "the name length of the first index entry 0: a name has 1 to 4096 bytes; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => view(b).setUint16(entry.nameLengthAt, 0, true)),
    },
    {
      file: "bad-dtype-code.qans",
      from: BASE,
      code: "BAD_DTYPE",
      spec: ["§5", "§11"],
      exercises: "the dtype code of the first index entry 15, one past the last code (F8_E5M2, 14); index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.dtypeAt] = 15;
      }),
    },
    {
      file: "bad-dtype-float-planes.qans",
      from: BASE,
      code: "BAD_DTYPE",
      spec: ["§8.2", "§11"],
      exercises: `the dtype of "${NORM_IN}" (float-planes) in the index I32, which float-planes does not accept; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(NORM_IN, (b, entry) => {
        b[entry.dtypeAt] = 5;
      }),
    },
    {
      file: "bad-dtype-int-quant.qans",
      from: BASE,
      code: "BAD_DTYPE",
      spec: ["§8.3", "§11"],
      exercises: `the dtype of "${EMBED}" (int-quant) in the index U8, which is not an original dtype int-quant accepts; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.dtypeAt] = 8;
      }),
    },
    {
      file: "bad-encoding.qans",
      from: BASE,
      code: "BAD_ENCODING",
      spec: ["§8", "§11"],
      exercises: "the encoding code of the first index entry 3, one past int-quant (2); index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.encodingAt] = 3;
      }),
    },
    {
      file: "bad-stream-count.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§7.1", "§8.1", "§11"],
      exercises: `the stream count of "${NORM}" (raw, which has one stream) in the index 2; index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: patchEntry(NORM, (b, entry) => {
        b[entry.streamCountAt] = 2;
      }),
    },
    {
      file: "index-body-leftover.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§11"],
      exercises:
        "4 zero bytes appended to the index body after the last entry (its body length, checksum and the trailer updated to match): " +
        "every entry reads correctly, but the body is not consumed exactly",
      detectedByRandomAccess: true,
      derive: (b, layout) => assembleFile(b, layout, new Map(), new Uint8Array(4)),
    },
    {
      file: "bad-shape.qans",
      from: BASE,
      code: "BAD_SHAPE",
      spec: ["§7.1", "§11", "§13"],
      exercises: "the first dimension in the index entry of the first tensor set to 2^48 + 1, index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => setU64(b, entry.dimsAt, 2n ** 48n + 1n)),
    },
    {
      file: "bad-shape-element-count.qans",
      from: BASE,
      code: "BAD_SHAPE",
      spec: ["§7.1", "§11", "§13"],
      exercises: "the shape of the first index entry [2^24 + 1, 2^24]: each dimension within 2^48, their product 2^48 + 2^24 above it; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        setU64(b, entry.dimsAt, 2 ** 24 + 1);
        setU64(b, entry.dimsAt + 8, 2 ** 24);
      }),
    },
    {
      file: "bad-shape-product-wraps.qans",
      from: BASE,
      code: "BAD_SHAPE",
      spec: ["§7.1", "§11", "§2"],
      exercises:
        "the shape of the first index entry [2^32 + 1, 2^32]: the product 2^64 + 2^32 exceeds 2^64, and a reader that multiplies in 64 bits " +
        "without an overflow check sees 2^32 elements; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        setU64(b, entry.dimsAt, 2n ** 32n + 1n);
        setU64(b, entry.dimsAt + 8, 2n ** 32n);
      }),
    },
    {
      file: "raw-bytes-exceed-file.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§11", "§7.3", "§13"],
      exercises:
        `the shape of "${NORM}" (raw BF16) in the index [2^47]: a valid element count whose 2^48 bytes make 2^31 blocks, whose payload lengths ` +
        "cannot fit in the rest of the index body (a reader must see that before allocating them); index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(NORM, (b, entry) => setU64(b, entry.dimsAt, 2n ** 47n)),
    },
  ];
}

function limits(): InvalidDef[] {
  return [
    {
      file: "limit-name-length.qans",
      from: BASE,
      code: "LIMIT_EXCEEDED",
      spec: ["§13", "§11"],
      exercises: "the name length of the first index entry 4097, one more than §13 allows (checked before the name is read); index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => view(b).setUint16(entry.nameLengthAt, 4097, true)),
    },
    {
      file: "limit-rank.qans",
      from: BASE,
      code: "LIMIT_EXCEEDED",
      spec: ["§13", "§11"],
      exercises: "the rank of the first index entry 9, one more than §13 allows; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.rankAt] = 9;
      }),
    },
    {
      file: "limit-block-size-small.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§13", "§7.1", "§11"],
      exercises: "the log2 block size of the first index entry 11, one below §13's 2^12 (BAD_HEADER, as §7.1 names it); index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.log2BlockAt] = 11;
      }),
    },
    {
      file: "limit-block-size-large.qans",
      from: BASE,
      code: "BAD_HEADER",
      spec: ["§13", "§7.1", "§11"],
      exercises: "the log2 block size of the first index entry 21, one above §13's 2^20; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchEntry(EMBED, (b, entry) => {
        b[entry.log2BlockAt] = 21;
      }),
    },
    {
      file: "limit-tensor-count.qans",
      from: BASE,
      code: "LIMIT_EXCEEDED",
      spec: ["§13", "§11"],
      exercises: "the index's tensor count T = 2^20 + 1, one more than §13 allows (a reader must refuse it before sizing anything by it); index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchIndexPrefix(32, () => 2n ** 20n + 1n),
    },
    {
      file: "limit-tensor-count-body.qans",
      from: BASE,
      code: "LIMIT_EXCEEDED",
      spec: ["§11"],
      exercises: "the index's tensor count T = 1000: within §13's limit, but 1000 entries of at least 31 bytes cannot fit in the body; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: patchIndexPrefix(32, () => 1000n),
    },
    {
      file: "limit-metadata-length.qans",
      from: BASE,
      code: "LIMIT_EXCEEDED",
      spec: ["§13", "§6"],
      exercises: "the metadata body length B = 16 MiB + 1, one more than §13 allows (checked before the file's size and the checksum)",
      detectedByRandomAccess: true,
      derive: (b) => {
        view(b).setUint32(FILE_HEADER_SIZE + 4, 16 * 1024 * 1024 + 1, true);
        return b;
      },
    },
  ];
}

/** The valid file without tensors whose metadata body the JSON-limit vectors extend. */
const NO_TENSORS = "no-tensors.qans";

function jsonLimits(): InvalidDef[] {
  const limit = (file: string, member: string, what: string, spec = ["§6", "§13"]): InvalidDef => ({
    file,
    from: NO_TENSORS,
    code: "BAD_METADATA",
    spec,
    exercises: `${what}; the metadata frame, index and trailer laid out again for the longer body`,
    detectedByRandomAccess: true,
    derive: (b, layout) => addTopLevelMembers(b, metadataText(b, layout).text, [member]),
  });
  return [
    limit(
      "bad-metadata-json-depth.qans",
      `"nesting":${"[".repeat(64)}${"]".repeat(64)}`,
      'a top-level member "nesting" added to the body, whose value is 64 arrays nested in one another: the innermost (empty) array is at depth 65, ' +
        "one more than §6 allows (the body's object is depth 1); readers ignore the member but must still parse it",
    ),
    limit(
      "bad-metadata-integer-length.qans",
      `"integer":1${"0".repeat(1000)}`,
      'a top-level member "integer" added to the body, whose value is the integer literal 10^1000: 1001 characters, one more than §6 allows; ' +
        "readers ignore the member but must still parse it",
    ),
    limit(
      "bad-metadata-number-range.qans",
      `"number":1e400`,
      'a top-level member "number" added to the body, whose value 1e400 rounds to infinity in binary64, which §6 refuses; readers ignore the member ' +
        "but must still parse it",
      ["§6"],
    ),
  ];
}

function metadata(): InvalidDef[] {
  const rewrite = (file: string, needle: string, replacement: string | Uint8Array, what: string, code: "BAD_METADATA" | "BAD_UTF8", spec: string[]): InvalidDef => ({
    file,
    from: BASE,
    code,
    spec,
    exercises: `${what}; metadata checksum re-sealed`,
    detectedByRandomAccess: true,
    derive: (b, layout) => replaceInMetadata(b, layout, needle, typeof replacement === "string" ? ASCII.encode(replacement) : replacement),
  });
  return [
    rewrite(
      "bad-metadata-duplicate-key.qans",
      '"general.type"',
      '"general.name"',
      'the metadata key "general.type" renamed to "general.name", so the object has a duplicate key',
      "BAD_METADATA",
      ["§6"],
    ),
    rewrite("bad-metadata-json.qans", '{"metadata"', '["metadata"', "the body's opening { changed to [: not JSON", "BAD_METADATA", ["§6"]),
    rewrite(
      "bad-metadata-value-type.qans",
      '"model"',
      "1234567",
      'the metadata value "model" replaced with the number 1234567: metadata values are strings',
      "BAD_METADATA",
      ["§6"],
    ),
    rewrite(
      "bad-metadata-architecture.qans",
      '"family"',
      '"famils"',
      'the architecture record\'s member "family" renamed "famils": the record must have a string family',
      "BAD_METADATA",
      ["§6", "§6.2"],
    ),
    rewrite(
      "bad-utf8-metadata-overlong.qans",
      "llama-tiny",
      Uint8Array.of(...ASCII.encode("llama-"), 0xc0, 0xaf, ...ASCII.encode("ny")),
      'the characters "ti" of the value "llama-tiny" replaced with the bytes C0 AF, an overlong encoding of "/" that UTF-8 forbids',
      "BAD_UTF8",
      ["§2", "§6"],
    ),
    rewrite(
      "bad-utf8-metadata-surrogate.qans",
      "llama-tiny",
      Uint8Array.of(...ASCII.encode("llama-"), 0xed, 0xa0, 0x80, ...ASCII.encode("y")),
      'the characters "tin" of the value "llama-tiny" replaced with the bytes ED A0 80, the UTF-8 form of the lone surrogate U+D800, which UTF-8 forbids',
      "BAD_UTF8",
      ["§2", "§6"],
    ),
  ];
}

export function containerDefs(): InvalidDef[] {
  return [...magicAndVersion(), ...reservedBits(), ...truncation(), ...checksums(), ...padding(), ...offsets(), ...indexMismatch(), ...indexEntries(), ...limits(), ...metadata(), ...jsonLimits()];
}
