/*
 * JSON decoding and encoding for cloudflare.core (RFC 8259).
 *
 * Every allocation belongs to Lua. Scratch memory is a userdata anchored
 * in a fixed stack slot and replaced by a larger one when it grows, so a
 * memory error raised half-way leaks nothing. The decoder is a loop that
 * keeps its open containers on the Lua stack, so deeply nested input
 * cannot overflow the C stack. The encoder recurses, but never deeper
 * than ENCODE_MAX_DEPTH tables.
 */
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "core.h"

#define DECODE_DEFAULT_DEPTH 512
#define ENCODE_MAX_DEPTH 100

/* Initial size in bytes of a scratch buffer, which doubles as needed. */
#define SCRATCH_MIN 256

/* Integral floats below this magnitude (2^53) are written as integers. */
#define EXACT_INTEGER_LIMIT 9007199254740992.0

/*
 * Maximum length of number text converted in a C array. Longer text is
 * copied to a userdata.
 */
#define NUMBER_TEXT_MAX 64

/* Maximum key length, in bytes, quoted in full in an encoder error path. */
#define PATH_KEY_MAX 24

/* Encoder paths longer than this many bytes are shortened in messages. */
#define PATH_TEXT_MAX 96

/* ---------------------------------------------------------------------- */
/* Scratch buffer                                                         */
/* ---------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  int slot;    /* stack index of the userdata that owns data */
  char *data;
  size_t len;
  size_t cap;
} scratch;

