#!/usr/bin/env python3
"""A minimal QANS 1.2 decoder and full verifier, written from spec/qans-v1.md alone.

Usage: python3 qans_decode.py FILE.qans

It checks every structure of the file in the order spec §12 gives for a full verifier (file
header, metadata frame, trailer, index, then every tensor frame with the padding between
structures; for a set file, §16.2: the set file, every shard as a whole file, then each shard
against the set), decodes every tensor, and prints exactly one line of JSON:

    {"tensors": [{"name", "sha256", "symbols_sha256", "f32_sha256"?}, ...]}   the file is valid
    {"error": "<CODE>", "message": "..."}                                     it must be rejected

with the fields of conformance/manifest.json. The exit status is 0 in both cases; anything else
is a failure of this program. Standard library only, and plain rather than fast: it exists to
show how a reader follows the spec, and docs/writing-a-reader.md quotes it region by region.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
from contextlib import contextmanager
from dataclasses import dataclass

# region: errors
class QansError(Exception):
    """A file that a reader must reject, with the spec §12 code of the first failed check."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
# endregion


# region: constants
FILE_MAGIC = b"QANS\r\n\x1a\n"          # §4.1
TRAILER_MAGIC = b"QANSTRL\n"            # §4.2
METADATA_TAG = b"QMET"                  # §6
TENSOR_TAG = b"QTEN"                    # §7.1
INDEX_TAG = b"QIDX"                     # §11

FILE_HEADER_SIZE = 64
TRAILER_SIZE = 40
SMALLEST_FILE = 64 + 12 + 20 + 40       # header, empty metadata body, empty index body, trailer
FLAG_SET = 1                            # file header and index flag bit 0 (§4.1, §11)

# §5: code -> (name, bytes per element)
DTYPES = {
    0: ("F64", 8), 1: ("F32", 4), 2: ("F16", 2), 3: ("BF16", 2), 4: ("I64", 8),
    5: ("I32", 4), 6: ("I16", 2), 7: ("I8", 1), 8: ("U8", 1), 9: ("BOOL", 1),
    10: ("U16", 2), 11: ("U32", 4), 12: ("U64", 8), 13: ("F8_E4M3", 1), 14: ("F8_E5M2", 1),
}
FLOAT_DTYPES = ("F32", "F16", "BF16")   # the dtypes float-planes and int-quant accept
ENCODINGS = {0: "raw", 1: "float-planes", 2: "int-quant"}

# §8.2: the symbol width of each plane, stream 0 first
PLANE_WIDTHS = {"BF16": (8, 8), "F16": (5, 8, 3), "F32": (8, 8, 8, 8)}

# §13
MAX_NAME_BYTES = 4096
MAX_RANK = 8
MAX_ELEMENTS = 1 << 48
MAX_TENSORS = 1 << 20
MAX_METADATA_BODY = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64                     # arrays and objects nested in the metadata body (§6)
MAX_JSON_INTEGER_CHARS = 1000           # an integer literal in it, minus sign included (§6)
MAX_TENSOR_HEADER = 1 << 30
MAX_INDEX_LENGTH = 1 << 32
MAX_GROUP_SIZE = 1 << 24
MAX_SHARDS = 65535
MAX_SHARD_BYTES = (1 << 53) - 1
MAX_SHARD_FILE_NAME = 255

# §10.1
RANS_L = 1 << 15
RANS_STATE_END = 1 << 31
# endregion


# region: helpers
def align64(x: int) -> int:
    return (x + 63) // 64 * 64


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def u16_at(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 2], "little")


def u32_at(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 4], "little")


def u64_at(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 8], "little")


