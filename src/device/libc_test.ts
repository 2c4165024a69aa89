import assert from "node:assert/strict";
import {
  addressOf,
  adviseHugePages,
  bufferAddress,
  closeFd,
  copyBytes,
  EAGAIN,
  ErrnoError,
  errnoName,
  IoVecs,
  O_RDWR,
  openFile,
  poll,
  readv,
  writev,
} from "./libc.ts";

Deno.test("errno names and ErrnoError messages", () => {
  assert.equal(errnoName(EAGAIN), "EAGAIN");
  assert.equal(errnoName(9999), "E9999");
  const e = new ErrnoError("Cannot open /x", 2);
  assert.equal(e.message, "Cannot open /x: ENOENT (errno 2)");
  assert.equal(e.code, "ENOENT");
  assert.equal(e.errno, 2);
});

Deno.test("control calls throw an ErrnoError with the errno", () => {
  assert.throws(
    () => openFile("/nonexistent/kgt-device-test", O_RDWR),
    (e) => e instanceof ErrnoError && e.code === "ENOENT",
  );
});

Deno.test("hot-path calls return -errno instead of throwing", () => {
  const iov = new IoVecs(1);
  assert.equal(readv(-1, iov.bytes, 1), -9); // EBADF
  assert.equal(writev(-1, iov.bytes, 1), -9);
  const pfd = new Uint8Array(8);
  new DataView(pfd.buffer).setInt32(0, -1, true); // a negative fd is skipped by poll
  assert.equal(poll(pfd, 1n, 0), 0);
});

Deno.test("IoVecs points readv/writev at a slice of a buffer", () => {
  const fd = openFile("/dev/zero", O_RDWR);
  try {
    const buf = new Uint8Array(64).fill(7);
    const iov = new IoVecs(2);
    iov.set(0, addressOf(buf) + 8, 16);
    assert.equal(readv(fd, iov.bytes, 1), 16);
    assert.deepEqual([...buf.subarray(6, 26)], [7, 7, ...Array(16).fill(0), 7, 7]);
    iov.set(1, addressOf(buf) + 40, 4);
    assert.equal(writev(fd, iov.bytes, 2), 20);
  } finally {
    closeFd(fd);
  }
});

Deno.test("copyBytes copies between a buffer and a SharedArrayBuffer at remembered addresses", () => {
  const shared = new Uint8Array(new SharedArrayBuffer(4096));
  const plain = new Uint8Array(3000).map((_, i) => i * 13);
  assert.equal(bufferAddress(plain), addressOf(plain));
  assert.equal(bufferAddress(plain), bufferAddress(plain), "remembered");
  copyBytes(bufferAddress(shared) + 100, bufferAddress(plain) + 7, 2000);
  assert.deepEqual(shared.subarray(100, 2100), plain.subarray(7, 2007));
  assert.equal(shared[99], 0);
  assert.equal(shared[2100], 0);
  const back = new Uint8Array(2000);
  copyBytes(bufferAddress(back), bufferAddress(shared) + 100, 2000);
  assert.deepEqual(back, plain.subarray(7, 2007));
});

Deno.test("adviseHugePages backs a large shared buffer with huge pages where THP allows it", () => {
  assert.equal(adviseHugePages(new SharedArrayBuffer(1 << 20)), false, "below two huge pages");
  const thp = Deno.readTextFileSync("/sys/kernel/mm/transparent_hugepage/enabled");
  const bytes = 16 << 20;
  const buf = new SharedArrayBuffer(bytes, { maxByteLength: bytes });
  const advised = adviseHugePages(buf);
  if (!thp.includes("[never]")) assert.ok(advised, thp);
  const view = new Uint8Array(buf);
  for (let i = 0; i < bytes; i += 4096) view[i] = 1; // the advice changes nothing a reader sees
  assert.equal(view.reduce((a, b) => a + b, 0), bytes / 4096);
});