/* The caller reserves stack index `slot` (any value) for the buffer. */
static void scratch_init(scratch *b, lua_State *L, int slot) {
  b->L = L;
  b->slot = slot;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

static void scratch_reserve(scratch *b, size_t extra) {
  size_t need;
  size_t cap;
  char *data;

  if (b->cap - b->len >= extra)
    return;
  if (extra > (size_t)-1 - b->len)
    luaL_error(b->L, "not enough memory");
  need = b->len + extra;
  cap = b->cap ? b->cap : SCRATCH_MIN;
  while (cap < need)
    cap = cap > (size_t)-1 / 2 ? need : cap * 2;

  data = (char *)lua_newuserdata(b->L, cap);
  if (b->len > 0)
    memcpy(data, b->data, b->len);
  lua_replace(b->L, b->slot);
  b->data = data;
  b->cap = cap;
}

static void scratch_add(scratch *b, const char *s, size_t n) {
  if (n == 0)
    return;
  scratch_reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static void scratch_addchar(scratch *b, char c) {
  scratch_reserve(b, 1);
  b->data[b->len++] = c;
}

/* ---------------------------------------------------------------------- */
/* Shared helpers                                                         */
/* ---------------------------------------------------------------------- */

/*
 * Return the length of the well-formed UTF-8 sequence at p, or 0 when the
 * bytes are not one (overlong forms, surrogates, code points above
 * U+10FFFF, stray continuation bytes and sequences cut short by `avail`).
 */
static size_t utf8_sequence_length(const unsigned char *p, size_t avail) {
  unsigned char c = p[0];
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  size_t n;
  size_t i;

  if (c < 0x80)
    return 1;
  if (c < 0xC2)
    return 0;
  if (c < 0xE0) {
    n = 2;
  } else if (c < 0xF0) {
    n = 3;
    if (c == 0xE0)
      low = 0xA0;
    else if (c == 0xED)
      high = 0x9F;
  } else if (c < 0xF5) {
    n = 4;
    if (c == 0xF0)
      low = 0x90;
    else if (c == 0xF4)
      high = 0x8F;
  } else {
    return 0;
  }

  if (avail < n || p[1] < low || p[1] > high)
    return 0;
  for (i = 2; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  }
  return n;
}

static int is_digit(int c) {
  return c >= '0' && c <= '9';
}

/*
 * Copy the number text s[0..n) to out (of n + strlen(decimal point) + 1
 * bytes) with '.' replaced by the C locale's decimal point, which strtod
 * expects.
 */
static void copy_with_locale_point(char *out, const char *s, size_t n) {
  const char *point = localeconv()->decimal_point;
  size_t point_len = strlen(point);
  size_t i;

  for (i = 0; i < n; i++) {
    if (s[i] == '.' && point_len > 0) {
      memcpy(out, point, point_len);
      out += point_len;
    } else {
      *out++ = s[i];
    }
  }
  *out = '\0';
}

/* Replace the C locale's decimal point in s by '.', in place. */
static void use_json_point(char *s) {
  const char *point = localeconv()->decimal_point;
  size_t point_len = strlen(point);
  char *found;

  if (point_len == 0 || (point_len == 1 && point[0] == '.'))
    return;
  found = strstr(s, point);
  if (found == NULL)
    return;
  *found = '.';
  memmove(found + 1, found + point_len, strlen(found + point_len) + 1);
}

/* ---------------------------------------------------------------------- */
/* Decoder                                                                */
/* ---------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  const unsigned char *s;
  size_t len;
  size_t pos;                /* 0-based offset of the next byte to read */
  lua_Integer max_depth;
  lua_Integer depth;         /* number of arrays and objects now open */
  scratch buf;               /* unescaped string contents */
  char message[160];
} decoder;

/* Results of decode_value and decode_close. */
#define DECODE_ERROR (-1)
#define DECODE_FINISHED 0
#define DECODE_VALUE 1       /* a whole value is on top of the stack */
#define DECODE_OPENED 2      /* a container opened, an element follows */
#define DECODE_NEXT 3        /* a container expects its next element */

/* Format the message for an error at 0-based offset pos. */
static int decode_fail(decoder *d, size_t pos, const char *fmt, ...) {
  char reason[96];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  snprintf(d->message, sizeof d->message, "invalid JSON at byte %llu: %s",
           (unsigned long long)pos + 1, reason);
  return DECODE_ERROR;
}

/* Report the byte at d->pos, or the end of input, as unexpected. */
static int decode_fail_unexpected(decoder *d, const char *context) {
  int c;

  if (d->pos >= d->len)
    return decode_fail(d, d->pos, "unexpected end of input");
  c = d->s[d->pos];
  if (c == '\'')
    return decode_fail(d, d->pos, "unexpected character \"'\"%s", context);
  if (c > 0x20 && c < 0x7F)
    return decode_fail(d, d->pos, "unexpected character '%c'%s", c,
                       context);
  return decode_fail(d, d->pos, "unexpected byte 0x%02X%s", c, context);
}

/* Report the end of input, or else `expected`, at d->pos. */
static int decode_fail_expected(decoder *d, const char *expected) {
  if (d->pos >= d->len)
    return decode_fail(d, d->pos, "unexpected end of input");
  return decode_fail(d, d->pos, "expected %s", expected);
}

static void skip_whitespace(decoder *d) {
  while (d->pos < d->len) {
    unsigned char c = d->s[d->pos];

    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    d->pos++;
  }
}

static int hex_value(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Read "\uXXXX" at offset pos. Return the code unit, or -1 if malformed. */
static long read_u_escape(const decoder *d, size_t pos) {
  long unit = 0;
  int i;

  if (d->len - pos < 6 || d->s[pos] != '\\' || d->s[pos + 1] != 'u')
    return -1;
  for (i = 2; i < 6; i++) {
    int digit = hex_value(d->s[pos + i]);

    if (digit < 0)
      return -1;
    unit = unit * 16 + digit;
  }
  return unit;
}

static void add_utf8(scratch *b, unsigned long cp) {
  char out[4];
  size_t n;

  if (cp < 0x80) {
    out[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  scratch_add(b, out, n);
}

/*
 * Decode the escape sequence at d->pos (a backslash) into d->buf and move
 * past it.
 */
static int decode_escape(decoder *d) {
  size_t start = d->pos;
  long unit;
  long low;
  char c;

  if (d->len - start < 2)
    return decode_fail(d, d->len, "unexpected end of input");
  switch (d->s[start + 1]) {
  case '"': c = '"'; break;
  case '\\': c = '\\'; break;
  case '/': c = '/'; break;
  case 'b': c = '\b'; break;
  case 'f': c = '\f'; break;
  case 'n': c = '\n'; break;
  case 'r': c = '\r'; break;
  case 't': c = '\t'; break;
  case 'u': c = 0; break;
  default:
    return decode_fail(d, start, "invalid escape sequence in string");
  }
  if (c != 0) {
    scratch_addchar(&d->buf, c);
    d->pos += 2;
    return 0;
  }

  unit = read_u_escape(d, start);
  if (unit < 0)
    return decode_fail(d, start, "invalid \\u escape, expected 4 hex digits");
  if (unit >= 0xDC00 && unit <= 0xDFFF)
    return decode_fail(d, start, "lone surrogate \\u%04lX in string", unit);
  if (unit < 0xD800 || unit > 0xDBFF) {
    add_utf8(&d->buf, (unsigned long)unit);
    d->pos += 6;
    return 0;
  }

  /* A high surrogate must be followed at once by a low surrogate. */
  low = read_u_escape(d, start + 6);
  if (low < 0xDC00 || low > 0xDFFF)
    return decode_fail(d, start, "lone surrogate \\u%04lX in string", unit);
  add_utf8(&d->buf,
           0x10000UL + (((unsigned long)unit - 0xD800) << 10) +
               ((unsigned long)low - 0xDC00));
  d->pos += 12;
  return 0;
}

/*
 * Check the raw string byte at d->pos and move past it and any
 * continuation bytes. Stop at a quote or backslash (return 1) or on an
 * error.
 */
static int scan_string_byte(decoder *d) {
  unsigned char c;
  size_t n;

  if (d->pos >= d->len)
    return decode_fail(d, d->len, "unexpected end of input in string");
  c = d->s[d->pos];
  if (c == '"' || c == '\\')
    return 1;
  if (c < 0x20)
    return decode_fail(d, d->pos,
                       "unescaped control character 0x%02X in string", c);
  n = utf8_sequence_length(d->s + d->pos, d->len - d->pos);
  if (n == 0)
    return decode_fail(d, d->pos, "invalid UTF-8 in string");
  d->pos += n;
  return 0;
}

/* Push the string that starts at d->pos (a quote) and move past it. */
static int decode_string(decoder *d) {
  size_t start = ++d->pos;
  size_t run;
  int r;

  /* Strings without escapes are pushed straight from the input. */
  while ((r = scan_string_byte(d)) == 0)
    continue;
  if (r < 0)
    return DECODE_ERROR;
  if (d->s[d->pos] == '"') {
    lua_pushlstring(d->L, (const char *)d->s + start, d->pos - start);
    d->pos++;
    return 0;
  }

  d->buf.len = 0;
  scratch_add(&d->buf, (const char *)d->s + start, d->pos - start);
  for (;;) {
    if (d->s[d->pos] == '"')
      break;
    if (decode_escape(d) < 0)
      return DECODE_ERROR;
    run = d->pos;
    while ((r = scan_string_byte(d)) == 0)
      continue;
    if (r < 0)
      return DECODE_ERROR;
    scratch_add(&d->buf, (const char *)d->s + run, d->pos - run);
  }
  lua_pushlstring(d->L, d->buf.data, d->buf.len);
  d->pos++;
  return 0;
}

#if LUA_VERSION_NUM >= 503
/*
 * Push the decimal digits s[start..end) as an integer, negated if `negative`.
 * Return 0 without pushing when the value does not fit a lua_Integer.
 */
static int push_integer(decoder *d, size_t start, size_t end, int negative) {
  unsigned long long limit = (unsigned long long)LUA_MAXINTEGER;
  unsigned long long value = 0;
  size_t i;

  if (negative)
    limit += 1;
  for (i = start; i < end; i++) {
    unsigned digit = (unsigned)(d->s[i] - '0');

    if (value > (limit - digit) / 10)
      return 0;
    value = value * 10 + digit;
  }

  if (!negative)
    lua_pushinteger(d->L, (lua_Integer)value);
  else if (value == 0)
    lua_pushinteger(d->L, 0);
  else
    lua_pushinteger(d->L, -(lua_Integer)(value - 1) - 1);
  return 1;
}
#endif

/* Push the number text s[start..end), already checked, as a float. */
static int push_float(decoder *d, size_t start, size_t end) {
  size_t n = end - start;
  size_t size = n + strlen(localeconv()->decimal_point) + 1;
  char small[NUMBER_TEXT_MAX + 8];
  char *text = small;
  double value;

  if (size > sizeof small)
    text = (char *)lua_newuserdata(d->L, size);
  copy_with_locale_point(text, (const char *)d->s + start, n);
  value = strtod(text, NULL);
  if (text != small)
    lua_pop(d->L, 1);

  /*
   * RFC 8259 lets a parser limit the range of numbers. Rejecting values
   * beyond the double range keeps infinity out of decoded data, which the
   * encoder could not write back.
   */
  if (isinf(value))
    return decode_fail(d, start, "number out of range");
  lua_pushnumber(d->L, (lua_Number)value);
  return 0;
}

/* Push the number at d->pos and move past it. */
static int decode_number(decoder *d) {
  const unsigned char *s = d->s;
  size_t start = d->pos;
  size_t p = start;
  int negative = 0;
  int integral = 1;

  if (s[p] == '-') {
    negative = 1;
    p++;
  }
  if (p >= d->len || !is_digit(s[p])) {
    d->pos = p;
    return decode_fail_expected(d, "digit after '-'");
  }
  if (s[p] == '0') {
    p++;
    if (p < d->len && is_digit(s[p]))
      return decode_fail(d, start, "leading zeros are not allowed");
  } else {
    while (p < d->len && is_digit(s[p]))
      p++;
  }

  if (p < d->len && s[p] == '.') {
    integral = 0;
    p++;
    if (p >= d->len || !is_digit(s[p])) {
      d->pos = p;
      return decode_fail_expected(d, "digit after '.'");
    }
    while (p < d->len && is_digit(s[p]))
      p++;
  }

  if (p < d->len && (s[p] == 'e' || s[p] == 'E')) {
    integral = 0;
    p++;
    if (p < d->len && (s[p] == '+' || s[p] == '-'))
      p++;
    if (p >= d->len || !is_digit(s[p])) {
      d->pos = p;
      return decode_fail_expected(d, "digit in exponent");
    }
    while (p < d->len && is_digit(s[p]))
      p++;
  }

  d->pos = p;
#if LUA_VERSION_NUM >= 503
  if (integral && push_integer(d, start + negative, p, negative))
    return 0;
#else
  (void)integral;
  (void)negative;
#endif
  return push_float(d, start, p);
}

/* Check that the literal `word` is at d->pos and move past it. */
static int expect_literal(decoder *d, const char *word) {
  size_t n = strlen(word);

  if (d->len - d->pos < n || memcmp(d->s + d->pos, word, n) != 0)
    return decode_fail(d, d->pos, "invalid literal, expected '%s'", word);
  d->pos += n;
  return 0;
}

/* Push an object key and move past the ':' that must follow it. */
static int decode_key(decoder *d) {
  if (d->pos >= d->len || d->s[d->pos] != '"')
    return decode_fail_expected(d, "string key");
  if (decode_string(d) < 0)
    return DECODE_ERROR;
  skip_whitespace(d);
  if (d->pos >= d->len || d->s[d->pos] != ':')
    return decode_fail_expected(d, "':' after object key");
  d->pos++;
  return 0;
}

/* Count one more level of nesting and make room for it on the Lua stack. */
static int open_container(decoder *d) {
  if (d->depth >= d->max_depth)
    return decode_fail(d, d->pos, "nesting deeper than %lld level%s",
                       (long long)d->max_depth, d->max_depth == 1 ? "" : "s");
  if (!lua_checkstack(d->L, 4))
    return decode_fail(d, d->pos, "nesting too deep for the Lua stack");
  d->depth++;
  lua_newtable(d->L);
  d->pos++;
  skip_whitespace(d);
  return 0;
}

/*
 * Parse the value at d->pos. Scalars and empty containers are pushed whole.
 * A non-empty array pushes its table and an element count. A non-empty
 * object pushes its table and its first key.
 */
static int decode_value(decoder *d) {
  lua_State *L = d->L;
  int r = 0;

  skip_whitespace(d);
  if (d->pos >= d->len)
    return decode_fail_unexpected(d, "");

  switch (d->s[d->pos]) {
  case '[':
    if (open_container(d) < 0)
      return DECODE_ERROR;
    if (d->pos < d->len && d->s[d->pos] == ']') {
      d->pos++;
      d->depth--;
      return DECODE_VALUE;
    }
    lua_pushinteger(L, 0);
    return DECODE_OPENED;
  case '{':
    if (open_container(d) < 0)
      return DECODE_ERROR;
    if (d->pos < d->len && d->s[d->pos] == '}') {
      d->pos++;
      d->depth--;
      return DECODE_VALUE;
    }
    if (d->pos < d->len && d->s[d->pos] != '"')
      return decode_fail(d, d->pos, "expected string key or '}'");
    return decode_key(d) < 0 ? DECODE_ERROR : DECODE_OPENED;
  case '"':
    r = decode_string(d);
    break;
  case 't':
    r = expect_literal(d, "true");
    lua_pushboolean(L, 1);
    break;
  case 'f':
    r = expect_literal(d, "false");
    lua_pushboolean(L, 0);
    break;
  case 'n':
    r = expect_literal(d, "null");
    lua_pushlightuserdata(L, NULL);
    break;
  default:
    if (d->s[d->pos] == '-' || is_digit(d->s[d->pos]))
      r = decode_number(d);
    else
      return decode_fail_unexpected(d, "");
  }
  return r < 0 ? DECODE_ERROR : DECODE_VALUE;
}

/* Store the member value on top into the object below its key. */
static int close_object_member(decoder *d) {
  lua_State *L = d->L;

  /* A null member leaves the key absent, also over an earlier duplicate. */
  if (lua_type(L, -1) == LUA_TLIGHTUSERDATA) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  lua_rawset(L, -3);

  skip_whitespace(d);
  if (d->pos < d->len && d->s[d->pos] == ',') {
    d->pos++;
    skip_whitespace(d);
    if (d->pos < d->len && d->s[d->pos] == '}')
      return decode_fail(d, d->pos, "trailing comma before '}'");
    return decode_key(d) < 0 ? DECODE_ERROR : DECODE_NEXT;
  }
  if (d->pos < d->len && d->s[d->pos] == '}') {
    d->pos++;
    d->depth--;
    return DECODE_VALUE;
  }
  return decode_fail_expected(d, "',' or '}'");
}

/* Append the element on top to the array below its element count. */
static int close_array_element(decoder *d) {
  lua_State *L = d->L;
  lua_Integer n = lua_tointeger(L, -2) + 1;

#if LUA_VERSION_NUM >= 503
  lua_rawseti(L, -3, n);
#else
  lua_rawseti(L, -3, (int)n);
#endif
  lua_pushinteger(L, n);
  lua_replace(L, -2);

  skip_whitespace(d);
  if (d->pos < d->len && d->s[d->pos] == ',') {
    d->pos++;
    skip_whitespace(d);
    if (d->pos < d->len && d->s[d->pos] == ']')
      return decode_fail(d, d->pos, "trailing comma before ']'");
    return DECODE_NEXT;
  }
  if (d->pos < d->len && d->s[d->pos] == ']') {
    d->pos++;
    lua_pop(L, 1);
    d->depth--;
    return DECODE_VALUE;
  }
  return decode_fail_expected(d, "',' or ']'");
}

/*
 * Store the value on top into its container, closing every container that
 * ends here. Each open container takes its table and one slot above it,
 * which contains the element count (a number) for an array, or the pending
 * key (a string) for an object.
 */
static int decode_close(decoder *d) {
  int r = DECODE_VALUE;

  while (r == DECODE_VALUE) {
    if (d->depth == 0) {
      skip_whitespace(d);
      if (d->pos < d->len)
        return decode_fail_unexpected(d, " after the value");
      return DECODE_FINISHED;
    }
    if (lua_type(d->L, -2) == LUA_TSTRING)
      r = close_object_member(d);
    else
      r = close_array_element(d);
  }
  return r;
}

/* Decode the whole input, leaving the value on top of the stack. */
static int decode_document(decoder *d) {
  for (;;) {
    int r = decode_value(d);

    if (r == DECODE_ERROR)
      return r;
    if (r == DECODE_OPENED)
      continue;
    r = decode_close(d);
    if (r != DECODE_NEXT)
      return r;
  }
}

/*
 * json_decode(s [, max_depth]) -> value | nil, message
 * JSON null decodes to the null sentinel in arrays and at the top level,
 * and to an absent key in objects.
 */
static int json_decode(lua_State *L) {
  decoder d;
  size_t len;
  const char *s;
  lua_Integer max_depth;

  luaL_checktype(L, 1, LUA_TSTRING);
  s = lua_tolstring(L, 1, &len);
  max_depth = luaL_optinteger(L, 2, DECODE_DEFAULT_DEPTH);
  luaL_argcheck(L, max_depth >= 0, 2, "max_depth must not be negative");
  lua_settop(L, 2);
  lua_pushnil(L);

  d.L = L;
  d.s = (const unsigned char *)s;
  d.len = len;
  d.pos = 0;
  d.max_depth = max_depth;
  d.depth = 0;
  d.message[0] = '\0';
  scratch_init(&d.buf, L, 3);

  if (decode_document(&d) == DECODE_ERROR) {
    lua_settop(L, 3);
    lua_pushnil(L);
    lua_pushstring(L, d.message);
    return 2;
  }
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Encoder                                                                */
/* ---------------------------------------------------------------------- */

/* One step from the encoded value down to the value being written. */
typedef struct {
  const char *key;           /* object key, or NULL for an array index */
  size_t key_len;
  lua_Integer index;
} path_step;

typedef struct {
  lua_State *L;
  scratch out;
  int message_slot;          /* stack index of the error message */
  path_step path[ENCODE_MAX_DEPTH + 1];
} encoder;

/* A string key of an object, in the array that encode_object sorts. */
typedef struct {
  const char *s;
  size_t len;
  int index;                 /* position in the anchoring table of keys */
} object_key;

typedef enum { TABLE_AUTO, TABLE_ARRAY, TABLE_OBJECT } table_kind;

static void add_literal(encoder *e, const char *s) {
  scratch_add(&e->out, s, strlen(s));
}

static int is_identifier(const char *s, size_t len) {
  size_t i;

  if (len == 0 || len > PATH_KEY_MAX || is_digit((unsigned char)s[0]))
    return 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];

    if (!(is_digit(c) || c == '_' || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z')))
      return 0;
  }
  return 1;
}

/*
 * Write s in quotes into out, which has 2 * PATH_KEY_MAX + 8 bytes, for a
 * message. At most PATH_KEY_MAX bytes are written, and control bytes,
 * quotes, backslashes and invalid UTF-8 are escaped.
 */
static void quote_for_message(char *out, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t used = 0;
  size_t i = 0;

  *out++ = '"';
  while (i < len) {
    size_t n = utf8_sequence_length(p + i, len - i);

    if (n > 1 && used + n <= PATH_KEY_MAX) {
      memcpy(out, p + i, n);
      out += n;
      used += n;
      i += n;
      continue;
    }
    if (n == 1 && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' &&
        used + 1 <= PATH_KEY_MAX) {
      *out++ = (char)p[i];
      used++;
      i++;
      continue;
    }
    if (n <= 1 && used + 4 <= PATH_KEY_MAX) {
      sprintf(out, "\\x%02X", p[i]);
      out += 4;
      used += 4;
      i++;
      continue;
    }
    break;
  }
  if (i < len) {
    memcpy(out, "...", 3);
    out += 3;
  }
  *out++ = '"';
  *out = '\0';
}

/* Write step i of the path as ".key", "[\"key\"]" or "[index]". */
static void format_step(const encoder *e, int i, char *out, size_t size) {
  const path_step *step = &e->path[i];
  char quoted[2 * PATH_KEY_MAX + 8];

  if (step->key == NULL) {
    snprintf(out, size, "[%lld]", (long long)step->index);
  } else if (is_identifier(step->key, step->key_len)) {
    snprintf(out, size, "%s%.*s", i == 0 ? "" : ".", (int)step->key_len,
             step->key);
  } else {
    quote_for_message(quoted, step->key, step->key_len);
    snprintf(out, size, "[%s]", quoted);
  }
}

/*
 * Write the path of the first `depth` steps into out. A long path keeps
 * its first and last steps around a count of the steps left out.
 */
static void format_path(const encoder *e, int depth, char *out,
                        size_t size) {
  char step[2 * PATH_KEY_MAX + 16];
  size_t total = 0;
  size_t used;
  int head;
  int tail;
  int i;

  if (depth == 0) {
    snprintf(out, size, "the top-level value");
    return;
  }
  for (i = 0; i < depth; i++) {
    format_step(e, i, step, sizeof step);
    total += strlen(step);
  }

  out[0] = '\0';
  if (total <= PATH_TEXT_MAX) {
    for (i = 0; i < depth; i++) {
      format_step(e, i, step, sizeof step);
      strcat(out, step);
    }
    return;
  }

  used = 0;
  for (head = 0; head < depth; head++) {
    format_step(e, head, step, sizeof step);
    if (head > 0 && used + strlen(step) > PATH_TEXT_MAX / 2)
      break;
    strcat(out, step);
    used += strlen(step);
  }
  used = 0;
  for (tail = depth; tail > head + 1; tail--) {
    format_step(e, tail - 1, step, sizeof step);
    if (used + strlen(step) > PATH_TEXT_MAX / 2)
      break;
    used += strlen(step);
  }
  sprintf(out + strlen(out), "...(%d more)", tail - head);
  for (i = tail; i < depth; i++) {
    format_step(e, i, step, sizeof step);
    strcat(out, step);
  }
}

/*
 * Store "cannot encode <path>: <reason>" in the message slot. `depth` is
 * the number of path steps that lead to the failing value.
 */
static int encode_fail(encoder *e, int depth, const char *fmt, ...) {
  char reason[160];
  char path[PATH_TEXT_MAX + 2 * (2 * PATH_KEY_MAX + 16) + 32];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  format_path(e, depth, path, sizeof path);
  lua_pushfstring(e->L, "cannot encode %s: %s", path, reason);
  lua_replace(e->L, e->message_slot);
  return -1;
}

/* Write a short description of the key at idx for a message. */
static void describe_key(lua_State *L, int idx, char *out, size_t size) {
  size_t len;
  const char *s;

  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    quote_for_message(out, s, len);
    break;
  case LUA_TNUMBER:
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
      snprintf(out, size, "%lld", (long long)lua_tointeger(L, idx));
      break;
    }
#endif
    snprintf(out, size, "%.14g", (double)lua_tonumber(L, idx));
    break;
  case LUA_TBOOLEAN:
    snprintf(out, size, "%s", lua_toboolean(L, idx) ? "true" : "false");
    break;
  default:
    snprintf(out, size, "(%s)", luaL_typename(L, idx));
  }
}

/*
 * Write s as a JSON string. Return 0, or -1 when s is not valid UTF-8.
 * Only '"', '\\' and control characters are escaped.
 */
static int encode_string(encoder *e, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t run = 0;
  size_t i = 0;

  scratch_reserve(&e->out, len + 2);
  scratch_addchar(&e->out, '"');
  while (i < len) {
    unsigned char c = p[i];
    char escape[8];
    size_t n;

    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0x80) {
      n = utf8_sequence_length(p + i, len - i);
      if (n == 0)
        return -1;
      i += n;
      continue;
    }

    scratch_add(&e->out, s + run, i - run);
    switch (c) {
    case '"': strcpy(escape, "\\\""); break;
    case '\\': strcpy(escape, "\\\\"); break;
    case '\b': strcpy(escape, "\\b"); break;
    case '\f': strcpy(escape, "\\f"); break;
    case '\n': strcpy(escape, "\\n"); break;
    case '\r': strcpy(escape, "\\r"); break;
    case '\t': strcpy(escape, "\\t"); break;
    default: sprintf(escape, "\\u%04X", c);
    }
    add_literal(e, escape);
    i++;
    run = i;
  }
  scratch_add(&e->out, s + run, len - run);
  scratch_addchar(&e->out, '"');
  return 0;
}

/*
 * Format a non-integral finite double with the fewest significant digits
 * (15, 16 or 17) that read back as the same value.
 */
static void format_float(double x, char *out, size_t size) {
  int precision;

  for (precision = 15; precision < 17; precision++) {
    snprintf(out, size, "%.*g", precision, x);
    if (strtod(out, NULL) == x)
      break;
  }
  if (precision == 17)
    snprintf(out, size, "%.17g", x);
  use_json_point(out);
}

static int encode_number(encoder *e, int depth) {
  lua_State *L = e->L;
  char text[64];
  double x;

#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, -1)) {
    snprintf(text, sizeof text, LUA_INTEGER_FMT,
             (LUAI_UACINT)lua_tointeger(L, -1));
    add_literal(e, text);
    return 0;
  }
#endif
  x = (double)lua_tonumber(L, -1);
  if (isnan(x))
    return encode_fail(e, depth, "NaN is not valid JSON");
  if (isinf(x))
    return encode_fail(e, depth, "%s is not valid JSON",
                       x > 0 ? "infinity" : "-infinity");

  if (x == floor(x) && fabs(x) < EXACT_INTEGER_LIMIT)
    snprintf(text, sizeof text, "%.0f", x);
  else
    format_float(x, text, sizeof text);
  add_literal(e, text);
  return 0;
}

static int encode_value(encoder *e, int depth);

/* Push t[i] without metamethods. Lua 5.1 and 5.2 take an int index. */
static void raw_get_index(lua_State *L, int t, lua_Integer i) {
#if LUA_VERSION_NUM >= 503
  lua_rawgeti(L, t, i);
#else
  lua_rawgeti(L, t, (int)i);
#endif
}

/* Read __jsontype from the metatable of the table at t. */
static int read_table_kind(encoder *e, int t, int depth, table_kind *kind) {
  lua_State *L = e->L;
  const char *name;

  *kind = TABLE_AUTO;
  if (!lua_getmetatable(L, t))
    return 0;
  lua_pushliteral(L, "__jsontype");
  lua_rawget(L, -2);
  name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (name != NULL && strcmp(name, "array") == 0)
    *kind = TABLE_ARRAY;
  else if (name != NULL && strcmp(name, "object") == 0)
    *kind = TABLE_OBJECT;
  else if (!lua_isnil(L, -1))
    return encode_fail(e, depth,
                       "__jsontype must be \"array\" or \"object\"");
  lua_pop(L, 2);
  return 0;
}

/* Return 1 and store the key in *k if the key at idx is an array index. */
static int is_array_index(lua_State *L, int idx, lua_Integer *k) {
  if (lua_type(L, idx) != LUA_TNUMBER || !cf_isinteger(L, idx))
    return 0;
  *k = lua_tointeger(L, idx);
  return *k > 0;
}

/*
 * Decide whether the table at t is written as an array (of *count
 * elements) or an object (of *count string keys), checking every key.
 */
static int classify_table(encoder *e, int t, int depth, table_kind *kind,
                          lua_Integer *count) {
  lua_State *L = e->L;
  lua_Integer indexes = 0;
  lua_Integer strings = 0;
  lua_Integer max_index = 0;
  lua_Integer k;
  char key[2 * PATH_KEY_MAX + 16];

  if (read_table_kind(e, t, depth, kind) < 0)
    return -1;

  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && *kind != TABLE_ARRAY) {
      strings++;
    } else if (*kind != TABLE_OBJECT && is_array_index(L, -1, &k)) {
      indexes++;
      if (k > max_index)
        max_index = k;
    } else {
      describe_key(L, -1, key, sizeof key);
      if (*kind == TABLE_ARRAY)
        return encode_fail(e, depth, "array has key %s, but array keys "
                           "must be positive integers", key);
      if (*kind == TABLE_OBJECT)
        return encode_fail(e, depth, "object has key %s, but object keys "
                           "must be strings", key);
      return encode_fail(e, depth, "table key %s is neither a string nor "
                         "a positive integer", key);
    }
    if (strings > 0 && indexes > 0)
      return encode_fail(e, depth, "table mixes array and object keys");
  }

  if (*kind == TABLE_AUTO)
    *kind = indexes > 0 ? TABLE_ARRAY : TABLE_OBJECT;
  *count = *kind == TABLE_ARRAY ? indexes : strings;
  if (*kind == TABLE_ARRAY && indexes != max_index) {
    /* Some index in 1..indexes + 1 must be missing. */
    for (k = 1;; k++) {
      raw_get_index(L, t, k);
      if (lua_isnil(L, -1))
        break;
      lua_pop(L, 1);
    }
    return encode_fail(e, depth, "sparse array has no value at index %lld "
                       "(use the null sentinel for gaps)", (long long)k);
  }
  return 0;
}

