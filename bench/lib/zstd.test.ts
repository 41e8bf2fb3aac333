import { describe, expect, it } from "vitest";
import { parseZstdBench } from "./zstd.js";

// Captured from zstd v1.5.4 on this project's machines.
const QUIET = "bench 1.5.4 : input 2701756 bytes, 1 seconds, 0 KB blocks\n-19     2037463 (1.326)   2.43 MB/s 1062.0 MB/s  zt.bin\n";
const VERBOSE =
  "Loading /tmp/zt.bin...       \r\r                                                                      \r" +
  " |-zt.bin            :   2701756 -> \r" +
  " |-zt.bin            :   2701756 ->   2036447 (x1.327),  229.9 MB/s \r" +
  " |-zt.bin            :   2701756 ->   2036447 (x1.327),  229.9 MB/s,  516.8 MB/s \r" +
  " =-zt.bin            :   2701756 ->   2036447 (x1.327),  329.0 MB/s,  690.9 MB/s\r" +
  " 3#zt.bin            :   2701756 ->   2036447 (x1.327),  335.1 MB/s,  701.2 MB/s \n";

describe("parseZstdBench", () => {
  it("reads the quiet one-line result", () => {
    expect(parseZstdBench(QUIET)).toEqual({
      level: 19,
      sourceBytes: null,
      compressedBytes: 2037463,
      ratio: 1.326,
      compressMBps: 2.43,
      decompressMBps: 1062.0,
    });
  });

  it("reads the last redrawn result of the default display", () => {
    expect(parseZstdBench(VERBOSE)).toEqual({
      level: 3,
      sourceBytes: 2701756,
      compressedBytes: 2036447,
      ratio: 1.327,
      compressMBps: 335.1,
      decompressMBps: 701.2,
    });
  });

  it("skips drawings that have only the compression speed", () => {
    const partial = " |-zt.bin            :   2701756 ->   2036447 (x1.327),  229.9 MB/s \r";
    expect(parseZstdBench(partial)).toBeNull();
  });

  it("returns null for output without a result", () => {
    expect(parseZstdBench("zstd: error 1 : cannot open file\n")).toBeNull();
  });
});
