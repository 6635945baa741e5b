/* Plurigrid strategy ABI 1 (docs/modules.md), for C.
 *
 * The host obtains input memory from the exported `alloc`, writes the observation (UTF-8 JSON)
 * there, calls `decide(ptr, len)` and reads the decision JSON at the packed (ptr << 32) | len it
 * returns. These helpers read numbers from the observation and build the decision without libc's
 * stdio, which would pull in WASI imports (and so need the `wasi` capability). */
#ifndef PLURIGRID_ABI_H
#define PLURIGRID_ABI_H

#define PLURIGRID_IMPORT(name) __attribute__((import_module("plurigrid"), import_name(name)))
#define PLURIGRID_EXPORT(name) __attribute__((export_name(name)))

/* Host functions: a module may call only those its manifest's `capabilities` grant (named in
 * brackets); declaring one that is never called imports nothing. */
PLURIGRID_IMPORT("log") void plurigrid_log(const char *line, int len);                    /* [log] */
PLURIGRID_IMPORT("now") long long plurigrid_now(void);                                   /* [now] */
PLURIGRID_IMPORT("kv_get") int plurigrid_kv_get(const char *key, int key_len, char *out, int cap); /* [kv] */
PLURIGRID_IMPORT("kv_put") int plurigrid_kv_put(const char *key, int key_len, const char *val, int val_len); /* [kv] */
PLURIGRID_IMPORT("read_meter") double plurigrid_read_meter(void);                        /* [read_meter] */
PLURIGRID_IMPORT("forecast") int plurigrid_forecast(char *out, int cap);                 /* [forecast] */
PLURIGRID_IMPORT("prices") int plurigrid_prices(char *out, int cap);                     /* [prices] */
PLURIGRID_IMPORT("send") int plurigrid_send(const char *to, int to_len, const char *msg, int msg_len); /* [send] */

/* Offset just after `"key":` among the top-level keys of the JSON object json[0..len), or -1. */
int json_find(const char *json, int len, const char *key);

/* Reads the JSON number at json[at..len) (blanks first) into *value: the offset after it, or -1. */
int json_number(const char *json, int len, int at, double *value);

/* The top-level number `key` of the JSON object, or `fallback` when it is absent or not a number. */
double json_get(const char *json, int len, const char *key, double fallback);

/* The decision: out_begin() starts an empty object, out_number/out_bool add a field each, and
 * out_end() closes it and returns what `decide` returns. */
void out_begin(void);
void out_number(const char *key, double value);
void out_bool(const char *key, int value);
long long out_end(void);

/* Free-form output (IBC entry points answer nested JSON): out_begin(), then out_raw for JSON text,
 * out_uint for a whole number and out_base64 for bytes as base64, then out_done() returns it as is. */
void out_raw(const char *text);
void out_uint(unsigned long long value);
void out_base64(const char *data, int len);
long long out_done(void);

#endif