def decode_utf8(raw: bytes, what: str, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise QansError("BAD_UTF8", f"{what} at offset {offset} is not valid UTF-8") from None
# endregion


# region: crc32c
def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(*parts: bytes) -> int:
    """CRC-32C (Castagnoli, reflected) of the concatenation of parts (§2)."""
    crc = 0xFFFFFFFF
    for part in parts:
        for byte in part:
            crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
# endregion


# region: source
class Source:
    """A file read at absolute offsets. Every read is checked against the real file size first,
    so no size declared inside the file can make the reader allocate or seek beyond it."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.file = open(path, "rb")
            self.size = os.fstat(self.file.fileno()).st_size
        except OSError as error:
            raise QansError("IO_ERROR", f"cannot open {path}: {error.strerror}") from None

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset + length > self.size:
            raise QansError("TRUNCATED", f"{what} at offset {offset} needs {length} bytes; "
                                         f"the file ends at {self.size}")
        try:
            self.file.seek(offset)
            data = self.file.read(length)
        except OSError as error:
            raise QansError("IO_ERROR", f"reading {what} at offset {offset}: {error.strerror}") from None
        if len(data) != length:
            raise QansError("IO_ERROR", f"{what} at offset {offset}: short read")
        return data

    def close(self) -> None:
        self.file.close()


class Cursor:
    """Reads the fields of one structure in order. A field that would run past `end` is an
    error with `overrun_code` (BAD_HEADER for tensor headers and the index body)."""

    def __init__(self, data: bytes, start: int, end: int, base: int, what: str,
                 overrun_code: str = "BAD_HEADER"):
        self.data, self.pos, self.end = data, start, end
        self.base = base            # absolute file offset of data[0], for messages
        self.what = what
        self.overrun_code = overrun_code

    def offset(self) -> int:
        return self.base + self.pos

    def remaining(self) -> int:
        return self.end - self.pos

    @contextmanager
    def overruns_as(self, code: str):
        """Within the block, a field past the end is reported with `code` instead."""
        saved, self.overrun_code = self.overrun_code, code
        try:
            yield
        finally:
            self.overrun_code = saved

    def take(self, n: int, field: str) -> bytes:
        if n > self.remaining():
            raise QansError(self.overrun_code, f"{self.what}: {field} at offset {self.offset()} "
                                               f"needs {n} bytes, only {self.remaining()} remain")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def u64(self, field: str) -> int:
        return int.from_bytes(self.take(8, field), "little")
# endregion


# region: file-header
@dataclass
class FileHeader:
    major: int
    minor: int
    is_set: bool


def reject_short_file(source: Source, what: str) -> None:
    """§4.1/§4.2: a file too short to be QANS is TRUNCATED if it starts like the magic (a cut
    copy), BAD_MAGIC otherwise. An empty file is a prefix of the magic."""
    start = source.read(0, min(8, source.size), "file magic")
    if FILE_MAGIC.startswith(start):
        raise QansError("TRUNCATED", f"the file is {source.size} bytes, shorter than {what}")
    raise QansError("BAD_MAGIC", f"the file is {source.size} bytes and does not start with the QANS magic")


def read_file_header(source: Source) -> FileHeader:
    if source.size < FILE_HEADER_SIZE:
        reject_short_file(source, "the 64-byte file header")
    header = source.read(0, FILE_HEADER_SIZE, "file header")
    if header[0:8] != FILE_MAGIC:
        raise QansError("BAD_MAGIC", "file header at offset 0: wrong magic")
    major, minor, flags = u16_at(header, 8), u16_at(header, 10), u32_at(header, 12)
    if major != 1:
        raise QansError("UNSUPPORTED_VERSION", f"file header at offset 0: major version {major}")
    if crc32c(header[0:60]) != u32_at(header, 60):
        raise QansError("CHECKSUM_MISMATCH", "file header at offset 0: header checksum")
    if flags & ~FLAG_SET or any(header[16:60]):
        raise QansError("RESERVED_BITS", "file header at offset 0: reserved flags or bytes are not zero")
    return FileHeader(major, minor, bool(flags & FLAG_SET))
# endregion


# region: metadata-frame
@dataclass
class Metadata:
    document: dict
    frame_length: int                   # 12 + B
    shards: list[ShardRef] | None     # a set file's shards member (§16.1), checked


def read_metadata_frame(source: Source, is_set: bool) -> Metadata:
    """§6, checks in order: tag, B within the limit and the file, checksum, UTF-8, JSON."""
    start = FILE_HEADER_SIZE
    head = source.read(start, 8, "metadata frame")
    if head[0:4] != METADATA_TAG:
        raise QansError("BAD_MAGIC", f"metadata frame at offset {start}: wrong tag")
    body_length = u32_at(head, 4)
    if body_length > MAX_METADATA_BODY:
        raise QansError("LIMIT_EXCEEDED", f"metadata frame at offset {start}: body of {body_length} bytes")
    frame = source.read(start, 12 + body_length, "metadata frame")
    if crc32c(frame[0:8 + body_length]) != u32_at(frame, 8 + body_length):
        raise QansError("CHECKSUM_MISMATCH", f"metadata frame at offset {start}: checksum")
    text = decode_utf8(frame[8:8 + body_length], "metadata body", start + 8)
    document = parse_json_object(text)
    check_metadata_members(document)
    if is_set != ("shards" in document):
        raise QansError("BAD_METADATA", "the shards member must be present exactly when the flag SET is set")
    shards = check_shards_member(document["shards"]) if is_set else None
    return Metadata(document, 12 + body_length, shards)


class DuplicateKey(ValueError):
    pass


def reject_duplicate_keys(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"duplicate key {key!r}")
        result[key] = value
    return result


def reject_non_json_constant(name: str):
    # Python's json accepts NaN and Infinity; RFC 8259 does not.
    raise ValueError(f"{name} is not JSON")


def parse_json_integer(literal: str) -> int:
    # json passes the whole literal, minus sign included, which is what §6 counts.
    if len(literal) > MAX_JSON_INTEGER_CHARS:
        raise ValueError(f"an integer literal of {len(literal)} characters, "
                         f"more than {MAX_JSON_INTEGER_CHARS}")
    return int(literal)


def parse_json_float(literal: str) -> float:
    value = float(literal)      # rounded to the nearest binary64, ties to even
    if math.isinf(value):
        raise ValueError(f"the number {literal[:40]} is beyond the range of binary64")
    return value


def check_json_nesting(text: str) -> None:
    """§6: arrays and objects at most 64 deep, the body's own object at depth 1. Brackets inside
    strings are not structure. In a text that is not JSON this count may be off, but json.loads
    then rejects the text anyway, with the same code."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise QansError("BAD_METADATA", f"metadata body: arrays and objects nested "
                                                f"more than {MAX_JSON_DEPTH} deep")
        elif char in "]}":
            depth -= 1


def parse_json_object(text: str) -> dict:
    """RFC 8259 JSON within §6's limits, with no duplicate key at any depth."""
    check_json_nesting(text)
    try:
        document = json.loads(text, object_pairs_hook=reject_duplicate_keys,
                              parse_constant=reject_non_json_constant,
                              parse_int=parse_json_integer, parse_float=parse_json_float)
    except ValueError as error:
        raise QansError("BAD_METADATA", f"metadata body: {error}") from None
    if not isinstance(document, dict):
        raise QansError("BAD_METADATA", "metadata body is not a JSON object")
    return document


def check_metadata_members(document: dict) -> None:
    """The types of the members §6 defines; other members are ignored."""
    if "metadata" in document:
        metadata = document["metadata"]
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise QansError("BAD_METADATA", "the metadata member is not an object of strings")
    if "architecture" in document:
        architecture = document["architecture"]
        if not isinstance(architecture, dict) or not isinstance(architecture.get("family"), str):
            raise QansError("BAD_METADATA", "the architecture member is not an object with a string family")
# endregion


# region: set-metadata
@dataclass
class ShardRef:
    file: str
    bytes: int
    trailer_crc32c: int
    tensors: list[str]


SHARD_NAME_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
SHARD_MEMBERS = {"file", "bytes", "trailer_crc32c", "tensors"}


def is_json_integer(value) -> bool:
    # json gives int only for numbers written without fraction or exponent; bool is a subclass.
    return isinstance(value, int) and not isinstance(value, bool)


def check_shards_member(shards) -> list[ShardRef]:
    """§16.1, in the order given there: the count, each shard on its own, then uniqueness."""
    if not isinstance(shards, list) or len(shards) == 0:
        raise QansError("BAD_METADATA", "shards is not a non-empty array")
    if len(shards) > MAX_SHARDS:
        raise QansError("LIMIT_EXCEEDED", f"{len(shards)} shards, more than {MAX_SHARDS}")
    result = [check_shard(shard, f"shards[{number}]") for number, shard in enumerate(shards)]
    file_names, tensor_names = set(), set()
    for shard in result:
        if shard.file in file_names:
            raise QansError("BAD_METADATA", f"shard file name {shard.file!r} appears twice")
        file_names.add(shard.file)
    for shard in result:
        for name in shard.tensors:
            if name in tensor_names:
                raise QansError("DUPLICATE_NAME", f"tensor {name!r} is in two shards")
            tensor_names.add(name)
    if len(tensor_names) > MAX_TENSORS:
        raise QansError("LIMIT_EXCEEDED", f"the set has {len(tensor_names)} tensors, more than {MAX_TENSORS}")
    return result


