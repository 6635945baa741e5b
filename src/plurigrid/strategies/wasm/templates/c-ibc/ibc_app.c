/* An IBC application module (docs/modules.md, "IBC entry points"): a ping counter between two grids.
 *
 * Its channels speak version "counter-1". When a channel opens, each side sends a ping; each ping
 * received is counted (kv "received") and acknowledged with {"received":N}; each acknowledged ping
 * sends the next, until PINGS were sent (kv "sent"). Each ping received also pays 1 `credit` from
 * the module's account (wasm.{{name}}) to the account "operator"; when it cannot (no funds), the payment is
 * rolled back and `reply` counts it (kv "unpaid"): CosmWasm's reply-on-error. */
#include "abi.h"

#define PINGS 3
#define VERSION "counter-1"

static int text_len(const char *text) {
    int n = 0;
    while (text[n]) n++;
    return n;
}

/* Offset just after the first `needle` in text[0..len), or -1. */
static int find(const char *text, int len, int from, const char *needle) {
    int n = text_len(needle);
    for (int i = from; i + n <= len; i++) {
        int k = 0;
        while (k < n && text[i + k] == needle[k]) k++;
        if (k == n) return i + n;
    }
    return -1;
}

/* Copies the string value of "channel_id" that follows `where` (e.g. "\"endpoint\":") into out. */
static int channel_after(const char *msg, int len, const char *where, char *out, int cap) {
    int at = find(msg, len, 0, where);
    if (at >= 0) at = find(msg, len, at, "\"channel_id\":\"");
    int n = 0;
    while (at >= 0 && at < len && msg[at] != '"' && n < cap - 1) out[n++] = msg[at++];
    out[n] = 0;
    return n;
}

static unsigned long long kv_count(const char *key) {
    char buf[24];
    int n = plurigrid_kv_get(key, text_len(key), buf, sizeof buf);
    unsigned long long value = 0;
    for (int i = 0; i < n && i < (int)sizeof buf; i++) value = value * 10 + (unsigned)(buf[i] - '0');
    return value;
}

static unsigned long long kv_bump(const char *key) {
    unsigned long long value = kv_count(key) + 1, rest = value;
    char digits[24], buf[24];
    int n = 0, k = 0;
    do { digits[n++] = (char)('0' + rest % 10); rest /= 10; } while (rest);
    while (n) buf[k++] = digits[--n];
    plurigrid_kv_put(key, text_len(key), buf, k);
    return value;
}

static long long fail(const char *reason) {
    out_begin();
    out_raw("{\"error\":\"");
    out_raw(reason);
    out_raw("\"}");
    return out_done();
}

/* {"ok":{"messages":[…],"attributes":[{"key":KEY,"value":N}],"events":[]}} with a ping on `channel` (if any). */
static long long respond(const char *channel, const char *key, unsigned long long value) {
    out_begin();
    out_raw("{\"ok\":{\"messages\":[");
    if (channel && channel[0]) {
        kv_bump("sent");
        out_raw("{\"id\":0,\"msg\":{\"ibc\":{\"send_packet\":{\"channel_id\":\"");
        out_raw(channel);
        out_raw("\",\"data\":\"cGluZw==\",\"timeout\":{\"block\":null,\"timestamp\":null}}}},\"reply_on\":\"never\"}");
    }
    out_raw("],\"attributes\":[{\"key\":\"");
    out_raw(key);
    out_raw("\",\"value\":\"");
    out_uint(value);
    out_raw("\"}],\"events\":[]}}");
    return out_done();
}

PLURIGRID_EXPORT("ibc_channel_open") long long ibc_channel_open(const char *msg, int len) {
    if (find(msg, len, 0, "\"version\":\"" VERSION "\"") < 0) return fail("only channels of version " VERSION);
    if (find(msg, len, 0, "\"open_try\"") >= 0 && find(msg, len, 0, "\"counterparty_version\":\"" VERSION "\"") < 0)
        return fail("the counterparty must speak " VERSION);
    out_begin();
    out_raw("{\"ok\":null}");
    return out_done();
}

PLURIGRID_EXPORT("ibc_channel_connect") long long ibc_channel_connect(const char *msg, int len) {
    char channel[64];
    channel_after(msg, len, "\"endpoint\":", channel, sizeof channel);
    return respond(channel, "sent", kv_count("sent") + 1);
}

PLURIGRID_EXPORT("ibc_channel_close") long long ibc_channel_close(const char *msg, int len) {
    return respond(0, "closed", 1);
}

PLURIGRID_EXPORT("ibc_packet_receive") long long ibc_packet_receive(const char *msg, int len) {
    unsigned long long received = kv_bump("received");
    char ack[40];
    int n = 0;
    const char *head = "{\"received\":";
    while (*head) ack[n++] = *head++;
    char digits[24];
    int k = 0;
    unsigned long long rest = received;
    do { digits[k++] = (char)('0' + rest % 10); rest /= 10; } while (rest);
    while (k) ack[n++] = digits[--k];
    ack[n++] = '}';
    out_begin();
    out_raw("{\"ok\":{\"acknowledgement\":\"");
    out_base64(ack, n);
    out_raw("\",\"messages\":[{\"id\":1,\"msg\":{\"bank\":{\"send\":{\"to_address\":\"operator\",\"amount\":"
            "[{\"denom\":\"credit\",\"amount\":\"1\"}]}}},\"reply_on\":\"error\"}],\"attributes\":[{\"key\":\"received\","
            "\"value\":\"");
    out_uint(received);
    out_raw("\"}],\"events\":[]}}");
    return out_done();
}

PLURIGRID_EXPORT("ibc_packet_ack") long long ibc_packet_ack(const char *msg, int len) {
    char channel[64];
    channel_after(msg, len, "\"src\":", channel, sizeof channel);
    unsigned long long acked = kv_bump("acked");
    return respond(kv_count("sent") < PINGS ? channel : 0, "acked", acked);
}

PLURIGRID_EXPORT("ibc_packet_timeout") long long ibc_packet_timeout(const char *msg, int len) {
    return respond(0, "timed_out", kv_bump("timed_out"));
}

PLURIGRID_EXPORT("reply") long long reply(const char *msg, int len) {
    return respond(0, "unpaid", kv_bump("unpaid"));
}
