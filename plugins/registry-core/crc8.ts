/** CRC-8/SMBUS: poly 0x07, init 0x00, no reflection, no final xor. Check value of "123456789" is 0xf4. */
const TABLE = buildTable();

function buildTable(): Uint8Array {
  const table = new Uint8Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    table[n] = crc;
  }
  return table;
}

export function crc8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = TABLE[crc ^ bytes[i]];
  return crc;
}
