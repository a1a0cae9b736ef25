// Spool records' hot work, in C: the socket thread spent half its time on two things here.
//
// Checksums. Every record carries the CRC-32 (zlib's) of its body, computed on the socket thread as it
// is encoded. In JavaScript (slicing by 8) that is ~0.85 ns a byte, ~170 ns for a 200-byte message:
// with a 1.6 M msgs/s burst it was the largest single cost of reading a socket. Here the records of a
// whole buffer are sealed in one call, just before the buffer is written to a segment or posted to the
// journal worker: one crossing into C per 256 KiB instead of one per record, and a checksum by
// carry-less multiplication (PCLMULQDQ) where the CPU has it, a byte table where it does not.
//
// Message copies. Buffer.copy of a range takes a Uint8Array view of it on Node 20 (one allocation per
// message, then garbage), ~75 ns a message plus the collections. The encoder instead writes each
// record's header and notes where its message goes; one call per socket read copies them all.
//
// seal(buf, from, to): buf[from, to) holds whole records, each ending in LF (record bodies never hold a
// raw LF: spool/record.ts escapes it), each with 9 bytes reserved at its start for "CRC32 SP". Writes
// the 8 hex digits of each; returns how many records it sealed.
// copyRanges(src, dst, ranges, n): for each of n (dstOff, srcStart, srcEnd) triples in the Int32Array
// `ranges`, copies src[srcStart, srcEnd) to dst[dstOff]. Every range is checked before anything is copied.
// crc32(buf, start, end): the CRC-32 of buf[start, end), as zlib.crc32 computes it.
// alignOffset(buf, align): how many bytes into buf the first address that is a multiple of `align` (a
// power of two) lies. O_DIRECT I/O (spool/writer.ts, spool/reader.ts) needs aligned memory, and an
// ArrayBuffer's bytes never move, so an aligned view of a slightly larger buffer stays aligned.

#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_PCLMUL_PATH 1
#endif

static uint32_t table[8][256];
#ifdef HAVE_PCLMUL_PATH
static int use_pclmul;
#endif

static void init_tables(void) {
#ifdef HAVE_PCLMUL_PATH
  __builtin_cpu_init();
  use_pclmul = __builtin_cpu_supports("pclmul");
#endif
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[0][n] = c;
  }
  for (int n = 0; n < 256; n++)
    for (int k = 1; k < 8; k++) table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
}

// The CRC register after p[0, n), from register c (neither inverted at the start nor at the end).
static uint32_t crc_bytes(uint32_t c, const uint8_t* p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    c = table[7][a & 0xff] ^ table[6][(a >> 8) & 0xff] ^ table[5][(a >> 16) & 0xff] ^ table[4][a >> 24] ^
        table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
  }
  while (n--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

#ifdef HAVE_PCLMUL_PATH
// Folding, after Gopal et al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ" (Intel,
// 2009), in the bit-reflected form zlib's CRC uses. A 16-byte register holds part of the message whose
// value mod P equals that of what it stands for. A fold multiplies the register's two halves by
// x^(d+32) and x^(d-32) mod P (bit-reflected, shifted left by one) and adds the result to the 16 bytes
// d bits further on. Four registers fold by 512 bits each, side by side (the multiplications of one do
// not wait for another's), then fold into one by 128 bits; the last 16 bytes of the register and the
// tail (< 16 bytes) go through the byte table from register 0: the register already stands for the
// message before it, start value included. The constants are checked against zlib by
// test/spool/crc32.test.ts, on every length around the 16- and 64-byte steps.
#define FOLD(x, k, next) \
  _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next)

__attribute__((target("pclmul,sse2"))) static uint32_t crc_fold(uint32_t c, const uint8_t* p, size_t n) {
  const __m128i k512 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);  // x^(512-32), x^(512+32)
  const __m128i k128 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);  // x^(128-32), x^(128+32)
  __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i*)p), _mm_cvtsi32_si128((int)c));
  p += 16;
  n -= 16;
  if (n >= 112) {
    __m128i x1 = _mm_loadu_si128((const __m128i*)p);
    __m128i x2 = _mm_loadu_si128((const __m128i*)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i*)(p + 32));
    p += 48;
    n -= 48;
    for (; n >= 64; p += 64, n -= 64) {
      x = FOLD(x, k512, _mm_loadu_si128((const __m128i*)p));
      x1 = FOLD(x1, k512, _mm_loadu_si128((const __m128i*)(p + 16)));
      x2 = FOLD(x2, k512, _mm_loadu_si128((const __m128i*)(p + 32)));
      x3 = FOLD(x3, k512, _mm_loadu_si128((const __m128i*)(p + 48)));
    }
    x = FOLD(FOLD(FOLD(x, k128, x1), k128, x2), k128, x3);
  }
  for (; n >= 16; p += 16, n -= 16) x = FOLD(x, k128, _mm_loadu_si128((const __m128i*)p));
  uint8_t last[16];
  _mm_storeu_si128((__m128i*)last, x);
  return crc_bytes(crc_bytes(0, last, 16), p, n);
}
#endif