def check_shard(shard, where: str) -> ShardRef:
    """One element of shards on its own: its members, their types and ranges, its names."""
    if not isinstance(shard, dict) or set(shard) != SHARD_MEMBERS:
        raise QansError("BAD_METADATA", f"{where} must be an object with exactly {sorted(SHARD_MEMBERS)}")
    file, size, checksum, tensors = shard["file"], shard["bytes"], shard["trailer_crc32c"], shard["tensors"]
    if not isinstance(file, str) or not is_json_integer(size) or not is_json_integer(checksum) \
            or not isinstance(tensors, list) or not all(isinstance(t, str) for t in tensors):
        raise QansError("BAD_METADATA", f"{where}: a member has the wrong type")
    if not SMALLEST_FILE <= size <= MAX_SHARD_BYTES or not 0 <= checksum <= 0xFFFFFFFF:
        raise QansError("BAD_METADATA", f"{where}: bytes or trailer_crc32c out of range")
    if not 1 <= len(file) <= MAX_SHARD_FILE_NAME or file.startswith(".") \
            or not set(file) <= SHARD_NAME_CHARACTERS:
        raise QansError("BAD_METADATA", f"{where}: file name {file!r} is not allowed")
    if len(tensors) == 0:
        raise QansError("BAD_METADATA", f"{where}: no tensors")
    for name in tensors:
        try:
            encoded = name.encode("utf-8")      # fails on a lone surrogate from a JSON escape
        except UnicodeEncodeError:
            raise QansError("BAD_METADATA", f"{where}: a tensor name is not valid UTF-8") from None
        if not 1 <= len(encoded) <= MAX_NAME_BYTES:
            raise QansError("BAD_METADATA", f"{where}: a tensor name of {len(encoded)} bytes")
    return ShardRef(file, size, checksum, tensors)
# endregion


# region: trailer
@dataclass
class Trailer:
    index_offset: int
    index_length: int
    file_length: int
    major: int
    minor: int
    checksum: int       # the stored checksum field, which a set file pins for each shard (§16.2)


def read_trailer(source: Source) -> Trailer:
    """§4.2, checks 1 to 6 in order."""
    if source.size < SMALLEST_FILE:
        reject_short_file(source, "the smallest QANS file")
    start = source.size - TRAILER_SIZE
    trailer = source.read(start, TRAILER_SIZE, "trailer")
    if trailer[32:40] != TRAILER_MAGIC:
        if source.read(0, 8, "file magic") == FILE_MAGIC:
            raise QansError("TRUNCATED", "no trailer at the end of the file: the file was cut short")
        raise QansError("BAD_MAGIC", "neither a trailer at the end nor the magic at the start")
    fields = Trailer(u64_at(trailer, 0), u64_at(trailer, 8), u64_at(trailer, 16),
                     u16_at(trailer, 24), u16_at(trailer, 26), u32_at(trailer, 28))
    if fields.major != 1:
        raise QansError("UNSUPPORTED_VERSION", f"trailer at offset {start}: major version {fields.major}")
    if crc32c(trailer[0:28]) != fields.checksum:
        raise QansError("CHECKSUM_MISMATCH", f"trailer at offset {start}: checksum")
    if fields.file_length > source.size:
        raise QansError("TRUNCATED", f"trailer says {fields.file_length} bytes, the file has {source.size}")
    if fields.file_length < source.size:
        raise QansError("TRAILING_DATA", f"trailer says {fields.file_length} bytes, the file has {source.size}")
    if fields.index_offset + fields.index_length + TRAILER_SIZE != fields.file_length:
        raise QansError("OFFSET_OUT_OF_RANGE", f"trailer: index at {fields.index_offset} of "
                                               f"{fields.index_length} bytes does not end at the trailer")
    if fields.index_offset % 64:
        raise QansError("MISALIGNED", f"trailer: index offset {fields.index_offset}")
    if fields.index_length > MAX_INDEX_LENGTH:
        raise QansError("LIMIT_EXCEEDED", f"trailer: index length {fields.index_length}")
    return fields
# endregion