static int encode_array(encoder *e, int t, int depth, lua_Integer n) {
  lua_State *L = e->L;
  lua_Integer i;

  scratch_addchar(&e->out, '[');
  for (i = 1; i <= n; i++) {
    if (i > 1)
      scratch_addchar(&e->out, ',');
    e->path[depth].key = NULL;
    e->path[depth].index = i;
    raw_get_index(L, t, i);
    if (encode_value(e, depth + 1) < 0)
      return -1;
    lua_pop(L, 1);
  }
  scratch_addchar(&e->out, ']');
  return 0;
}

/* Order keys by bytes, which for UTF-8 is code point order. */
static int compare_keys(const void *a, const void *b) {
  const object_key *x = (const object_key *)a;
  const object_key *y = (const object_key *)b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);

  if (c != 0)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/*
 * Write the table at t, which has n string keys, as an object with sorted
 * keys. The table of keys anchors the strings that `keys` points into.
 */
static int encode_object(encoder *e, int t, int depth, lua_Integer n) {
  lua_State *L = e->L;
  object_key *keys;
  int key_table;
  int i;

  if (n == 0) {
    add_literal(e, "{}");
    return 0;
  }
  lua_createtable(L, (int)n, 0);
  key_table = lua_gettop(L);
  keys = (object_key *)lua_newuserdata(L, (size_t)n * sizeof *keys);
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    /* Guard against a finalizer that changed the table after counting. */
    if (i >= (int)n || lua_type(L, -1) != LUA_TSTRING)
      continue;
    lua_pushvalue(L, -1);
    lua_rawseti(L, key_table, i + 1);
    keys[i].s = lua_tolstring(L, -1, &keys[i].len);
    keys[i].index = i + 1;
    i++;
  }
  n = i;
  qsort(keys, (size_t)n, sizeof *keys, compare_keys);

  scratch_addchar(&e->out, '{');
  for (i = 0; i < (int)n; i++) {
    char key[2 * PATH_KEY_MAX + 16];

    if (i > 0)
      scratch_addchar(&e->out, ',');
    if (encode_string(e, keys[i].s, keys[i].len) < 0) {
      quote_for_message(key, keys[i].s, keys[i].len);
      return encode_fail(e, depth, "invalid UTF-8 in object key %s", key);
    }
    scratch_addchar(&e->out, ':');
    e->path[depth].key = keys[i].s;
    e->path[depth].key_len = keys[i].len;
    lua_rawgeti(L, key_table, keys[i].index);
    lua_rawget(L, t);
    if (encode_value(e, depth + 1) < 0)
      return -1;
    lua_pop(L, 1);
  }
  scratch_addchar(&e->out, '}');
  lua_settop(L, t);
  return 0;
}

