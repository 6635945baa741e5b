/* Native core of the verifiable store: an in-memory Jellyfish Merkle tree, its batch encoding, and
 * a canonical JSON encoder for ledger entries.
 *
 * Why: a ledger block updates every participant's balance, so a 10,000-participant grid rewrites
 * ~10,000 leaves and most of the tree every 15 minutes; in Python that cost 0.6 s per block. Here
 * the tree lives in memory (its root depends only on the key/value set, so it is derived state:
 * the store persists values and rebuilds the tree), hashing uses the platform's SHA-256 (OpenSSL,
 * with the CPU's SHA extensions where it has them), and the batch work runs without the GIL.
 *
 * The tree is exactly `jmt.py`'s (the pure-Python reference, tested root for root against this):
 *   leaf  = sha256("JMT::LeafNode" || sha256(key) || sha256(value))
 *   inner = sha256("JMT::IntrnalNode" || left || right), an empty subtree hashes to the placeholder,
 *   and a subtree holding exactly one leaf hashes to that leaf (a leaf sits where it is alone).
 * Nodes hold 16 children (one nibble of sha256(key)); a node's hash folds its 16 slots four binary
 * levels up. Nodes are mutated in place: the tree is one version, the latest.
 *
 * Batch encoding (write sets, checkpoints, undo records): u32 count, then per entry u32 key length,
 * key, i32 value length (-1: deleted), value; little-endian. A tree holds no empty values (ICS-23 reads
 * an empty value as absence); the side space's batches may.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

static const uint8_t LEAF_PREFIX[13] = {'J', 'M', 'T', ':', ':', 'L', 'e', 'a', 'f', 'N', 'o', 'd', 'e'};
static const uint8_t INNER_PREFIX[16] = {'J', 'M', 'T', ':', ':', 'I', 'n', 't', 'r', 'n', 'a', 'l', 'N', 'o', 'd', 'e'};
static const uint8_t PLACEHOLDER[32] = {'S', 'P', 'A', 'R', 'S', 'E', '_', 'M', 'E', 'R', 'K', 'L', 'E', '_', 'P', 'L',
                                        'A', 'C', 'E', 'H', 'O', 'L', 'D', 'E', 'R', '_', 'H', 'A', 'S', 'H', '_', '_'};
#define MAX_DEPTH 64

/* ------------------------------------------------------------------ hashing */

static void sha256(const void *data, size_t n, uint8_t out[32]) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, n);
    SHA256_Final(out, &c);
}

static void inner_hash(const uint8_t *left, const uint8_t *right, uint8_t out[32]) {
    uint8_t buf[80];
    memcpy(buf, INNER_PREFIX, 16);
    memcpy(buf + 16, left, 32);
    memcpy(buf + 48, right, 32);
    sha256(buf, 80, out);
}

static void leaf_hash(const uint8_t *key_hash, const uint8_t *value, size_t vlen, uint8_t out[32]) {
    uint8_t buf[77];
    memcpy(buf, LEAF_PREFIX, 13);
    memcpy(buf + 13, key_hash, 32);
    sha256(value, vlen, buf + 45);
    sha256(buf, 77, out);
}

/* ------------------------------------------------------------------ byte buffers and the batch encoding */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;
} Buf;

static int buf_reserve(Buf *b, size_t more) {
    if (b->failed) return 0;
    if (b->len + more <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return 0;
    }
    b->data = d;
    b->cap = cap;
    return 1;
}
static inline void buf_put(Buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}
static inline void buf_u32(Buf *b, uint32_t v) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    buf_put(b, le, 4);
}
static inline uint32_t read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void buf_entry(Buf *b, const uint8_t *key, size_t klen, const uint8_t *value, long vlen) {
    buf_u32(b, (uint32_t)klen);
    buf_put(b, key, klen);
    buf_u32(b, (uint32_t)(int32_t)vlen);
    if (vlen > 0) buf_put(b, value, (size_t)vlen);
}

/* One batch entry: pointers into bytes that outlive the batch's application. */
typedef struct {
    const uint8_t *key, *value; /* value NULL: deleted */
    uint32_t klen, vlen;
} Entry;

/* Parses a batch; returns the entry count or -1 (with a Python error set). */
static Py_ssize_t parse_batch(const uint8_t *p, size_t n, Entry **out) {
    if (n < 4) goto bad;
    uint32_t count = read_u32(p);
    if (count > (n - 4) / 8) goto bad;
    Entry *e = PyMem_Malloc((count ? count : 1) * sizeof(Entry));
    if (!e) {
        PyErr_NoMemory();
        return -1;
    }
    size_t pos = 4;
    for (uint32_t k = 0; k < count; k++) {
        if (pos + 4 > n) goto bad_free;
        uint32_t klen = read_u32(p + pos);
        pos += 4;
        if (klen == 0 || klen > n - pos || n - pos - klen < 4) goto bad_free;
        e[k].key = p + pos;
        e[k].klen = klen;
        pos += klen;
        int32_t vlen = (int32_t)read_u32(p + pos);
        pos += 4;
        if (vlen < 0) {
            if (vlen != -1) goto bad_free;
            e[k].value = NULL;
            e[k].vlen = 0;
        } else {
            if ((size_t)vlen > n - pos) goto bad_free;
            e[k].value = p + pos;
            e[k].vlen = (uint32_t)vlen;
            pos += (size_t)vlen;
        }
    }
    if (pos != n) goto bad_free;
    *out = e;
    return count;
bad_free:
    PyMem_Free(e);
bad:
    PyErr_SetString(PyExc_ValueError, "not a write batch (corrupt store)");
    return -1;
}

/* ------------------------------------------------------------------ tree */

typedef struct Leaf {
    uint8_t key_hash[32];
    uint8_t hash[32];
    uint32_t klen, vlen, cap; /* cap: bytes of data allocated (a new value that fits is written in place) */
    uint8_t data[];           /* key, then value */
} Leaf;

typedef struct Node {
    uint16_t bitmap, leafmap;
    void *child[16];
    uint8_t hash[32];
} Node;

typedef struct {
    void *p; /* NULL: empty */
    int leaf;
} Ref;

static const Ref EMPTY = {NULL, 0};

