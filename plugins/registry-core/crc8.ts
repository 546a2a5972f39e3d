/** CRC-8/SMBUS: poly 0x07, init 0x00, no reflection, no final xor. Check value of "123456789" is 0xf4. */

/**
 * The byte-at-a-time table, written out: computing it at load (2,048 steps in the interpreter) was
 * a visible part of `registry config get`'s run. `crc8Bitwise` below is the definition it is
 * tested against (test/core/layout.test.ts).
 */
const TABLE: Uint8Array = Uint8Array.from(
  Buffer.from(
    '00070e091c1b1215383f363124232a2d70777e796c6b6265484f464154535a5d' +
    'e0e7eee9fcfbf2f5d8dfd6d1c4c3cacd90979e998c8b8285a8afa6a1b4b3babd' +
    'c7c0c9cedbdcd5d2fff8f1f6e3e4edeab7b0b9beabaca5a28f88818693949d9a' +
    '2720292e3b3c35321f18111603040d0a5750595e4b4c45426f68616673747d7a' +
    '898e878095929b9cb1b6bfb8adaaa3a4f9fef7f0e5e2ebecc1c6cfc8dddad3d4' +
    '696e676075727b7c51565f584d4a4344191e171005020b0c21262f283d3a3334' +
    '4e49404752555c5b7671787f6a6d64633e39303722252c2b0601080f1a1d1413' +
    'aea9a0a7b2b5bcbb9691989f8a8d8483ded9d0d7c2c5cccbe6e1e8effafdf4f3',
    'hex',
  ),
);

export function crc8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = TABLE[crc ^ bytes[i]];
  return crc;
}

/** The same CRC bit by bit, straight from its definition (the reference for the table). */
export function crc8Bitwise(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i];
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}
