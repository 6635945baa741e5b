/* Plurigrid strategy ABI 1 for C: input memory, a tiny JSON reader and the decision writer. */
#include "abi.h"

#define PAGE_BYTES 65536
#define ARENA_BYTES 65536
#define OUT_BYTES 4096

static unsigned char arena[ARENA_BYTES];
static unsigned char *large;
static unsigned long large_bytes;
static char out[OUT_BYTES];
static int out_len;

/* Memory for the host's input: a static arena, or fresh pages for an input larger than it. The
 * host calls alloc before each call, so one buffer is reused. */
PLURIGRID_EXPORT("alloc") unsigned char *alloc(unsigned long size) {
    if (size <= ARENA_BYTES) return arena;
    if (size > large_bytes) {
        unsigned long pages = (size + PAGE_BYTES - 1) / PAGE_BYTES;
        long first = __builtin_wasm_memory_grow(0, pages);
        if (first < 0) __builtin_trap();
        large = (unsigned char *)(first * PAGE_BYTES);
        large_bytes = pages * PAGE_BYTES;
    }
    return large;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int skip_blanks(const char *json, int len, int at) {
    while (at < len && is_blank(json[at])) at++;
    return at;
}

static int same_text(const char *text, int len, const char *key) {
    int i = 0;
    while (i < len && key[i] && text[i] == key[i]) i++;
    return i == len && key[i] == 0;
}

int json_find(const char *json, int len, const char *key) {
    int depth = 0;
    for (int i = 0; i < len; i++) {
        char c = json[i];
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        else if (c == '"') {
            int start = ++i;
            while (i < len && json[i] != '"') i += json[i] == '\\' ? 2 : 1;
            if (i >= len) return -1;
            if (depth == 1 && same_text(json + start, i - start, key)) {
                int colon = skip_blanks(json, len, i + 1);
                if (colon < len && json[colon] == ':') return colon + 1;
            }
        }
    }
    return -1;
}

int json_number(const char *json, int len, int at, double *value) {
    double sign = 1.0, mantissa = 0.0, scale = 1.0;
    int exponent = 0, digits = 0;
    at = skip_blanks(json, len, at);
    if (at < len && json[at] == '-') { sign = -1.0; at++; }
    for (; at < len && is_digit(json[at]); at++, digits++) mantissa = mantissa * 10.0 + (json[at] - '0');
    if (at < len && json[at] == '.')
        for (at++; at < len && is_digit(json[at]); at++, digits++, exponent--)
            mantissa = mantissa * 10.0 + (json[at] - '0');
    if (digits == 0) return -1;
    if (at < len && (json[at] == 'e' || json[at] == 'E')) {
        int negative = 0, e = 0;
        at++;
        if (at < len && (json[at] == '+' || json[at] == '-')) negative = json[at++] == '-';
        for (; at < len && is_digit(json[at]); at++) if (e < 400) e = e * 10 + (json[at] - '0');
        exponent += negative ? -e : e;
    }
    for (int k = exponent < 0 ? -exponent : exponent; k > 0; k--) scale *= 10.0;
    *value = sign * (exponent < 0 ? mantissa / scale : mantissa * scale);
    return at;
}

double json_get(const char *json, int len, const char *key, double fallback) {
    double value;
    int at = json_find(json, len, key);
    return at >= 0 && json_number(json, len, at, &value) >= 0 ? value : fallback;
}

static void put_char(char c) {
    if (out_len < OUT_BYTES) out[out_len++] = c;
}

static void put_text(const char *text) {
    while (*text) put_char(*text++);
}

static void put_key(const char *key) {
    put_char(out_len ? ',' : '{');
    put_char('"');
    put_text(key);
    put_text("\":");
}

/* Fixed-point decimal with 9 decimals (nano-units of kW, kWh or EUR/kWh); NaN becomes 0 (JSON has
 * no NaN) and magnitudes are capped at 9e9. */
static void put_fixed(double x) {
    char digits[24];
    int n = 0;
    if (x != x) x = 0.0;
    if (x < 0) { put_char('-'); x = -x; }
    if (x > 9e9) x = 9e9;
    unsigned long long scaled = (unsigned long long)(x * 1e9 + 0.5);
    unsigned long long whole = scaled / 1000000000ULL, part = scaled % 1000000000ULL;
    do { digits[n++] = (char)('0' + whole % 10); whole /= 10; } while (whole);
    while (n) put_char(digits[--n]);
    put_char('.');
    for (unsigned long long d = 100000000ULL; d; d /= 10) put_char((char)('0' + part / d % 10));
}

void out_begin(void) {
    out_len = 0;
}

void out_number(const char *key, double value) {
    put_key(key);
    put_fixed(value);
}

void out_bool(const char *key, int value) {
    put_key(key);
    put_text(value ? "true" : "false");
}

long long out_done(void) {
    return (long long)((unsigned long long)(unsigned long)out << 32 | (unsigned)out_len);
}

long long out_end(void) {
    if (out_len == 0) put_char('{');
    put_char('}');
    return out_done();
}

void out_raw(const char *text) {
    put_text(text);
}

void out_uint(unsigned long long value) {
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value);
    while (n) put_char(digits[--n]);
}

void out_base64(const char *data, int len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < len; i += 3) {
        unsigned bits = (unsigned char)data[i] << 16;
        if (i + 1 < len) bits |= (unsigned char)data[i + 1] << 8;
        if (i + 2 < len) bits |= (unsigned char)data[i + 2];
        put_char(alphabet[bits >> 18 & 63]);
        put_char(alphabet[bits >> 12 & 63]);
        put_char(i + 1 < len ? alphabet[bits >> 6 & 63] : '=');
        put_char(i + 2 < len ? alphabet[bits & 63] : '=');
    }
}