static inline const uint8_t *ref_hash(Ref r) { return r.leaf ? ((Leaf *)r.p)->hash : ((Node *)r.p)->hash; }
static inline int nibble(const uint8_t *key_hash, int depth) {
    return depth & 1 ? key_hash[depth >> 1] & 0x0f : key_hash[depth >> 1] >> 4;
}
static inline Ref slot(const Node *n, int i) {
    Ref r = {n->child[i], (n->leafmap >> i) & 1};
    return r;
}
static inline void set_slot(Node *n, int i, Ref r) {
    uint16_t bit = (uint16_t)(1u << i);
    n->child[i] = r.p;
    n->bitmap = r.p ? n->bitmap | bit : n->bitmap & ~bit;
    n->leafmap = r.p && r.leaf ? n->leafmap | bit : n->leafmap & ~bit;
}

/* Hash of the binary subtree over slots [lo, hi) of a node (an aligned power-of-two range). */
static void fold_range(const Node *n, int lo, int hi, uint8_t out[32]) {
    int idx[16], lone[16], count = 0, bits = 0;
    const uint8_t *hash[16];
    uint8_t scratch[16][32]; /* hashes computed on the way up */
    for (int i = lo; i < hi; i++) {
        if (n->child[i]) {
            Ref r = slot(n, i);
            idx[count] = i - lo;
            lone[count] = r.leaf;
            hash[count++] = ref_hash(r);
        }
    }
    if (!count) {
        memcpy(out, PLACEHOLDER, 32);
        return;
    }
    for (int w = hi - lo; w > 1; w >>= 1) bits++;
    for (int b = 0; b < bits; b++) {
        int up = 0;
        for (int k = 0; k < count; up++) {
            if (k + 1 < count && idx[k + 1] >> 1 == idx[k] >> 1) {
                inner_hash(hash[k], hash[k + 1], scratch[up]);
                hash[up] = scratch[up];
                lone[up] = 0;
                idx[up] = idx[k] >> 1;
                k += 2;
                continue;
            }
            if (!lone[k]) {
                if (idx[k] & 1) inner_hash(PLACEHOLDER, hash[k], scratch[up]);
                else inner_hash(hash[k], PLACEHOLDER, scratch[up]);
                hash[up] = scratch[up];
            } else {
                hash[up] = hash[k];
            }
            lone[up] = lone[k];
            idx[up] = idx[k] >> 1;
            k++;
        }
        count = up;
    }
    memcpy(out, hash[0], 32);
}

static void free_ref(Ref r) {
    if (!r.p) return;
    if (!r.leaf) {
        Node *n = (Node *)r.p;
        for (int i = 0; i < 16; i++)
            if (n->child[i]) free_ref(slot(n, i));
    }
    free(r.p);
}

/* One key of a batch on its way into the tree, or an existing leaf carried into a rebuild. */
typedef struct {
    uint8_t key_hash[32];
    uint8_t hash[32];   /* the new leaf's hash (a write) */
    const Entry *entry; /* the batch's entry; NULL: `carried` is an existing leaf */
    Leaf *carried;
    int existed;        /* the tree held this key before the batch (its old value is in the undo record) */
} Item;

/* What one thread of a batch changes besides the tree: the undo record and the size deltas. */
typedef struct {
    int error; /* an allocation failed, or two keys share 64 nibbles of hash (impossible in practice) */
    Buf undo;  /* entries that restore what the batch replaced (its header is written when merged) */
    uint32_t undo_count;
    Py_ssize_t count, bytes;
} Ctx;

static void record_old(Ctx *ctx, const Leaf *old) {
    buf_entry(&ctx->undo, old->data, old->klen, old->data + old->klen, old->vlen);
    ctx->undo_count++;
    ctx->count--;
    ctx->bytes -= old->klen + old->vlen;
}

static void record_new(Ctx *ctx, const Item *it) {
    if (!it->existed) { /* a new key: undo deletes it */
        buf_entry(&ctx->undo, it->entry->key, it->entry->klen, NULL, -1);
        ctx->undo_count++;
    }
    ctx->count++;
    ctx->bytes += it->entry->klen + it->entry->vlen;
}

static Leaf *new_leaf(Ctx *ctx, const Item *it) {
    const Entry *e = it->entry;
    uint32_t cap = (e->klen + e->vlen + 15u) & ~15u; /* slack: a slightly longer value later fits in place */
    Leaf *leaf = malloc(sizeof(Leaf) + cap);
    if (!leaf) {
        ctx->error = 1;
        return NULL;
    }
    memcpy(leaf->key_hash, it->key_hash, 32);
    memcpy(leaf->hash, it->hash, 32);
    leaf->klen = e->klen;
    leaf->vlen = e->vlen;
    leaf->cap = cap;
    memcpy(leaf->data, e->key, e->klen);
    memcpy(leaf->data + e->klen, e->value, e->vlen);
    return leaf;
}

static inline int is_write(const Item *it) { return !it->entry || it->entry->value; }

/* A subtree over sorted items (deletes skipped), at `depth`. */
static Ref build(Ctx *ctx, int depth, Item *items, size_t n) {
    size_t live = 0, last = 0;
    for (size_t k = 0; k < n; k++)
        if (is_write(items + k)) live++, last = k;
    if (!live) return EMPTY;
    if (live == 1) {
        Item *it = items + last;
        Ref r = {it->entry ? new_leaf(ctx, it) : it->carried, 1};
        if (it->entry && r.p) record_new(ctx, it);
        return r.p ? r : EMPTY;
    }
    if (depth >= MAX_DEPTH) {
        ctx->error = 1;
        return EMPTY;
    }
    Node *node = calloc(1, sizeof(Node));
    if (!node) {
        ctx->error = 1;
        return EMPTY;
    }
    for (size_t start = 0; start < n;) {
        int nib = nibble(items[start].key_hash, depth);
        size_t end = start + 1;
        while (end < n && nibble(items[end].key_hash, depth) == nib) end++;
        set_slot(node, nib, build(ctx, depth + 1, items + start, end - start));
        start = end;
    }
    fold_range(node, 0, 16, node->hash);
    Ref r = {node, 0};
    return r;
}

typedef struct {
    Ref ref;
    int changed;
} Result;

static Result update(Ctx *ctx, Ref ref, int depth, Item *items, size_t n);