# region: tensor-fields
@dataclass
class TensorFields:
    """The fields a tensor header and its index entry share (§7.1, §11)."""
    name: str
    dtype: str
    encoding: str
    dims: list[int]
    beta: int
    stream_count: int
    element_count: int

    def symbol_count(self) -> int:
        """n_sym of §7.3: every stream of the tensor has this many symbols."""
        if self.encoding == "raw":
            return self.element_count * DTYPES_BY_NAME[self.dtype]
        return self.element_count

    def block_count(self) -> int:
        """n_blk = ceil(n_sym / 2^beta)."""
        return -(-self.symbol_count() // (1 << self.beta))

    def block_counts(self) -> list[int]:
        """The symbol count n of each block j (§7.3)."""
        block_size, n_sym = 1 << self.beta, self.symbol_count()
        return [min(block_size, n_sym - start) for start in range(0, n_sym, block_size)]

    def same_as(self, other: TensorFields) -> bool:
        return (self.name, self.dtype, self.encoding, self.dims, self.beta, self.stream_count) == \
               (other.name, other.dtype, other.encoding, other.dims, other.beta, other.stream_count)


DTYPES_BY_NAME = {name: size for name, size in DTYPES.values()}


def expected_stream_count(encoding: str, dtype: str) -> int:
    if encoding == "raw":
        return 1
    if dtype not in FLOAT_DTYPES:
        raise QansError("BAD_DTYPE", f"{encoding} does not accept dtype {dtype}")
    return len(PLANE_WIDTHS[dtype]) if encoding == "float-planes" else 1


def read_tensor_fields(cursor: Cursor) -> TensorFields:
    """Name through the 3 reserved bytes, each checked as soon as it is read (§7.1 step 4), then
    the stream count for the encoding and dtype."""
    name_length = cursor.u16("name length")
    if name_length == 0:
        raise QansError("BAD_HEADER", f"{cursor.what}: empty tensor name at offset {cursor.offset()}")
    if name_length > MAX_NAME_BYTES:
        raise QansError("LIMIT_EXCEEDED", f"{cursor.what}: name of {name_length} bytes")
    name_offset = cursor.offset()
    name = decode_utf8(cursor.take(name_length, "name"), f"{cursor.what}: tensor name", name_offset)
    dtype_code = cursor.u8("dtype")
    if dtype_code not in DTYPES:
        raise QansError("BAD_DTYPE", f"{cursor.what}: tensor {name!r} has dtype code {dtype_code}")
    encoding_code = cursor.u8("encoding")
    if encoding_code not in ENCODINGS:
        raise QansError("BAD_ENCODING", f"{cursor.what}: tensor {name!r} has encoding code {encoding_code}")
    rank = cursor.u8("rank")
    if rank > MAX_RANK:
        raise QansError("LIMIT_EXCEEDED", f"{cursor.what}: tensor {name!r} has rank {rank}")
    beta = cursor.u8("block size")
    if not 12 <= beta <= 20:
        raise QansError("BAD_HEADER", f"{cursor.what}: tensor {name!r} has block size 2^{beta}")
    # The R dimensions are one field: all of them must fit before any is checked.
    raw_dims = cursor.take(8 * rank, "dimensions")
    dims = [u64_at(raw_dims, 8 * i) for i in range(rank)]
    element_count = checked_element_count(dims, f"{cursor.what}: tensor {name!r}")
    stream_count = cursor.u8("stream count")
    if any(cursor.take(3, "reserved bytes")):
        raise QansError("RESERVED_BITS", f"{cursor.what}: tensor {name!r}: reserved bytes are not zero")
    dtype, encoding = DTYPES[dtype_code][0], ENCODINGS[encoding_code]
    if stream_count != expected_stream_count(encoding, dtype):
        raise QansError("BAD_HEADER", f"{cursor.what}: tensor {name!r} has {stream_count} streams")
    return TensorFields(name, dtype, encoding, dims, beta, stream_count, element_count)


def checked_element_count(dims: list[int], what: str) -> int:
    """§7.1: every dimension and the element count at most 2^48. Python integers do not
    overflow, so this is the exact product: [2^40, 2^40, 0] is a valid empty tensor. A reader
    that multiplies in 64 bits looks for a zero dimension first, then stops at the first running
    product over 2^48, as §7.1 describes."""
    count = 1
    for dim in dims:
        if dim > MAX_ELEMENTS:
            raise QansError("BAD_SHAPE", f"{what}: dimension {dim} is over 2^48")
        count *= dim
    if count > MAX_ELEMENTS:
        raise QansError("BAD_SHAPE", f"{what}: {count} elements, over 2^48")
    return count
# endregion


# region: index
@dataclass
class IndexEntry:
    fields: TensorFields
    frame_offset: int
    header_length: int
    frame_length: int
    payload_lengths: list[int]      # every block, block-major (§7.3)


@dataclass
class Index:
    metadata_length: int
    entries: list[IndexEntry]
    is_set: bool                    # flag SET, which a full verifier compares with the header's


def read_index(source: Source, trailer: Trailer) -> Index:
    """§11, checks in order. The trailer's checks already put the index inside the file."""
    start, length = trailer.index_offset, trailer.index_length
    head = source.read(start, 16, "index frame")
    if head[0:4] != INDEX_TAG:
        raise QansError("BAD_MAGIC", f"index frame at offset {start}: wrong tag")
    flags, body_length = u32_at(head, 4), u64_at(head, 8)
    if flags & ~FLAG_SET:
        raise QansError("RESERVED_BITS", f"index frame at offset {start}: reserved flags are not zero")
    if 20 + body_length != length:
        raise QansError("INDEX_MISMATCH", f"index frame at offset {start}: length {20 + body_length}, "
                                          f"the trailer says {length}")
    frame = source.read(start, length, "index frame")
    if crc32c(frame[0:16 + body_length]) != u32_at(frame, 16 + body_length):
        raise QansError("CHECKSUM_MISMATCH", f"index frame at offset {start}: checksum")
    body = Cursor(frame, 16, 16 + body_length, start, f"index at offset {start}")

    metadata_offset, metadata_length = body.u64("metadata offset"), body.u64("metadata length")
    if metadata_offset != FILE_HEADER_SIZE or FILE_HEADER_SIZE + metadata_length > start:
        raise QansError("OFFSET_OUT_OF_RANGE", f"index: metadata frame at {metadata_offset} "
                                               f"of {metadata_length} bytes")
    tensor_count = body.u64("tensor count")
    if tensor_count > MAX_TENSORS or 31 * tensor_count > body_length - 24:
        raise QansError("LIMIT_EXCEEDED", f"index: {tensor_count} tensors")

    entries, names = [], set()
    expected_offset = align64(FILE_HEADER_SIZE + metadata_length)
    for _ in range(tensor_count):
        entry = read_index_entry(body, names, expected_offset, start)
        expected_offset = align64(entry.frame_offset + entry.frame_length)
        entries.append(entry)
    if body.remaining():
        raise QansError("BAD_HEADER", f"index: {body.remaining()} bytes left after the last entry")
    if start != expected_offset:
        raise QansError("OFFSET_OUT_OF_RANGE", f"index at {start}, expected at {expected_offset}")
    return Index(metadata_length, entries, bool(flags & FLAG_SET))


def read_index_entry(body: Cursor, names: set, expected_offset: int, index_offset: int) -> IndexEntry:
    """One entry: the tensor fields as in §7.1, then its frame's placement, in §11's order."""
    fields = read_tensor_fields(body)
    frame_offset = body.u64("frame offset")
    header_length = body.u32("tensor header length")
    frame_length = body.u64("frame length")
    where = f"index entry of {fields.name!r}"
    if frame_offset >= index_offset or frame_length > index_offset or not 25 <= header_length <= frame_length:
        raise QansError("OFFSET_OUT_OF_RANGE", f"{where}: frame at {frame_offset} of {frame_length} "
                                               f"bytes with a header of {header_length}")
    # Count the blocks before listing them: a shape can declare 2^39 blocks in a small file.
    if 4 * fields.block_count() * fields.stream_count > body.remaining():
        raise QansError("BAD_HEADER", f"{where}: the block lengths do not fit in the index body")
    payload_lengths = []
    for n in fields.block_counts():
        for _ in range(fields.stream_count):
            length = body.u32("block payload length")
            if length > 128 + 2 * n:
                raise QansError("OFFSET_OUT_OF_RANGE", f"{where}: a block of {n} symbols "
                                                       f"with a payload of {length} bytes")
            payload_lengths.append(length)
    if fields.name in names:
        raise QansError("DUPLICATE_NAME", f"{where}: the name appears twice")
    names.add(fields.name)
    if frame_offset % 64:
        raise QansError("MISALIGNED", f"{where}: frame offset {frame_offset}")
    if frame_offset != expected_offset:
        raise QansError("OFFSET_OUT_OF_RANGE", f"{where}: frame at {frame_offset}, expected at {expected_offset}")
    if frame_offset + frame_length > index_offset:
        raise QansError("OFFSET_OUT_OF_RANGE", f"{where}: frame at {frame_offset} of {frame_length} "
                                               f"bytes runs past the index at {index_offset}")
    _, frame_end = place_blocks(frame_offset + header_length, payload_lengths)
    if frame_end - frame_offset != frame_length:
        raise QansError("INDEX_MISMATCH", f"{where}: frame length {frame_length}, "
                                          f"its blocks end {frame_end - frame_offset} bytes in")
    return IndexEntry(fields, frame_offset, header_length, frame_length, payload_lengths)
# endregion


# region: block-placement
def place_blocks(header_end: int, payload_lengths: list[int]) -> tuple[list[int], int]:
    """§9: each 16-byte block header sits so that its payload starts 64-byte aligned.
    Returns the offset of every block header and the end of the last payload."""
    positions, pos = [], header_end
    for length in payload_lengths:
        block_start = align64(pos + 16) - 16
        positions.append(block_start)
        pos = block_start + 16 + length
    return positions, pos
# endregion


# region: tensor-header
@dataclass
class StreamDescriptor:
    width: int
    table: FrequencyTable | None


@dataclass
class TensorHeader:
    fields: TensorFields
    header_length: int
    streams: list[StreamDescriptor]
    params: QuantParams | None


def read_tensor_header(source: Source, offset: int) -> TensorHeader:
    """§7.1, checks in order; the header must be consumed exactly up to its checksum."""
    head = source.read(offset, 8, "tensor header")
    if head[0:4] != TENSOR_TAG:
        raise QansError("BAD_MAGIC", f"tensor header at offset {offset}: wrong tag")
    header_length = u32_at(head, 4)
    if header_length < 25:
        raise QansError("BAD_HEADER", f"tensor header at offset {offset}: length {header_length}")
    if header_length > MAX_TENSOR_HEADER:
        raise QansError("LIMIT_EXCEEDED", f"tensor header at offset {offset}: length {header_length}")
    header = source.read(offset, header_length, "tensor header")
    if crc32c(header[0:header_length - 4]) != u32_at(header, header_length - 4):
        raise QansError("CHECKSUM_MISMATCH", f"tensor header at offset {offset}: checksum")
    cursor = Cursor(header, 8, header_length - 4, offset, f"tensor header at offset {offset}")
    fields = read_tensor_fields(cursor)
    streams = [read_stream_descriptor(cursor, width) for width in stream_widths(fields)]
    params = read_quant_params(cursor, fields, streams[0].width) if fields.encoding == "int-quant" else None
    if cursor.remaining():
        raise QansError("BAD_HEADER", f"tensor header at offset {offset}: "
                                      f"{cursor.remaining()} bytes left before the checksum")
    return TensorHeader(fields, header_length, streams, params)


def stream_widths(fields: TensorFields) -> tuple:
    """§8: the symbol width of each stream. int-quant's single stream has width b, which comes
    in the parameters after the descriptors, so it is checked there (None here)."""
    if fields.encoding == "raw":
        return (8,)
    if fields.encoding == "float-planes":
        return PLANE_WIDTHS[fields.dtype]
    return (None,)


def read_stream_descriptor(cursor: Cursor, expected_width: int | None) -> StreamDescriptor:
    """§7.2. `expected_width` is None for int-quant: the width must be a valid b (2 to 8) here,
    and equal to the b of the parameters (checked there)."""
    width = cursor.u8("symbol width")
    if width not in (range(2, 9) if expected_width is None else (expected_width,)):
        raise QansError("BAD_HEADER", f"{cursor.what}: stream of width {width}, expected {expected_width}")
    table_flag = cursor.u8("table flag")
    if table_flag > 2:
        raise QansError("RESERVED_BITS", f"{cursor.what}: table flag {table_flag}")
    table = None
    if table_flag:
        # A table that runs into the header's checksum breaks §10.3, not only §7.1.
        with cursor.overruns_as("BAD_FREQ_TABLE"):
            table = read_frequency_table(cursor, width, table_flag)
    return StreamDescriptor(width, table)
# endregion


# region: frequency-table
@dataclass
class FrequencyTable:
    k: int
    freq: list[int]         # f[s] for every symbol s < 2^w; 0 when absent
    cum: list[int]          # c[s] = sum of f[t] for t < s
    symbol_at: list[int]    # slot -> the symbol s with c[s] <= slot < c[s] + f[s]


def bad_table(cursor: Cursor, problem: str) -> QansError:
    return QansError("BAD_FREQ_TABLE", f"{cursor.what}: frequency table at offset {cursor.offset()}: {problem}")


def read_varint(cursor: Cursor) -> int:
    """Unsigned LEB128, at most 3 bytes and minimal (§10.3)."""
    value = 0
    for index in range(3):
        byte = cursor.u8("varint")
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if index > 0 and byte == 0:
                raise bad_table(cursor, "a non-minimal varint")
            return value
    raise bad_table(cursor, "a varint longer than 3 bytes")


def read_presence_bitmap(cursor: Cursor, width: int) -> list[int]:
    bitmap = cursor.take((2 ** width + 7) // 8, "presence bitmap")
    present = [s for s in range(8 * len(bitmap)) if bitmap[s // 8] >> (s % 8) & 1]
    if present and present[-1] >= 2 ** width:
        raise bad_table(cursor, "presence bits beyond 2^w")
    return present


def read_presence_runs(cursor: Cursor, width: int) -> list[int]:
    run_count = read_varint(cursor)
    if run_count == 0 or run_count > 2 ** (width - 1):
        raise bad_table(cursor, f"{run_count} runs")
    present, last = [], -1     # the first run starts `gap` symbols after symbol -1
    for run in range(run_count):
        gap, length = read_varint(cursor), read_varint(cursor) + 1
        if run > 0 and gap == 0:
            raise bad_table(cursor, "runs are not maximal (a gap of 0)")
        first = last + 1 + gap
        last = first + length - 1
        if last >= 2 ** width:
            raise bad_table(cursor, f"a run ends at symbol {last}, past 2^w - 1")
        present.extend(range(first, last + 1))
    return present


def read_frequency_table(cursor: Cursor, width: int, table_flag: int) -> FrequencyTable:
    """§10.3: k, presence (bitmap for flag 1, runs for flag 2), then each present frequency."""
    k = cursor.u8("probability scale k")
    if not 10 <= k <= 15:
        raise bad_table(cursor, f"k = {k}")
    present = read_presence_bitmap(cursor, width) if table_flag == 1 else read_presence_runs(cursor, width)
    freq = [0] * 2 ** width
    for s in present:
        f = read_varint(cursor)
        if f == 0 or f >= 1 << k:
            raise bad_table(cursor, f"symbol {s} has frequency {f}")
        freq[s] = f
    if len(present) < 2:
        raise bad_table(cursor, "fewer than 2 present symbols")
    if sum(freq) != 1 << k:
        raise bad_table(cursor, f"frequencies sum to {sum(freq)}, not 2^{k}")
    cum, symbol_at, total = [], [], 0
    for s, f in enumerate(freq):
        cum.append(total)
        symbol_at.extend([s] * f)
        total += f
    return FrequencyTable(k, freq, cum, symbol_at)
# endregion


# region: quant-params
@dataclass
class QuantParams:
    bits: int
    asymmetric: bool
    group_size: int
    rows: int
    cols: int
    groups: int
    deltas: list[float]             # [rows, groups], exact binary32 values
    zero_points: list[int] | None   # [rows, groups], asymmetric only
    channel_scales: list[float] | None  # [cols]


def read_f16(raw: bytes) -> float:
    return struct.unpack("<e", raw)[0]      # exact; NaN and infinity are rejected by the caller


def read_f32(raw: bytes) -> float:
    return struct.unpack("<f", raw)[0]


def read_quant_params(cursor: Cursor, fields: TensorFields, width: int) -> QuantParams:
    """§8.3 encoding parameters, after the stream descriptors."""
    what = f"{cursor.what}: int-quant parameters"
    bits = cursor.u8("bits")
    if not 2 <= bits <= 8 or bits != width:
        raise QansError("BAD_HEADER", f"{what}: b = {bits} for a stream of width {width}")
    flags = cursor.u8("flags")
    if flags & 0xF8:
        raise QansError("RESERVED_BITS", f"{what}: reserved flag bits {flags:#x}")
    if cursor.u16("reserved"):
        raise QansError("RESERVED_BITS", f"{what}: reserved u16 is not zero")
    group_size = cursor.u32("group size")
    if group_size > MAX_GROUP_SIZE:
        raise QansError("BAD_HEADER", f"{what}: group size {group_size}")
    asymmetric, has_channel_scale, f32_scales = bool(flags & 1), bool(flags & 2), bool(flags & 4)

    cols = fields.dims[-1] if fields.dims else 1
    rows = fields.element_count // cols if cols else 0
    groups = 1 if group_size == 0 else -(-cols // group_size)
    scale_size = 4 if f32_scales else 2
    needed = rows * groups * (scale_size + asymmetric) + (4 * cols if has_channel_scale else 0)
    if needed > cursor.remaining():
        raise QansError("BAD_HEADER", f"{what}: {needed} bytes of scales do not fit in the header")

    read_scale = read_f32 if f32_scales else read_f16
    deltas = [read_scale(cursor.take(scale_size, "delta")) for _ in range(rows * groups)]
    if not all(math.isfinite(d) and d >= 0 for d in deltas):
        raise QansError("BAD_HEADER", f"{what}: a delta is negative, infinite or NaN")
    zero_points = None
    if asymmetric:
        zero_points = list(cursor.take(rows * groups, "zero points"))
        if any(z >= 1 << bits for z in zero_points):
            raise QansError("BAD_HEADER", f"{what}: a zero point is not below 2^{bits}")
    channel_scales = None
    if has_channel_scale:
        channel_scales = [read_f32(cursor.take(4, "channel scale")) for _ in range(cols)]
        if not all(math.isfinite(s) and s > 0 for s in channel_scales):
            raise QansError("BAD_HEADER", f"{what}: a per-input-channel scale is not finite and > 0")
    return QuantParams(bits, asymmetric, group_size, rows, cols, groups, deltas, zero_points, channel_scales)
# endregion


# region: block-header
def read_block(source: Source, block_start: int, stream: StreamDescriptor, n: int,
               index_length: int) -> tuple[bytes, int]:
    """§9: one block of n symbols. Returns its symbols (one byte each) and the end of its payload."""
    where = f"block at offset {block_start}"
    header = source.read(block_start, 16, "block header")
    mode, byte1, reserved = header[0], header[1], u16_at(header, 2)
    count, length, checksum = u32_at(header, 4), u32_at(header, 8), u32_at(header, 12)
    # §9: the payload length is compared with the index's before the payload is read or the
    # checksum checked, since it decides which bytes the checksum covers.
    if length != index_length:
        raise QansError("INDEX_MISMATCH", f"{where}: payload of {length} bytes, the index says {index_length}")
    payload = source.read(block_start + 16, length, "block payload")
    if crc32c(header[0:12], payload) != checksum:
        raise QansError("CHECKSUM_MISMATCH", f"{where}: checksum")
    if mode > 2:
        raise QansError("BAD_BLOCK", f"{where}: mode {mode}")
    if reserved or (mode == 0 and byte1):
        raise QansError("RESERVED_BITS", f"{where}: reserved bits are not zero")
    if count != n:
        raise QansError("BAD_BLOCK", f"{where}: {count} symbols, expected {n}")
    if mode == 0:
        symbols = decode_raw_block(payload, n, stream.width, where)
    elif mode == 1:
        symbols = decode_const_block(payload, n, stream.width, byte1, where)
    else:
        symbols = decode_rans_block(payload, n, stream.table, byte1, where)
    return symbols, block_start + 16 + length
# endregion


# region: raw-and-const-blocks
def decode_raw_block(payload: bytes, n: int, width: int, where: str) -> bytes:
    """Symbols bit-packed into a little-endian bit string: symbol i is bits [i*w, (i+1)*w)."""
    if len(payload) != (n * width + 7) // 8:
        raise QansError("BAD_BLOCK", f"{where}: RAW payload of {len(payload)} bytes for {n} symbols")
    if width == 8:
        return bytes(payload)
    used_bits = n * width
    if used_bits % 8 and payload[-1] >> (used_bits % 8):
        raise QansError("NONZERO_PADDING", f"{where}: unused bits after the last RAW symbol")
    symbols, mask = bytearray(n), (1 << width) - 1
    for i in range(n):
        bit = i * width
        pair = payload[bit // 8] | (payload[bit // 8 + 1] << 8 if bit // 8 + 1 < len(payload) else 0)
        symbols[i] = (pair >> (bit % 8)) & mask
    return bytes(symbols)


def decode_const_block(payload: bytes, n: int, width: int, symbol: int, where: str) -> bytes:
    if len(payload) != 0 or symbol >= 1 << width:
        raise QansError("BAD_BLOCK", f"{where}: CONST block with symbol {symbol} "
                                     f"and a payload of {len(payload)} bytes")
    return bytes([symbol]) * n
# endregion


# region: rans-decode
def decode_rans_block(payload: bytes, n: int, table: FrequencyTable | None, lane_code: int,
                      where: str) -> bytes:
    """§10.2: N interleaved lanes; symbol i uses lane i mod N."""
    if table is None:
        raise QansError("BAD_BLOCK", f"{where}: RANS block in a stream without a frequency table")
    if lane_code > 5:
        raise QansError("BAD_BLOCK", f"{where}: lane code {lane_code}")
    lanes = 32 >> lane_code
    size = len(payload)
    if not 4 * lanes <= size <= 4 * lanes + 2 * n or size % 2:
        raise QansError("BAD_BLOCK", f"{where}: RANS payload of {size} bytes for {n} symbols on {lanes} lanes")

    k, freq, cum, symbol_at = table.k, table.freq, table.cum, table.symbol_at
    slot_mask = (1 << k) - 1
    states = [u32_at(payload, 4 * lane) for lane in range(lanes)]
    if not all(RANS_L <= x < RANS_STATE_END for x in states):
        raise QansError("BAD_FINAL_STATE", f"{where}: a stored state is outside [2^15, 2^31)")
    pos = 4 * lanes
    symbols = bytearray(n)
    for i in range(n):
        lane = i % lanes
        x = states[lane]
        slot = x & slot_mask
        s = symbol_at[slot]
        x = freq[s] * (x >> k) + slot - cum[s]
        if x < RANS_L:
            if pos + 2 > size:
                raise QansError("BLOCK_OVERRUN", f"{where}: symbol {i} needs a word beyond the payload")
            x = (x << 16) | u16_at(payload, pos)
            pos += 2
        states[lane] = x
        symbols[i] = s
    if pos != size:
        raise QansError("TRAILING_DATA", f"{where}: {size - pos} bytes of words left over")
    if any(x != RANS_L for x in states):
        raise QansError("BAD_FINAL_STATE", f"{where}: a lane does not end at L = 2^15")
    return bytes(symbols)
# endregion


# region: float-conversions
def binary32(x: float) -> float:
    """Round a Python float (binary64) to the nearest binary32, ties to even, overflowing to
    infinity. struct's 'f' format rounds this way but raises instead of overflowing."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def round_shift(value: int, shift: int) -> int:
    """value / 2^shift rounded to nearest, ties to even."""
    quotient, remainder = value >> shift, value & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if remainder > half or (remainder == half and quotient & 1):
        quotient += 1
    return quotient


def f32_to_f16_bits(bits: int) -> int:
    """binary32 -> binary16, round to nearest even, overflow to infinity (§8.3)."""
    sign = (bits >> 16) & 0x8000
    exponent, mantissa = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    if exponent == 0xFF:
        return sign | 0x7C00 | (0x200 if mantissa else 0) | (mantissa >> 13)
    if exponent == 0:
        return sign             # binary32 subnormals are far below half the least binary16
    significand = mantissa | 0x800000       # value = significand * 2^(exponent - 150)
    half_exponent = exponent - 127 + 15
    if half_exponent <= 0:                  # a binary16 subnormal: units of 2^-24
        result = round_shift(significand, 126 - exponent)
    else:                                   # a carry out of the mantissa bumps the exponent
        result = (half_exponent << 10) + round_shift(significand, 13) - 0x400
    return sign | min(result, 0x7C00)


def f32_to_bf16_bits(bits: int) -> int:
    """binary32 -> bfloat16, round to nearest even, overflow to infinity (§8.3)."""
    if (bits >> 23) & 0xFF == 0xFF and bits & 0x7FFFFF:
        return (bits >> 16) | 0x40          # NaN stays NaN
    return (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16


def f16_to_f32_bits(half: int) -> int:
    """Exact widening; a NaN payload moves to the top of the binary32 mantissa."""
    sign = (half & 0x8000) << 16
    exponent, mantissa = (half >> 10) & 0x1F, half & 0x3FF
    if exponent == 0x1F:
        return sign | 0x7F800000 | (mantissa << 13)
    if exponent == 0:
        if mantissa == 0:
            return sign
        exponent = 1                        # normalise a subnormal
        while not mantissa & 0x400:
            mantissa <<= 1
            exponent -= 1
        mantissa &= 0x3FF
    return sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)


def widen_to_f32(dtype: str, data: bytes) -> bytes:
    """The manifest's f32_sha256 input for F32, F16 and BF16 tensors stored losslessly."""
    if dtype == "F32":
        return data
    halves = struct.unpack(f"<{len(data) // 2}H", data)
    widen = f16_to_f32_bits if dtype == "F16" else (lambda h: h << 16)
    return struct.pack(f"<{len(halves)}I", *map(widen, halves))
# endregion


# region: float-planes
def join_float_planes(dtype: str, planes: list[bytes]) -> bytes:
    """§8.2 inverted: stream 0 is the exponent, then the mantissa from its low byte up, and the
    sign is the top bit of the last stream."""
    if dtype == "BF16":
        exp, low = planes
        values = [((b & 0x80) << 8) | (e << 7) | (b & 0x7F) for e, b in zip(exp, low)]
        return struct.pack(f"<{len(values)}H", *values)
    if dtype == "F16":
        exp, low, top = planes
        values = [((t & 0x4) << 13) | (e << 10) | ((t & 0x3) << 8) | b for e, b, t in zip(exp, low, top)]
        return struct.pack(f"<{len(values)}H", *values)
    exp, byte0, byte1, top = planes
    values = [((t & 0x80) << 24) | (e << 23) | ((t & 0x7F) << 16) | (b1 << 8) | b0
              for e, b0, b1, t in zip(exp, byte0, byte1, top)]
    return struct.pack(f"<{len(values)}I", *values)
# endregion


# region: int-quant
def dequantize(params: QuantParams, symbols: bytes) -> list[float]:
    """§8.3: W = (u - z) * delta / s[j], as exactly these binary32 operations, in this order.
    The product of a small integer and a binary32 value is exact in binary64, so one rounding
    gives the binary32 product; binary64 division then rounding to binary32 is correctly rounded
    (53 >= 2 * 24 + 2), so neither step double-rounds."""
    values = []
    symmetric_zero = 1 << (params.bits - 1)
    for row in range(params.rows):
        for col in range(params.cols):
            group = row * params.groups + (col // params.group_size if params.group_size else 0)
            u = symbols[row * params.cols + col]
            z = params.zero_points[group] if params.asymmetric else symmetric_zero
            a = float(u - z)                            # 1. exact small integer
            d = params.deltas[group]                    # 2. exact from F16 or F32
            p = binary32(a * d)                         # 3. rounded to binary32
            if params.channel_scales is not None:
                p = binary32(p / params.channel_scales[col])   # 4. rounded to binary32
            values.append(p)
    return values


def to_original_dtype(dtype: str, values: list[float]) -> tuple[bytes, bytes]:
    """Returns (the tensor in its original dtype, the binary32 reconstruction)."""
    as_f32 = struct.pack(f"<{len(values)}f", *values)
    if dtype == "F32":
        return as_f32, as_f32
    narrow = f32_to_f16_bits if dtype == "F16" else f32_to_bf16_bits
    bits = struct.unpack(f"<{len(values)}I", as_f32)
    return struct.pack(f"<{len(bits)}H", *map(narrow, bits)), as_f32
# endregion


# region: tensor-frame
@dataclass
class DecodedTensor:
    name: str
    sha256: str
    symbols_sha256: list[str]
    f32_sha256: str | None

    def to_json(self) -> dict:
        result = {"name": self.name, "sha256": self.sha256, "symbols_sha256": self.symbols_sha256}
        if self.f32_sha256 is not None:
            result["f32_sha256"] = self.f32_sha256
        return result


def check_padding(source: Source, start: int, end: int, what: str) -> None:
    if end > start and any(source.read(start, end - start, what)):
        raise QansError("NONZERO_PADDING", f"{what} at offset {start} is not zero")


def read_tensor_frame(source: Source, entry: IndexEntry) -> DecodedTensor:
    """§7: the tensor header, compared with its index entry, then every block in block-major order."""
    header = read_tensor_header(source, entry.frame_offset)
    if not header.fields.same_as(entry.fields) or header.header_length != entry.header_length:
        raise QansError("INDEX_MISMATCH", f"tensor header at offset {entry.frame_offset} "
                                          f"disagrees with its index entry ({entry.fields.name!r})")
    fields, streams = header.fields, header.streams
    decoded = [bytearray() for _ in streams]
    pos = entry.frame_offset + header.header_length
    block_starts, _ = place_blocks(pos, entry.payload_lengths)
    blocks = iter(zip(block_starts, entry.payload_lengths))
    for n in fields.block_counts():
        for stream, out in zip(streams, decoded):
            block_start, index_length = next(blocks)
            check_padding(source, pos, block_start, "padding before a block header")
            symbols, pos = read_block(source, block_start, stream, n, index_length)
            out += symbols
    return reconstruct(fields, header.params, [bytes(symbols) for symbols in decoded])


def reconstruct(fields: TensorFields, params: QuantParams | None, streams: list[bytes]) -> DecodedTensor:
    f32 = None
    if fields.encoding == "raw":
        data = streams[0]
    elif fields.encoding == "float-planes":
        data = join_float_planes(fields.dtype, streams)
    else:
        data, f32 = to_original_dtype(fields.dtype, dequantize(params, streams[0]))
    if f32 is None and fields.dtype in FLOAT_DTYPES:
        f32 = widen_to_f32(fields.dtype, data)
    return DecodedTensor(fields.name, sha256_hex(data), [sha256_hex(s) for s in streams],
                         sha256_hex(f32) if f32 is not None else None)
# endregion


# region: verify-file
@dataclass
class VerifiedFile:
    size: int
    trailer: Trailer
    shards: list[ShardRef] | None      # a set file's shards, else None
    tensors: list[DecodedTensor]


def verify_file(path: str) -> VerifiedFile:
    """A full verifier's order (§12): file header, metadata frame, trailer, index, then every
    tensor frame in file order with the padding between structures."""
    source = Source(path)
    try:
        header = read_file_header(source)
        metadata = read_metadata_frame(source, header.is_set)
        trailer = read_trailer(source)
        index = read_index(source, trailer)
        # The checks that need both ends of the file come after the whole index (§12).
        if (trailer.major, trailer.minor) != (header.major, header.minor):
            raise QansError("INDEX_MISMATCH", f"file header version {header.major}.{header.minor}, "
                                              f"trailer version {trailer.major}.{trailer.minor}")
        if index.metadata_length != metadata.frame_length:
            raise QansError("INDEX_MISMATCH", f"index: metadata length {index.metadata_length}, "
                                              f"the frame is {metadata.frame_length} bytes")
        if index.is_set != header.is_set:
            raise QansError("INDEX_MISMATCH", "index: flag SET differs from the file header's")
        entries = index.entries
        if header.is_set and entries:
            raise QansError("BAD_METADATA", "a set file holds tensor frames")
        tensors, pos = [], FILE_HEADER_SIZE + metadata.frame_length
        for entry in entries:
            check_padding(source, pos, entry.frame_offset, "padding before a tensor frame")
            tensors.append(read_tensor_frame(source, entry))
            pos = entry.frame_offset + entry.frame_length
        check_padding(source, pos, trailer.index_offset, "padding before the index")
        return VerifiedFile(source.size, trailer, metadata.shards, tensors)
    finally:
        source.close()
# endregion


# region: verify-set
def verify_set(set_path: str, set_file: VerifiedFile) -> list[DecodedTensor]:
    """§16.2: every shard as a whole file first, then each shard against the set, in set order."""
    folder = os.path.dirname(set_path)
    shard_files = [verify_file(os.path.join(folder, shard.file)) for shard in set_file.shards]
    tensors = []
    for shard, verified in zip(set_file.shards, shard_files):
        if verified.size != shard.bytes:
            raise QansError("INDEX_MISMATCH", f"shard {shard.file}: {verified.size} bytes, the set says {shard.bytes}")
        if verified.trailer.checksum != shard.trailer_crc32c:
            raise QansError("INDEX_MISMATCH", f"shard {shard.file}: trailer checksum differs from the set's")
        if [t.name for t in verified.tensors] != shard.tensors:
            raise QansError("INDEX_MISMATCH", f"shard {shard.file}: its tensors differ from the set's list")
        tensors.extend(verified.tensors)
    return tensors


def verify_path(path: str) -> list[DecodedTensor]:
    verified = verify_file(path)
    return verify_set(path, verified) if verified.shards is not None else verified.tensors
# endregion


# region: main
def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 qans_decode.py FILE.qans", file=sys.stderr)
        return 2
    try:
        result = {"tensors": [tensor.to_json() for tensor in verify_path(argv[1])]}
    except QansError as error:
        result = {"error": error.code, "message": error.message}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
# endregion
