// Incremental MD5 (RFC 1321), for the Uploads API's `md5` check: the browser's Web Crypto has
// no MD5. update() takes Uint8Arrays in order; hex() finishes.
const S = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
  14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15,
  21, 6, 10, 15, 21,
];
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);

export class Md5 {
  constructor() {
    this.state = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
    this.block = new Uint8Array(64);
    this.blockLength = 0;
    this.bytes = 0;
    this.words = new Uint32Array(16);
  }

  update(data) {
    this.bytes += data.length;
    let i = 0;
    while (i < data.length) {
      const n = Math.min(64 - this.blockLength, data.length - i);
      this.block.set(data.subarray(i, i + n), this.blockLength);
      this.blockLength += n;
      i += n;
      if (this.blockLength === 64) {
        this.compress();
        this.blockLength = 0;
      }
    }
    return this;
  }

  compress() {
    const w = this.words;
    const b = this.block;
    for (let i = 0; i < 16; i++)
      w[i] = b[i * 4] | (b[i * 4 + 1] << 8) | (b[i * 4 + 2] << 16) | (b[i * 4 + 3] << 24);
    let [a0, b0, c0, d0] = this.state;
    for (let i = 0; i < 64; i++) {
      let f;
      let g;
      if (i < 16) {
        f = (b0 & c0) | (~b0 & d0);
        g = i;
      } else if (i < 32) {
        f = (d0 & b0) | (~d0 & c0);
        g = (5 * i + 1) % 16;
      } else if (i < 48) {
        f = b0 ^ c0 ^ d0;
        g = (3 * i + 5) % 16;
      } else {
        f = c0 ^ (b0 | ~d0);
        g = (7 * i) % 16;
      }
      const sum = (a0 + f + K[i] + w[g]) >>> 0;
      a0 = d0;
      d0 = c0;
      c0 = b0;
      b0 = (b0 + ((sum << S[i]) | (sum >>> (32 - S[i])))) >>> 0;
    }
    this.state[0] += a0;
    this.state[1] += b0;
    this.state[2] += c0;
    this.state[3] += d0;
  }

  hex() {
    const bits = this.bytes * 8;
    const pad = new Uint8Array((this.blockLength < 56 ? 56 : 120) - this.blockLength + 8);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, bits >>> 0, true);
    view.setUint32(pad.length - 4, Math.floor(bits / 2 ** 32), true);
    this.update(pad);
    let out = "";
    for (const word of this.state) {
      for (let i = 0; i < 4; i++) out += ((word >>> (i * 8)) & 0xff).toString(16).padStart(2, "0");
    }
    return out;
  }
}