static Result update_leaf(Ctx *ctx, Ref ref, int depth, Item *items, size_t n) {
    Leaf *old = (Leaf *)ref.p;
    Item *mine = NULL; /* the batch's write or delete of the leaf's own key */
    size_t others = 0;  /* the batch's writes of other keys */
    for (size_t k = 0; k < n; k++) {
        if (!memcmp(items[k].key_hash, old->key_hash, 32)) mine = items + k;
        else if (is_write(items + k)) others++;
    }
    Result res = {ref, 0};
    if (!mine && !others) return res;
    if (mine && is_write(mine) && !memcmp(mine->hash, old->hash, 32) && !others) return res; /* the same value again */
    if (mine) {
        record_old(ctx, old);
        mine->existed = 1;
        const Entry *e = mine->entry;
        if (!others && e->value && old->cap >= e->klen + e->vlen) { /* a new value in place */
            memcpy(old->hash, mine->hash, 32);
            memcpy(old->data + old->klen, e->value, e->vlen);
            old->vlen = e->vlen;
            ctx->count++;
            ctx->bytes += e->klen + e->vlen;
            res.changed = 1;
            return res;
        }
    }
    /* rebuild this subtree from the batch, with the existing leaf in key-hash order unless the batch replaces it */
    size_t m = n + (mine ? 0 : 1), at = n;
    Item *merged = malloc(m * sizeof(Item));
    if (!merged) {
        ctx->error = 1;
        return res;
    }
    if (!mine) {
        at = 0;
        while (at < n && memcmp(items[at].key_hash, old->key_hash, 32) < 0) at++;
    }
    for (size_t k = 0, j = 0; k < m; k++) {
        if (k == at && !mine) {
            memcpy(merged[k].key_hash, old->key_hash, 32);
            merged[k].entry = NULL;
            merged[k].carried = old;
            merged[k].existed = 1;
        } else {
            merged[k] = items[j++];
        }
    }
    res.ref = build(ctx, depth, merged, m);
    res.changed = 1;
    if (mine) free(old);
    free(merged);
    return res;
}

/* Updates the children of `node` that the sorted items reach; returns whether any changed. */
static int update_children(Ctx *ctx, Node *node, int depth, Item *items, size_t n) {
    int changed = 0;
    for (size_t start = 0; start < n;) {
        int nib = nibble(items[start].key_hash, depth);
        size_t end = start + 1;
        while (end < n && nibble(items[end].key_hash, depth) == nib) end++;
        Result child = update(ctx, slot(node, nib), depth + 1, items + start, end - start);
        if (child.changed) {
            set_slot(node, nib, child.ref);
            changed = 1;
        }
        start = end;
    }
    return changed;
}

typedef struct {
    Ctx ctx;
    Node *node;
    Item *items;
    size_t n;
    int changed;
} Half;

static void *update_half(void *arg) {
    Half *h = (Half *)arg;
    h->changed = update_children(&h->ctx, h->node, 0, h->items, h->n);
    return NULL;
}

static int threads = 2;    /* worker threads for large batches (set_threads) */
#define PARALLEL_ITEMS 4096 /* batches this large split their work over the threads */

/* After a node's children changed: drop it if empty, move a lone leaf up, else rehash it. */
static Result settle_node(Node *node) {
    Result res = {{node, 0}, 1};
    int present = 0, only = -1;
    for (int i = 0; i < 16; i++)
        if (node->child[i]) present++, only = i;
    if (!present) {
        free(node);
        res.ref = EMPTY;
    } else if (present == 1 && (node->leafmap >> only & 1)) { /* a lone leaf moves up to where it is alone */
        res.ref = slot(node, only);
        free(node);
    } else {
        fold_range(node, 0, 16, node->hash);
    }
    return res;
}

static void merge_ctx(Ctx *into, Ctx *from) {
    into->error |= from->error | from->undo.failed;
    buf_put(&into->undo, from->undo.data, from->undo.len);
    into->undo_count += from->undo_count;
    into->count += from->count;
    into->bytes += from->bytes;
    free(from->undo.data);
}

static Result update(Ctx *ctx, Ref ref, int depth, Item *items, size_t n) {
    Result res = {ref, 0};
    if (!n || ctx->error) return res;
    if (!ref.p) {
        res.ref = build(ctx, depth, items, n);
        res.changed = res.ref.p != NULL;
        return res;
    }
    if (ref.leaf) return update_leaf(ctx, ref, depth, items, n);
    Node *node = (Node *)ref.p;
    int changed;
    size_t split = n / 2;
    while (split > 0 && split < n && nibble(items[split].key_hash, 0) == nibble(items[split - 1].key_hash, 0)) split++;
    if (depth == 0 && threads > 1 && n >= PARALLEL_ITEMS && split < n) {
        /* the root's children are independent subtrees: the upper half of them on a second thread */
        Half upper = {{0}, node, items + split, n - split, 0};
        pthread_t worker;
        if (pthread_create(&worker, NULL, update_half, &upper) == 0) {
            changed = update_children(ctx, node, 0, items, split);
            pthread_join(worker, NULL);
            changed |= upper.changed;
            merge_ctx(ctx, &upper.ctx);
        } else {
            changed = update_children(ctx, node, 0, items, n);
        }
    } else {
        changed = update_children(ctx, node, depth, items, n);
    }
    return changed ? settle_node(node) : res;
}

static Leaf *find(Ref r, const uint8_t *key_hash) {
    for (int depth = 0; r.p; depth++) {
        if (r.leaf) return memcmp(((Leaf *)r.p)->key_hash, key_hash, 32) ? NULL : (Leaf *)r.p;
        r = slot((Node *)r.p, nibble(key_hash, depth));
    }
    return NULL;
}

/* ------------------------------------------------------------------ the Tree type */

typedef struct {
    PyObject_HEAD Ref root;
    Py_ssize_t count;
    Py_ssize_t state_bytes; /* sum of key and value lengths */
    Buf undo;               /* the batch that restores the tree as it was before the last update */
    int can_revert;
    PyThread_type_lock lock;
} TreeObject;