/* Write the table on top of the stack, reached by `depth` path steps. */
static int encode_table(encoder *e, int depth) {
  lua_State *L = e->L;
  int t = lua_gettop(L);
  table_kind kind;
  lua_Integer count = 0;

  if (depth >= ENCODE_MAX_DEPTH)
    return encode_fail(e, depth, "nesting deeper than %d levels (a cycle?)",
                       ENCODE_MAX_DEPTH);
  if (!lua_checkstack(L, 8))
    return encode_fail(e, depth, "nesting too deep for the Lua stack");
  if (classify_table(e, t, depth, &kind, &count) < 0)
    return -1;
  lua_settop(L, t);
  if (kind == TABLE_ARRAY)
    return encode_array(e, t, depth, count);
  return encode_object(e, t, depth, count);
}

/* Write the value on top of the stack, reached by `depth` path steps. */
static int encode_value(encoder *e, int depth) {
  lua_State *L = e->L;
  const char *s;
  size_t len;

  switch (lua_type(L, -1)) {
  case LUA_TNIL:
    add_literal(e, "null");
    return 0;
  case LUA_TBOOLEAN:
    add_literal(e, lua_toboolean(L, -1) ? "true" : "false");
    return 0;
  case LUA_TNUMBER:
    return encode_number(e, depth);
  case LUA_TSTRING:
    s = lua_tolstring(L, -1, &len);
    if (encode_string(e, s, len) < 0)
      return encode_fail(e, depth, "invalid UTF-8 in string");
    return 0;
  case LUA_TTABLE:
    return encode_table(e, depth);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, -1) == NULL) {
      add_literal(e, "null");
      return 0;
    }
    break;
  default:
    break;
  }
  return encode_fail(e, depth, "%s values have no JSON form",
                     luaL_typename(L, -1));
}

/* json_encode(value) -> string | nil, message */
static int json_encode(lua_State *L) {
  encoder e;

  luaL_checkany(L, 1);
  lua_settop(L, 1);
  lua_pushnil(L);
  lua_pushnil(L);

  e.L = L;
  scratch_init(&e.out, L, 2);
  e.message_slot = 3;

  lua_pushvalue(L, 1);
  if (encode_value(&e, 0) < 0) {
    lua_pushnil(L);
    lua_pushvalue(L, e.message_slot);
    return 2;
  }
  lua_pushlstring(L, e.out.data, e.out.len);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Registration                                                           */
/* ---------------------------------------------------------------------- */

static const luaL_Reg json_functions[] = {
  {"json_decode", json_decode},
  {"json_encode", json_encode},
  {NULL, NULL}
};

/*
 * Add json_decode, json_encode, null (a light userdata whose pointer is
 * NULL) and array_mt (the metatable that makes json_encode write a table as an
 * array) to the module table on top of the stack.
 */
void cf_json_open(lua_State *L) {
  cf_setfuncs(L, json_functions);

  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");

  cf_newmetatable(L, "cloudflare.array");
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_setfield(L, -2, "array_mt");
}