static uint32_t crc32_of(const uint8_t* p, size_t n) {
#ifdef HAVE_PCLMUL_PATH
  // Below 32 bytes folding has nothing to fold: the table is as fast.
  if (use_pclmul && n >= 32) return ~crc_fold(0xffffffffu, p, n);
#endif
  return ~crc_bytes(0xffffffffu, p, n);
}

static const uint8_t kHex[] = "0123456789abcdef";

static napi_value throw_range(napi_env env, const char* msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

// Reads (buf, a, b) with a <= b <= buf.length.
static int range_args(napi_env env, napi_callback_info info, uint8_t** data, uint32_t* a, uint32_t* b) {
  size_t argc = 3;
  napi_value argv[3];
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return 0;
  if (napi_get_buffer_info(env, argv[0], (void**)data, &len) != napi_ok) return 0;
  if (napi_get_value_uint32(env, argv[1], a) != napi_ok) return 0;
  if (napi_get_value_uint32(env, argv[2], b) != napi_ok) return 0;
  return *a <= *b && *b <= len;
}

static napi_value Seal(napi_env env, napi_callback_info info) {
  uint8_t* data;
  uint32_t from, to;
  if (!range_args(env, info, &data, &from, &to)) return throw_range(env, "seal(buf, from, to): bad range");
  uint32_t count = 0;
  size_t p = from;
  while (p < to) {
    // The 8 bytes the checksum goes into may hold anything yet, an LF included: the search starts after.
    const uint8_t* lf = to - p > 9 ? memchr(data + p + 9, '\n', to - p - 9) : NULL;
    if (lf == NULL) return throw_range(env, "seal: the range does not end in a whole record");
    size_t end = (size_t)(lf - data);
    uint32_t v = crc32_of(data + p + 9, end - p - 9);
    for (int i = 7; i >= 0; i--, v >>= 4) data[p + i] = kHex[v & 15];
    p = end + 1;
    count++;
  }
  napi_value out;
  napi_create_uint32(env, count, &out);
  return out;
}

static napi_value Crc32(napi_env env, napi_callback_info info) {
  uint8_t* data;
  uint32_t start, end;
  if (!range_args(env, info, &data, &start, &end))
    return throw_range(env, "crc32(buf, start, end): bad range");
  napi_value out;
  napi_create_uint32(env, crc32_of(data + start, end - start), &out);
  return out;
}

static napi_value CopyRanges(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint8_t *src, *dst;
  size_t srcLen = 0, dstLen = 0, rangesLen = 0;
  void* rangesData;
  napi_typedarray_type type;
  uint32_t n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_buffer_info(env, argv[0], (void**)&src, &srcLen) != napi_ok ||
      napi_get_buffer_info(env, argv[1], (void**)&dst, &dstLen) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &rangesLen, &rangesData, NULL, NULL) != napi_ok ||
      type != napi_int32_array || napi_get_value_uint32(env, argv[3], &n) != napi_ok ||
      (size_t)n * 3 > rangesLen)
    return throw_range(env, "copyRanges(src, dst, ranges, n): bad arguments");
  const int32_t* r = rangesData;
  for (uint32_t i = 0; i < n; i++, r += 3) {
    if (r[0] < 0 || r[1] < 0 || r[1] > r[2] || (size_t)r[2] > srcLen ||
        (size_t)r[0] + (size_t)(r[2] - r[1]) > dstLen)
      return throw_range(env, "copyRanges: a range lies outside its buffer");
  }
  r = rangesData;
  // memmove: nothing here shares a buffer, but a caller that did would get a copy, not garbage.
  for (uint32_t i = 0; i < n; i++, r += 3) memmove(dst + r[0], src + r[1], (size_t)(r[2] - r[1]));
  return NULL;
}

static napi_value AlignOffset(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint8_t* data;
  size_t len = 0;
  uint32_t align;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_buffer_info(env, argv[0], (void**)&data, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &align) != napi_ok || align == 0 || (align & (align - 1)) != 0)
    return throw_range(env, "alignOffset(buf, align): align must be a power of two");
  napi_value out;
  napi_create_uint32(env, (uint32_t)((align - (uintptr_t)data % align) % align), &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  // Once per process: the journal worker's thread loads this module too.
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_tables);
  napi_value f;
  napi_create_function(env, "seal", NAPI_AUTO_LENGTH, Seal, NULL, &f);
  napi_set_named_property(env, exports, "seal", f);
  napi_create_function(env, "copyRanges", NAPI_AUTO_LENGTH, CopyRanges, NULL, &f);
  napi_set_named_property(env, exports, "copyRanges", f);
  napi_create_function(env, "crc32", NAPI_AUTO_LENGTH, Crc32, NULL, &f);
  napi_set_named_property(env, exports, "crc32", f);
  napi_create_function(env, "alignOffset", NAPI_AUTO_LENGTH, AlignOffset, NULL, &f);
  napi_set_named_property(env, exports, "alignOffset", f);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