static void Tree_dealloc(TreeObject *self) {
    free_ref(self->root);
    free(self->undo.data);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Tree_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    TreeObject *self = (TreeObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->root = EMPTY;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static int Tree_init(TreeObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {NULL};
    return PyArg_ParseTupleAndKeywords(args, kw, ":Tree", names) ? 0 : -1;
}

static void lock_tree(TreeObject *t) {
    if (!PyThread_acquire_lock(t->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(t->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
}

static int cmp_item(const void *a, const void *b) { return memcmp(((const Item *)a)->key_hash, ((const Item *)b)->key_hash, 32); }

typedef struct {
    const Entry *e;
    Item *items;
    Py_ssize_t from, to;
} Prep;

/* Hashes keys and values of entries [from, to). */
static void *prepare(void *arg) {
    Prep *p = (Prep *)arg;
    for (Py_ssize_t k = p->from; k < p->to; k++) {
        const Entry *x = p->e + k;
        Item *it = p->items + k;
        sha256(x->key, x->klen, it->key_hash);
        it->entry = x;
        it->carried = NULL;
        it->existed = 0;
        if (x->value) leaf_hash(it->key_hash, x->value, x->vlen, it->hash);
    }
    return NULL;
}

/* Applies entries (keys unique) to the tree and keeps the undo batch. Runs without the GIL.
 * Returns 0, -1 (out of memory: the tree may be partial) or -2 (a key written twice: nothing changed). */
static int apply_entries(TreeObject *t, const Entry *e, Py_ssize_t n) {
    Item *items = malloc((n ? n : 1) * sizeof(Item));
    if (!items) return -1;
    Prep lower = {e, items, 0, n}, upper = {e, items, n / 2, n};
    pthread_t worker;
    if (threads > 1 && n >= PARALLEL_ITEMS && pthread_create(&worker, NULL, prepare, &upper) == 0) {
        lower.to = n / 2;
        prepare(&lower);
        pthread_join(worker, NULL);
    } else {
        prepare(&lower);
    }
    qsort(items, (size_t)n, sizeof(Item), cmp_item);
    for (Py_ssize_t k = 1; k < n; k++)
        if (!memcmp(items[k].key_hash, items[k - 1].key_hash, 32)) {
            free(items);
            return -2;
        }
    Ctx ctx = {0};
    ctx.undo = t->undo; /* the buffer is reused from batch to batch */
    ctx.undo.len = 0;
    buf_u32(&ctx.undo, 0); /* the count, written below */
    Result r = update(&ctx, t->root, 0, items, (size_t)n);
    t->root = r.ref;
    t->count += ctx.count;
    t->state_bytes += ctx.bytes;
    int failed = ctx.error || ctx.undo.failed;
    if (!failed) {
        uint32_t c = ctx.undo_count;
        uint8_t le[4] = {(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24)};
        memcpy(ctx.undo.data, le, 4);
    }
    ctx.undo.failed = 0;
    t->undo = ctx.undo;
    t->can_revert = !failed;
    free(items);
    return failed ? -1 : 0;
}

#define NOGIL_ITEMS 1024 /* batches this large are hashed without the GIL; a small one is done before a released
                            GIL could even be taken back (another thread holds it up to the switch interval) */

/* Applies entries under the tree's lock, without the GIL when the batch is large. */
static int apply_locked(TreeObject *self, const Entry *e, Py_ssize_t n) {
    int rc;
    lock_tree(self);
    if (n >= NOGIL_ITEMS) {
        Py_BEGIN_ALLOW_THREADS rc = apply_entries(self, e, n);
        Py_END_ALLOW_THREADS
    } else {
        rc = apply_entries(self, e, n);
    }
    PyThread_release_lock(self->lock);
    if (rc == -2) PyErr_SetString(PyExc_ValueError, "a batch writes the same key twice");
    else if (rc) PyErr_NoMemory();
    return rc;
}

/* Entries pointing into the bytes of a dict's keys and values; `hold` keeps them alive meanwhile. */
static Py_ssize_t entries_from_dict(PyObject *writes, int allow_empty, Entry **out, PyObject **hold) {
    if (!PyDict_Check(writes)) {
        PyErr_SetString(PyExc_TypeError, "writes must be a dict of bytes to bytes or None");
        return -1;
    }
    Py_ssize_t n = PyDict_GET_SIZE(writes), k = 0, pos = 0;
    PyObject *key, *value;
    *hold = PyList_New(2 * n);
    Entry *e = PyMem_Malloc((n ? n : 1) * sizeof(Entry));
    if (!*hold || !e) {
        Py_CLEAR(*hold);
        PyMem_Free(e);
        PyErr_NoMemory();
        return -1;
    }
    while (PyDict_Next(writes, &pos, &key, &value)) {
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) == 0 || PyBytes_GET_SIZE(key) > 0x7fffffff ||
            (value != Py_None && (!PyBytes_Check(value) || (PyBytes_GET_SIZE(value) == 0 && !allow_empty) ||
                                  PyBytes_GET_SIZE(value) > 0x7fffffff))) {
            Py_CLEAR(*hold);
            PyMem_Free(e);
            PyErr_SetString(PyExc_ValueError, allow_empty ? "keys must be non-empty bytes and values bytes or None"
                                                          : "keys must be non-empty bytes and values non-empty bytes or None");
            return -1;
        }
        PyList_SET_ITEM(*hold, 2 * k, Py_NewRef(key));
        PyList_SET_ITEM(*hold, 2 * k + 1, Py_NewRef(value));
        e[k].key = (const uint8_t *)PyBytes_AS_STRING(key);
        e[k].klen = (uint32_t)PyBytes_GET_SIZE(key);
        e[k].value = value == Py_None ? NULL : (const uint8_t *)PyBytes_AS_STRING(value);
        e[k].vlen = value == Py_None ? 0 : (uint32_t)PyBytes_GET_SIZE(value);
        k++;
    }
    *out = e;
    return n;
}

PyDoc_STRVAR(Tree_update_doc, "update(writes) -> None\n\nWrites each key of a dict (non-empty bytes) to its value (non-empty\n"
                              "bytes, or None to delete). `revert()` undoes the last update or apply.");
static PyObject *Tree_update(TreeObject *self, PyObject *writes) {
    Entry *e;
    PyObject *hold;
    Py_ssize_t n = entries_from_dict(writes, 0, &e, &hold);
    if (n < 0) return NULL;
    int rc = apply_locked(self, e, n);
    PyMem_Free(e);
    Py_DECREF(hold);
    if (rc) return NULL;
    Py_RETURN_NONE;
}

/* Applies an encoded batch (refusing empty values, which a tree cannot hold). */
static int apply_batch(TreeObject *self, const uint8_t *data, size_t len) {
    Entry *e;
    Py_ssize_t n = parse_batch(data, len, &e);
    if (n < 0) return -1;
    for (Py_ssize_t k = 0; k < n; k++)
        if (e[k].value && !e[k].vlen) {
            PyMem_Free(e);
            PyErr_SetString(PyExc_ValueError, "a tree holds no empty values (corrupt store)");
            return -1;
        }
    int rc = apply_locked(self, e, n);
    PyMem_Free(e);
    return rc;
}

PyDoc_STRVAR(Tree_apply_doc, "apply(batch) -> None\n\nApplies an encoded batch (a write set or a checkpoint).");
static PyObject *Tree_apply(TreeObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    int rc = apply_batch(self, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (rc) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Tree_revert_doc, "revert() -> None\n\nRestores the tree as it was before the last update, apply or revert.");
static PyObject *Tree_revert(TreeObject *self, PyObject *unused) {
    if (!self->can_revert) {
        PyErr_SetString(PyExc_ValueError, "nothing to revert");
        return NULL;
    }
    Buf undo = self->undo; /* applying it records a new undo into a fresh buffer */
    self->undo = (Buf){0};
    int rc = apply_batch(self, undo.data, undo.len);
    free(undo.data);
    if (rc) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Tree_root(TreeObject *self, PyObject *unused) {
    lock_tree(self);
    PyObject *out = PyBytes_FromStringAndSize((const char *)(self->root.p ? ref_hash(self->root) : PLACEHOLDER), 32);
    PyThread_release_lock(self->lock);
    return out;
}

static PyObject *leaf_value(Leaf *leaf) {
    return PyBytes_FromStringAndSize((const char *)leaf->data + leaf->klen, leaf->vlen);
}

/* The key's hash, for a lookup; 0 with a TypeError set when key is not bytes. */
static int key_hash_of(PyObject *key, uint8_t kh[32]) {
    if (!PyBytes_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "key must be bytes");
        return 0;
    }
    sha256(PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key), kh);
    return 1;
}

static PyObject *Tree_get(TreeObject *self, PyObject *key) {
    uint8_t kh[32];
    if (!key_hash_of(key, kh))
        return NULL;
    lock_tree(self);
    Leaf *leaf = find(self->root, kh);
    PyObject *out = leaf ? leaf_value(leaf) : Py_NewRef(Py_None);
    PyThread_release_lock(self->lock);
    return out;
}

typedef void (*LeafVisitor)(Leaf *, void *);
static void visit(Ref r, LeafVisitor f, void *arg) {
    if (!r.p) return;
    if (r.leaf) {
        f((Leaf *)r.p, arg);
        return;
    }
    for (int i = 0; i < 16; i++)
        if (((Node *)r.p)->child[i]) visit(slot((Node *)r.p, i), f, arg);
}

static void encode_leaf(Leaf *leaf, void *arg) { buf_entry((Buf *)arg, leaf->data, leaf->klen, leaf->data + leaf->klen, leaf->vlen); }

PyDoc_STRVAR(Tree_encode_doc, "encode() -> bytes\n\nEvery key and value as one batch, in key-hash order (a checkpoint).");
static PyObject *Tree_encode(TreeObject *self, PyObject *unused) {
    Buf b = {0};
    lock_tree(self);
    buf_u32(&b, (uint32_t)self->count);
    if (!buf_reserve(&b, (size_t)self->state_bytes + 8 * (size_t)self->count)) {
        PyThread_release_lock(self->lock);
        free(b.data);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS visit(self->root, encode_leaf, &b);
    Py_END_ALLOW_THREADS PyThread_release_lock(self->lock);
    PyObject *out = b.failed ? PyErr_NoMemory() : PyBytes_FromStringAndSize((const char *)b.data, (Py_ssize_t)b.len);
    free(b.data);
    return out;
}

typedef struct {
    Leaf **leaves;
    size_t n;
    const uint8_t *prefix;
    size_t plen;
} Collect;

static void collect_leaf(Leaf *leaf, void *arg) {
    Collect *c = (Collect *)arg;
    if (leaf->klen >= c->plen && !memcmp(leaf->data, c->prefix, c->plen)) c->leaves[c->n++] = leaf;
}

static int cmp_leaf_key(const void *a, const void *b) {
    const Leaf *x = *(Leaf *const *)a, *y = *(Leaf *const *)b;
    uint32_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->data, y->data, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

PyDoc_STRVAR(Tree_items_doc, "items(prefix=b'') -> list[tuple[bytes, bytes]]\n\nThe (key, value) pairs whose key starts with prefix, in key order.");
static PyObject *Tree_items(TreeObject *self, PyObject *args) {
    Py_buffer prefix = {0};
    if (!PyArg_ParseTuple(args, "|y*:items", &prefix)) return NULL;
    lock_tree(self);
    Collect c = {malloc(((size_t)self->count + 1) * sizeof(Leaf *)), 0, prefix.buf, prefix.buf ? (size_t)prefix.len : 0};
    PyObject *out = NULL;
    if (!c.leaves) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS visit(self->root, collect_leaf, &c);
    qsort(c.leaves, c.n, sizeof(Leaf *), cmp_leaf_key);
    Py_END_ALLOW_THREADS out = PyList_New((Py_ssize_t)c.n);
    for (size_t k = 0; out && k < c.n; k++) {
        PyObject *pair = Py_BuildValue("(y#y#)", c.leaves[k]->data, (Py_ssize_t)c.leaves[k]->klen,
                                       c.leaves[k]->data + c.leaves[k]->klen, (Py_ssize_t)c.leaves[k]->vlen);
        if (!pair) Py_CLEAR(out);
        else PyList_SET_ITEM(out, (Py_ssize_t)k, pair);
    }
done:
    PyThread_release_lock(self->lock);
    free(c.leaves);
    if (prefix.buf) PyBuffer_Release(&prefix);
    return out;
}

/* ---------------------------------------------------------------- proofs (as jmt.py's `prove`) */

typedef struct {
    int went_right;
    uint8_t sibling[32];
    const Node *node; /* the sibling subtree is slots [lo, hi) of this node */
    int lo, hi;
} Step;

/* Binary steps from the root towards key_hash and the leaf where the walk ends (NULL: an empty subtree). */
static int walk(Ref ref, const uint8_t *key_hash, Step *steps, Leaf **leaf) {
    int count = 0, depth = 0;
    *leaf = NULL;
    while (ref.p) {
        if (ref.leaf) {
            *leaf = (Leaf *)ref.p;
            return count;
        }
        const Node *node = (const Node *)ref.p;
        int nib = nibble(key_hash, depth), lo = 0, hi = 16;
        for (;;) {
            int present = 0, first = -1;
            for (int i = lo; i < hi; i++)
                if (node->child[i]) {
                    if (first < 0) first = i;
                    present++;
                }
            if (!present) return count;
            if (hi - lo == 1 || (present == 1 && (node->leafmap >> first & 1))) {
                ref = slot(node, first);
                depth++;
                break;
            }
            int mid = (lo + hi) / 2;
            Step *s = steps + count++;
            s->node = node;
            if (nib < mid) {
                s->went_right = 0;
                fold_range(node, mid, hi, s->sibling);
                s->lo = mid, s->hi = hi;
                hi = mid;
            } else {
                s->went_right = 1;
                fold_range(node, lo, mid, s->sibling);
                s->lo = lo, s->hi = mid;
                lo = mid;
            }
        }
    }
    return count;
}

static Leaf *extreme(const Node *node, int lo, int hi, int rightmost) {
    for (;;) {
        int pick = -1;
        for (int i = lo; i < hi; i++)
            if (node->child[i] && (pick < 0 || rightmost)) pick = i;
        Ref r = slot(node, pick);
        if (r.leaf) return (Leaf *)r.p;
        node = (const Node *)r.p, lo = 0, hi = 16;
    }
}

static PyObject *steps_list(const Step *steps, int n) {
    PyObject *out = PyList_New(n);
    for (int k = 0; out && k < n; k++) {
        PyObject *s = Py_BuildValue("(Ny#)", PyBool_FromLong(steps[k].went_right), steps[k].sibling, (Py_ssize_t)32);
        if (!s) Py_CLEAR(out);
        else PyList_SET_ITEM(out, k, s);
    }
    return out;
}

/* (key, value, steps) of a leaf of the tree */
static PyObject *leaf_path(Ref root, Leaf *leaf) {
    Step steps[4 * MAX_DEPTH + 4];
    Leaf *end;
    int n = walk(root, leaf->key_hash, steps, &end);
    return Py_BuildValue("(y#y#N)", leaf->data, (Py_ssize_t)leaf->klen, leaf->data + leaf->klen, (Py_ssize_t)leaf->vlen,
                         steps_list(steps, n));
}

PyDoc_STRVAR(Tree_prove_doc, "prove(key) -> tuple\n\n(True, value, steps) if the tree holds key, else (False, left, right) with its\n"
                             "neighbours in key-hash order as (key, value, steps) or None; steps are (went_right, sibling)\n"
                             "from the root down. Raises ValueError on an empty tree (ICS-23 cannot state absence there).");
static PyObject *Tree_prove(TreeObject *self, PyObject *key) {
    uint8_t kh[32];
    if (!key_hash_of(key, kh))
        return NULL;
    lock_tree(self);
    PyObject *out = NULL;
    if (!self->root.p) {
        PyErr_SetString(PyExc_ValueError, "the tree is empty: ICS-23 cannot prove absence without a neighbour");
        goto done;
    }
    Step steps[4 * MAX_DEPTH + 4];
    Leaf *leaf;
    int n = walk(self->root, kh, steps, &leaf);
    if (leaf && !memcmp(leaf->key_hash, kh, 32)) {
        out = Py_BuildValue("(Oy#N)", Py_True, leaf->data + leaf->klen, (Py_ssize_t)leaf->vlen, steps_list(steps, n));
        goto done;
    }
    Leaf *left = NULL, *right = NULL;
    if (leaf) {
        if (memcmp(leaf->key_hash, kh, 32) < 0) left = leaf;
        else right = leaf;
    }
    for (int k = n - 1; k >= 0; k--) { /* the deepest branch point on the other side gives the other neighbour */
        if (!left && steps[k].went_right && memcmp(steps[k].sibling, PLACEHOLDER, 32))
            left = extreme(steps[k].node, steps[k].lo, steps[k].hi, 1);
        if (!right && !steps[k].went_right && memcmp(steps[k].sibling, PLACEHOLDER, 32))
            right = extreme(steps[k].node, steps[k].lo, steps[k].hi, 0);
    }
    out = Py_BuildValue("(ONN)", Py_False, left ? leaf_path(self->root, left) : Py_NewRef(Py_None),
                        right ? leaf_path(self->root, right) : Py_NewRef(Py_None));
done:
    PyThread_release_lock(self->lock);
    return out;
}

static Py_ssize_t Tree_len(TreeObject *self) { return self->count; }

static PyObject *Tree_state_bytes(TreeObject *self, void *unused) { return PyLong_FromSsize_t(self->state_bytes); }

static PyMethodDef Tree_methods[] = {
    {"update", (PyCFunction)Tree_update, METH_O, Tree_update_doc},
    {"apply", (PyCFunction)Tree_apply, METH_O, Tree_apply_doc},
    {"revert", (PyCFunction)Tree_revert, METH_NOARGS, Tree_revert_doc},
    {"root", (PyCFunction)Tree_root, METH_NOARGS, "root() -> bytes\n\nThe root hash (the placeholder when empty)."},
    {"get", (PyCFunction)Tree_get, METH_O, "get(key) -> bytes | None"},
    {"items", (PyCFunction)Tree_items, METH_VARARGS, Tree_items_doc},
    {"encode", (PyCFunction)Tree_encode, METH_NOARGS, Tree_encode_doc},
    {"prove", (PyCFunction)Tree_prove, METH_O, Tree_prove_doc},
    {NULL}};

static PyGetSetDef Tree_getset[] = {
    {"state_bytes", (getter)Tree_state_bytes, NULL, "total bytes of keys and values held", NULL}, {NULL}};

static PySequenceMethods Tree_as_sequence = {.sq_length = (lenfunc)Tree_len};

static PyTypeObject TreeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "plurigrid.state._native.Tree",
    .tp_doc = "The latest version of a Jellyfish Merkle tree, in memory (ICS-23 JMT spec).",
    .tp_basicsize = sizeof(TreeObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Tree_new,
    .tp_init = (initproc)Tree_init,
    .tp_dealloc = (destructor)Tree_dealloc,
    .tp_methods = Tree_methods,
    .tp_getset = Tree_getset,
    .tp_as_sequence = &Tree_as_sequence,
};

/* ------------------------------------------------------------------ module functions */

PyDoc_STRVAR(encode_batch_doc, "encode_batch(writes) -> bytes\n\nThe batch encoding of a dict of keys to values (None: deleted), in its order.");
static PyObject *encode_batch(PyObject *mod, PyObject *writes) {
    Entry *e;
    PyObject *hold;
    Py_ssize_t n = entries_from_dict(writes, 1, &e, &hold);
    if (n < 0) return NULL;
    Buf b = {0};
    buf_u32(&b, (uint32_t)n);
    for (Py_ssize_t k = 0; k < n; k++) buf_entry(&b, e[k].key, e[k].klen, e[k].value, e[k].value ? (long)e[k].vlen : -1);
    PyMem_Free(e);
    Py_DECREF(hold);
    PyObject *out = b.failed ? PyErr_NoMemory() : PyBytes_FromStringAndSize((const char *)b.data, (Py_ssize_t)b.len);
    free(b.data);
    return out;
}

PyDoc_STRVAR(decode_batch_doc, "decode_batch(batch) -> list[tuple[bytes, bytes | None]]\n\nThe (key, value) entries of a batch, in its order.");
static PyObject *decode_batch(PyObject *mod, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Entry *e;
    Py_ssize_t n = parse_batch(view.buf, (size_t)view.len, &e);
    PyObject *out = n < 0 ? NULL : PyList_New(n);
    for (Py_ssize_t k = 0; out && k < n; k++) {
        PyObject *pair = e[k].value ? Py_BuildValue("(y#y#)", e[k].key, (Py_ssize_t)e[k].klen, e[k].value, (Py_ssize_t)e[k].vlen)
                                    : Py_BuildValue("(y#O)", e[k].key, (Py_ssize_t)e[k].klen, Py_None);
        if (!pair) Py_CLEAR(out);
        else PyList_SET_ITEM(out, k, pair);
    }
    if (n >= 0) PyMem_Free(e);
    PyBuffer_Release(&view);
    return out;
}

/* ---------------------------------------------------------------- canonical JSON */

static int is_int64(const Py_buffer *v) {
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    return v->ndim == 1 && v->itemsize == 8 && (!strcmp(f, "q") || !strcmp(f, "l"));
}

/* v in decimal at out (at most 20 bytes); returns the length. */
static inline size_t format_i64(char *out, long long v) {
    char digits[20];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = digits[--n];
    return len;
}

static void put_int(Buf *b, long long v) {
    if (buf_reserve(b, 20)) b->len += format_i64((char *)b->data + b->len, v);
}

static int put_string(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (!u) return -1;
    static const char hex[] = "0123456789abcdef";
    buf_put(b, "\"", 1);
    Py_ssize_t start = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)u[k];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_put(b, u + start, (size_t)(k - start));
        start = k + 1;
        switch (c) {
        case '"': buf_put(b, "\\\"", 2); break;
        case '\\': buf_put(b, "\\\\", 2); break;
        case '\n': buf_put(b, "\\n", 2); break;
        case '\r': buf_put(b, "\\r", 2); break;
        case '\t': buf_put(b, "\\t", 2); break;
        case '\b': buf_put(b, "\\b", 2); break;
        case '\f': buf_put(b, "\\f", 2); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_put(b, esc, 6);
        }
        }
    }
    buf_put(b, u + start, (size_t)(n - start));
    buf_put(b, "\"", 1);
    return 0;
}

static int cmp_utf8(const void *a, const void *b) {
    PyObject *x = *(PyObject *const *)a, *y = *(PyObject *const *)b;
    Py_ssize_t nx, ny;
    const char *ux = PyUnicode_AsUTF8AndSize(x, &nx), *uy = PyUnicode_AsUTF8AndSize(y, &ny);
    int c = memcmp(ux, uy, (size_t)(nx < ny ? nx : ny));
    return c ? c : (nx > ny) - (nx < ny);
}

static int put_value(Buf *b, PyObject *v, int depth);

static int put_int_buffer(Buf *b, PyObject *v) {
    Py_buffer view;
    if (PyObject_GetBuffer(v, &view, PyBUF_FORMAT | PyBUF_ND) < 0) return -1;
    if (!is_int64(&view)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "canonical_json: arrays must be one-dimensional int64");
        return -1;
    }
    const long long *x = view.buf;
    Py_ssize_t n = view.shape[0];
    if (buf_reserve(b, (size_t)n * 21 + 2)) {
        char *out = (char *)b->data + b->len;
        size_t len = 0;
        Py_BEGIN_ALLOW_THREADS /* plain C over the array's memory (the view keeps it alive) */
        out[len++] = '[';
        for (Py_ssize_t k = 0; k < n; k++) {
            if (k) out[len++] = ',';
            len += format_i64(out + len, x[k]);
        }
        out[len++] = ']';
        Py_END_ALLOW_THREADS
        b->len += len;
    }
    PyBuffer_Release(&view);
    return 0;
}

static int put_value(Buf *b, PyObject *v, int depth) {
    if (depth > 64) {
        PyErr_SetString(PyExc_ValueError, "canonical_json: nested too deeply");
        return -1;
    }
    if (v == Py_None) buf_put(b, "null", 4);
    else if (v == Py_True) buf_put(b, "true", 4);
    else if (v == Py_False) buf_put(b, "false", 5);
    else if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) {
            PyObject *s = PyObject_Str(v);
            if (!s) return -1;
            Py_ssize_t n;
            const char *u = PyUnicode_AsUTF8AndSize(s, &n);
            buf_put(b, u, (size_t)n);
            Py_DECREF(s);
        } else {
            put_int(b, x);
        }
    } else if (PyUnicode_CheckExact(v)) {
        return put_string(b, v);
    } else if (PyList_CheckExact(v) || PyTuple_CheckExact(v)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
        PyObject **items = PySequence_Fast_ITEMS(v);
        buf_put(b, "[", 1);
        for (Py_ssize_t k = 0; k < n; k++) {
            if (k) buf_put(b, ",", 1);
            if (put_value(b, items[k], depth + 1) < 0) return -1;
        }
        buf_put(b, "]", 1);
    } else if (PyDict_CheckExact(v)) {
        Py_ssize_t n = PyDict_GET_SIZE(v), k = 0, pos = 0;
        PyObject **keys = PyMem_Malloc((n ? n : 1) * sizeof(PyObject *)), *key, *value;
        if (!keys) {
            PyErr_NoMemory();
            return -1;
        }
        while (PyDict_Next(v, &pos, &key, &value)) {
            if (!PyUnicode_CheckExact(key) || !PyUnicode_AsUTF8AndSize(key, NULL)) {
                PyMem_Free(keys);
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "canonical_json: keys must be strings");
                return -1;
            }
            keys[k++] = key;
        }
        qsort(keys, (size_t)n, sizeof(PyObject *), cmp_utf8);
        buf_put(b, "{", 1);
        for (k = 0; k < n; k++) {
            if (k) buf_put(b, ",", 1);
            if (put_string(b, keys[k]) < 0) {
                PyMem_Free(keys);
                return -1;
            }
            buf_put(b, ":", 1);
            if (put_value(b, PyDict_GetItem(v, keys[k]), depth + 1) < 0) {
                PyMem_Free(keys);
                return -1;
            }
        }
        buf_put(b, "}", 1);
        PyMem_Free(keys);
    } else if (PyObject_CheckBuffer(v)) {
        return put_int_buffer(b, v);
    } else {
        PyErr_Format(PyExc_TypeError, "canonical_json: cannot encode %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(canonical_json_doc, "canonical_json(value) -> bytes\n\n"
                                 "json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode(), for\n"
                                 "dicts with string keys, lists, tuples, str, int, bool and None, and one-dimensional int64\n"
                                 "arrays written as lists. Floats are refused (TypeError): ledger amounts are integers.");
static PyObject *canonical_json(PyObject *mod, PyObject *v) {
    Buf b = {0};
    if (put_value(&b, v, 0) < 0) {
        free(b.data);
        return NULL;
    }
    PyObject *out = b.failed ? PyErr_NoMemory() : PyBytes_FromStringAndSize((const char *)b.data, (Py_ssize_t)b.len);
    free(b.data);
    return out;
}

PyDoc_STRVAR(format_rows_doc, "format_rows(parts, columns) -> list[bytes]\n\n"
                              "Row k is parts[0] + str(columns[0][k]) + parts[1] + ... + parts[-1], for int64 columns\n"
                              "of one length (len(parts) == len(columns) + 1): one canonical JSON value per row.");
static PyObject *format_rows(PyObject *mod, PyObject *args) {
    PyObject *parts, *columns;
    if (!PyArg_ParseTuple(args, "O!O!:format_rows", &PyList_Type, &parts, &PyList_Type, &columns)) return NULL;
    Py_ssize_t c = PyList_GET_SIZE(columns);
    if (PyList_GET_SIZE(parts) != c + 1) {
        PyErr_SetString(PyExc_ValueError, "format_rows: need one more part than columns");
        return NULL;
    }
    Py_buffer *views = PyMem_Calloc((size_t)(c ? c : 1), sizeof(Py_buffer));
    PyObject *out = NULL;
    Py_ssize_t rows = -1, got = 0;
    for (; got < c; got++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(columns, got), views + got, PyBUF_FORMAT | PyBUF_ND) < 0) goto done;
        if (!is_int64(views + got)) {
            got++;
            PyErr_SetString(PyExc_TypeError, "format_rows: columns must be one-dimensional int64");
            goto done;
        }
        if (rows >= 0 && views[got].shape[0] != rows) {
            got++;
            PyErr_SetString(PyExc_ValueError, "format_rows: columns must have one length");
            goto done;
        }
        rows = views[got].shape[0];
    }
    for (Py_ssize_t p = 0; p <= c; p++)
        if (!PyBytes_Check(PyList_GET_ITEM(parts, p))) {
            PyErr_SetString(PyExc_TypeError, "format_rows: parts must be bytes");
            goto done;
        }
    if (rows < 0) rows = 0;
    size_t fixed = 0;
    for (Py_ssize_t p = 0; p <= c; p++) fixed += (size_t)PyBytes_GET_SIZE(PyList_GET_ITEM(parts, p));
    size_t row_max = fixed + 20 * (size_t)c;
    char *text = PyMem_Malloc(row_max * (size_t)(rows ? rows : 1));
    size_t *ends = PyMem_Malloc(sizeof(size_t) * (size_t)(rows ? rows : 1));
    const char **part = PyMem_Malloc(sizeof(char *) * (size_t)(c + 1));
    size_t *plen = PyMem_Malloc(sizeof(size_t) * (size_t)(c + 1));
    if (!text || !ends || !part || !plen) {
        PyErr_NoMemory();
        goto free_text;
    }
    for (Py_ssize_t p = 0; p <= c; p++) {
        part[p] = PyBytes_AS_STRING(PyList_GET_ITEM(parts, p));
        plen[p] = (size_t)PyBytes_GET_SIZE(PyList_GET_ITEM(parts, p));
    }
    size_t len = 0;
    Py_BEGIN_ALLOW_THREADS /* plain C over the columns' memory and the parts' bytes */
    for (Py_ssize_t r = 0; r < rows; r++) {
        for (Py_ssize_t p = 0; p <= c; p++) {
            memcpy(text + len, part[p], plen[p]);
            len += plen[p];
            if (p < c) len += format_i64(text + len, ((const long long *)views[p].buf)[r]);
        }
        ends[r] = len;
    }
    Py_END_ALLOW_THREADS
    out = PyList_New(rows);
    for (Py_ssize_t r = 0, start = 0; out && r < rows; start = (Py_ssize_t)ends[r], r++) {
        PyObject *row = PyBytes_FromStringAndSize(text + start, (Py_ssize_t)ends[r] - start);
        if (!row) Py_CLEAR(out);
        else PyList_SET_ITEM(out, r, row);
    }
free_text:
    PyMem_Free(text);
    PyMem_Free(ends);
    PyMem_Free((void *)part);
    PyMem_Free(plen);
done:
    for (Py_ssize_t k = 0; k < got; k++) PyBuffer_Release(views + k);
    PyMem_Free(views);
    return out;
}

PyDoc_STRVAR(set_threads_doc, "set_threads(n) -> int\n\nThreads a large batch may use (1 or 2; default 2); returns the previous setting.");
static PyObject *set_threads(PyObject *mod, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 1 || n > 2) {
        PyErr_SetString(PyExc_ValueError, "set_threads: 1 or 2");
        return NULL;
    }
    int before = threads;
    threads = (int)n;
    return PyLong_FromLong(before);
}

PyDoc_STRVAR(sha256_doc, "sha256(data) -> bytes\n\nThe platform's SHA-256 (the one the tree uses).");
static PyObject *py_sha256(PyObject *mod, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint8_t out[32];
    sha256(view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyMethodDef module_methods[] = {
    {"encode_batch", encode_batch, METH_O, encode_batch_doc},
    {"decode_batch", decode_batch, METH_O, decode_batch_doc},
    {"canonical_json", canonical_json, METH_O, canonical_json_doc},
    {"format_rows", format_rows, METH_VARARGS, format_rows_doc},
    {"sha256", py_sha256, METH_O, sha256_doc},
    {"set_threads", set_threads, METH_O, set_threads_doc},
    {NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "plurigrid.state._native",
                                    "Native core of the verifiable store (see _native.c).", -1, module_methods};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&TreeType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&TreeType);
    if (PyModule_AddObject(m, "Tree", (PyObject *)&TreeType) < 0) {
        Py_DECREF(&TreeType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
