/* qshm_compat._codec: C inner loops for qshm_compat.datastream (Python's limited API only).
 *
 * The pure-Python codec in qshm_compat/datastream/ is the specification.  These helpers only
 * decode the regular cases of the hottest loops (QStringList items, QVariant trees of the common
 * types, PNG row filters) and hand everything else back to Python:
 *
 * - read_strings() returns None at the first item it does not decode itself, and Python re-reads
 *   the list;
 * - the QVariant readers call `fallback(kind, pos, depth, unwrap)` for any variant (kind 0) or
 *   map key (kind 1: QVariantMap, 2: QVariantHash) that is not plainly regular: an unknown type,
 *   a null or 64-bit or odd or overlong length, a short buffer, a depth at the limit.  The
 *   fallback runs the pure reader at that offset and returns (value, end), so every error is
 *   raised by the pure code, with its class and message.
 *
 * Every read is bounds-checked against the buffer before it happens; nothing here trusts a length.
 */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXTENDED_SIZE 0xFFFFFFFEu
#define NULL_SIZE 0xFFFFFFFFu
#define MAX_C_DEPTH 256 /* deeper trees go to the pure reader (it has its own limit) */

static uint32_t get_u32(const unsigned char *p, int little)
{
    if (little)
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static uint64_t get_u64(const unsigned char *p, int little)
{
    uint64_t a = get_u32(p, little), b = get_u32(p + 4, little);
    return little ? (b << 32 | a) : (a << 32 | b);
}

static PyObject *decode_utf16(const unsigned char *p, Py_ssize_t n, int little)
{
    int bo = little ? -1 : 1;
    /* Short ASCII strings are the common case: build them without the codec machinery. */
    if (n <= 512) {
        char tmp[256];
        Py_ssize_t i, k = n >> 1;
        const unsigned char *lo = p + (little ? 0 : 1), *hi = p + (little ? 1 : 0);
        for (i = 0; i < k; i++) {
            if (hi[2 * i] || lo[2 * i] >= 0x80)
                break;
            tmp[i] = (char)lo[2 * i];
        }
        if (i == k)
            return PyUnicode_FromStringAndSize(tmp, k);
    }
    return PyUnicode_DecodeUTF16((const char *)p, n, "surrogatepass", &bo);
}

/* ---------------------------------------------------------------------------------------- */
/* QStringList items */

static PyObject *strings_at(const unsigned char *buf, Py_ssize_t size, Py_ssize_t pos,
                            Py_ssize_t n, int little, Py_ssize_t *end)
{
    PyObject *list = PyList_New(n);
    Py_ssize_t i;
    if (list == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        uint32_t ln;
        PyObject *s;
        if (size - pos < 4)
            goto irregular;
        ln = get_u32(buf + pos, little);
        pos += 4;
        if (ln == NULL_SIZE) {
            Py_INCREF(Py_None);
            s = Py_None;
        } else {
            if (ln >= EXTENDED_SIZE || (ln & 1) || (Py_ssize_t)ln > size - pos)
                goto irregular;
            s = decode_utf16(buf + pos, (Py_ssize_t)ln, little);
            if (s == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            pos += ln;
        }
        PyList_SetItem(list, i, s); /* steals s */
    }
    *end = pos;
    return list;
irregular:
    Py_DECREF(list);
    Py_INCREF(Py_None);
    *end = -1;
    return Py_None;
}

typedef struct {
    Py_buffer view;
    const unsigned char *buf;
    Py_ssize_t size;
} Input;

static int get_input(PyObject *obj, Input *in)
{
    if (PyObject_GetBuffer(obj, &in->view, PyBUF_SIMPLE) < 0)
        return -1;
    in->buf = (const unsigned char *)in->view.buf;
    in->size = in->view.len;
    return 0;
}

static int check_pos(Py_ssize_t pos, Py_ssize_t n, Py_ssize_t size)
{
    if (pos < 0 || pos > size || n < 0) {
        PyErr_SetString(PyExc_ValueError, "position or count out of range");
        return -1;
    }
    return 0;
}

/* read_strings(data, pos, n, little) -> (list, end) or None */
static PyObject *read_strings(PyObject *self, PyObject *args)
{
    PyObject *data, *list, *res;
    Py_ssize_t pos, n, end;
    int little;
    Input in;
    (void)self;
    if (!PyArg_ParseTuple(args, "Onnp", &data, &pos, &n, &little))
        return NULL;
    if (get_input(data, &in) < 0)
        return NULL;
    if (check_pos(pos, n, in.size) < 0 || n > (in.size - pos) / 4) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "count larger than the input");
        PyBuffer_Release(&in.view);
        return NULL;
    }
    list = strings_at(in.buf, in.size, pos, n, little, &end);
    PyBuffer_Release(&in.view);
    if (list == NULL || list == Py_None)
        return list;
    res = Py_BuildValue("(Nn)", list, end);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* QVariant trees */

typedef struct {
    const unsigned char *buf;
    Py_ssize_t size;
    int little, single, unwrap, max_depth;
    PyObject *qvariant; /* the QVariant class */
    PyObject *fallback; /* fallback(kind, pos, depth, unwrap) -> (value, end) */
} Ctx;

static PyObject *variant_at(Ctx *c, Py_ssize_t pos, int depth, Py_ssize_t *end);

static PyObject *call_fallback(Ctx *c, int kind, Py_ssize_t pos, int depth, Py_ssize_t *end)
{
    PyObject *r = PyObject_CallFunction(c->fallback, "inii", kind, pos, depth, c->unwrap);
    PyObject *value, *e;
    if (r == NULL)
        return NULL;
    if (!PyTuple_Check(r) || PyTuple_Size(r) != 2) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "fallback must return (value, end)");
        return NULL;
    }
    value = PyTuple_GetItem(r, 0);
    e = PyTuple_GetItem(r, 1);
    *end = PyLong_AsSsize_t(e);
    if (*end == -1 && PyErr_Occurred()) {
        Py_DECREF(r);
        return NULL;
    }
    if (*end < pos || *end > c->size) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_ValueError, "fallback returned an offset out of range");
        return NULL;
    }
    Py_INCREF(value);
    Py_DECREF(r);
    return value;
}

/* A map key: a regular QString, else the pure reader decides (null key, errors...). */
static PyObject *key_at(Ctx *c, int kind, Py_ssize_t pos, int depth, Py_ssize_t *end)
{
    uint32_t ln;
    if (c->size - pos >= 4) {
        ln = get_u32(c->buf + pos, c->little);
        if (ln < EXTENDED_SIZE && !(ln & 1) && (Py_ssize_t)ln <= c->size - pos - 4) {
            *end = pos + 4 + ln;
            return decode_utf16(c->buf + pos + 4, (Py_ssize_t)ln, c->little);
        }
    }
    return call_fallback(c, kind, pos, depth, end);
}

static PyObject *pairs_at(Ctx *c, Py_ssize_t pos, Py_ssize_t n, int kind, int depth,
                          Py_ssize_t *end)
{
    PyObject *dict = PyDict_New();
    Py_ssize_t i;
    if (dict == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *k, *v;
        int rc;
        k = key_at(c, kind, pos, depth, &pos);
        if (k == NULL)
            goto fail;
        v = variant_at(c, pos, depth, &pos);
        if (v == NULL) {
            Py_DECREF(k);
            goto fail;
        }
        rc = PyDict_SetItem(dict, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0)
            goto fail;
    }
    *end = pos;
    return dict;
fail:
    Py_DECREF(dict);
    return NULL;
}

static PyObject *items_at(Ctx *c, Py_ssize_t pos, Py_ssize_t n, int depth, Py_ssize_t *end)
{
    PyObject *list = PyList_New(n);
    Py_ssize_t i;
    if (list == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *v = variant_at(c, pos, depth, &pos);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SetItem(list, i, v);
    }
    *end = pos;
    return list;
}

static PyObject *variant_at(Ctx *c, Py_ssize_t pos, int depth, Py_ssize_t *end)
{
    const unsigned char *buf = c->buf;
    Py_ssize_t size = c->size, q = pos + 5, left;
    uint32_t tid, ln;
    int is_null;
    PyObject *value = NULL, *res;

    if (size - pos < 5)
        goto slow;
    tid = get_u32(buf + pos, c->little);
    is_null = buf[pos + 4] != 0;
    left = size - q;
    switch (tid) {
    case 0: /* Invalid: no payload */
        Py_INCREF(Py_None);
        value = Py_None;
        *end = q;
        break;
    case 1: /* Bool */
        if (left < 1)
            goto slow;
        value = PyBool_FromLong(buf[q] != 0);
        *end = q + 1;
        break;
    case 2: /* Int */
        if (left < 4)
            goto slow;
        value = PyLong_FromLong((long)(int32_t)get_u32(buf + q, c->little));
        *end = q + 4;
        break;
    case 3: /* UInt */
        if (left < 4)
            goto slow;
        value = PyLong_FromUnsignedLong((unsigned long)get_u32(buf + q, c->little));
        *end = q + 4;
        break;
    case 4: /* LongLong */
        if (left < 8)
            goto slow;
        value = PyLong_FromLongLong((long long)(int64_t)get_u64(buf + q, c->little));
        *end = q + 8;
        break;
    case 5: /* ULongLong */
        if (left < 8)
            goto slow;
        value = PyLong_FromUnsignedLongLong((unsigned long long)get_u64(buf + q, c->little));
        *end = q + 8;
        break;
    case 6: /* Double: 8 bytes, or 4 under single precision */
        if (c->single) {
            uint32_t u;
            float f;
            if (left < 4)
                goto slow;
            u = get_u32(buf + q, c->little);
            memcpy(&f, &u, 4);
            value = PyFloat_FromDouble((double)f);
            *end = q + 4;
        } else {
            uint64_t u;
            double d;
            if (left < 8)
                goto slow;
            u = get_u64(buf + q, c->little);
            memcpy(&d, &u, 8);
            value = PyFloat_FromDouble(d);
            *end = q + 8;
        }
        break;
    case 10: /* QString */
        if (left < 4)
            goto slow;
        ln = get_u32(buf + q, c->little);
        if (ln >= EXTENDED_SIZE || (ln & 1) || (Py_ssize_t)ln > left - 4)
            goto slow;
        value = decode_utf16(buf + q + 4, (Py_ssize_t)ln, c->little);
        *end = q + 4 + ln;
        break;
    case 12: /* QByteArray (copied: a variant holds bytes) */
        if (left < 4)
            goto slow;
        ln = get_u32(buf + q, c->little);
        if (ln == NULL_SIZE) {
            Py_INCREF(Py_None);
            value = Py_None;
            *end = q + 4;
            break;
        }
        if (ln >= EXTENDED_SIZE || (Py_ssize_t)ln > left - 4)
            goto slow;
        value = PyBytes_FromStringAndSize((const char *)buf + q + 4, (Py_ssize_t)ln);
        *end = q + 4 + ln;
        break;
    case 11: /* QStringList */
    case 8:  /* QVariantMap */
    case 9:  /* QVariantList */
    case 28: /* QVariantHash */
    {
        Py_ssize_t n, min_item = tid == 11 ? 4 : tid == 9 ? 5 : 9;
        if (left < 4)
            goto slow;
        ln = get_u32(buf + q, c->little);
        if (ln >= EXTENDED_SIZE)
            goto slow;
        n = (Py_ssize_t)ln;
        if (n > (left - 4) / min_item)
            goto slow; /* the pure reader reports the truncation */
        if (tid == 11) {
            value = strings_at(buf, size, q + 4, n, c->little, end);
            if (value == Py_None) {
                Py_DECREF(value);
                goto slow;
            }
            break;
        }
        if (depth + 1 > c->max_depth || depth + 1 > MAX_C_DEPTH)
            goto slow;
        if (tid == 9)
            value = items_at(c, q + 4, n, depth + 1, end);
        else
            value = pairs_at(c, q + 4, n, tid == 8 ? 1 : 2, depth + 1, end);
        break;
    }
    default:
        goto slow;
    }
    if (value == NULL)
        return NULL;
    if (c->unwrap)
        return value;
    res = PyObject_CallFunction(c->qvariant, "kOOO", (unsigned long)tid, value, Py_None,
                                is_null ? Py_True : Py_False);
    Py_DECREF(value);
    return res;
slow:
    return call_fallback(c, 0, pos, depth, end);
}

/* read_variants(what, data, pos, n, little, single, unwrap, depth, max_depth, qvariant,
 *               fallback) -> (value, end)
 * what: 0 one QVariant (n ignored), 1 n QVariantMap pairs, 2 n QVariantHash pairs,
 *       3 n QVariantList items.  depth is the reader's depth (containers already entered). */
static PyObject *read_variants(PyObject *self, PyObject *args)
{
    PyObject *data, *value;
    Py_ssize_t pos, n, end = 0;
    int what, depth;
    Ctx c;
    Input in;
    (void)self;
    if (!PyArg_ParseTuple(args, "iOnnpppiiOO", &what, &data, &pos, &n, &c.little, &c.single,
                          &c.unwrap, &depth, &c.max_depth, &c.qvariant, &c.fallback))
        return NULL;
    if (get_input(data, &in) < 0)
        return NULL;
    if (check_pos(pos, n, in.size) < 0 || what < 0 || what > 3 || n > (in.size - pos) / 5 ||
        depth < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "bad request");
        PyBuffer_Release(&in.view);
        return NULL;
    }
    c.buf = in.buf;
    c.size = in.size;
    if (what == 0)
        value = variant_at(&c, pos, depth, &end);
    else if (what == 3)
        value = items_at(&c, pos, n, depth, &end);
    else
        value = pairs_at(&c, pos, n, what, depth, &end);
    PyBuffer_Release(&in.view);
    if (value == NULL)
        return NULL;
    return Py_BuildValue("(Nn)", value, end);
}

/* ---------------------------------------------------------------------------------------- */
/* PNG row filters */

/* png_unfilter(raw, out, y0, rowbytes, bpp) -> number of rows written.
 * raw holds whole rows of (filter type byte, rowbytes bytes); they become rows y0, y0 + 1, ...
 * of the bytearray out (rowbytes bytes each; row y0 - 1 is the previous row of the first).
 * ValueError for a bad filter type or sizes that do not fit; out is then partly written. */
static PyObject *png_unfilter(PyObject *self, PyObject *args)
{
    PyObject *data, *outobj;
    Py_ssize_t y0, rowbytes, bpp, rows, y, i;
    Input in;
    Py_buffer ob;
    unsigned char *dst;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOnnn", &data, &outobj, &y0, &rowbytes, &bpp))
        return NULL;
    if (y0 < 0 || rowbytes <= 0 || bpp < 1 || bpp > 8 || bpp > rowbytes) {
        PyErr_SetString(PyExc_ValueError, "bad PNG geometry");
        return NULL;
    }
    if (get_input(data, &in) < 0)
        return NULL;
    if (PyObject_GetBuffer(outobj, &ob, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&in.view);
        return NULL;
    }
    rows = in.size / (rowbytes + 1);
    if (in.size % (rowbytes + 1) || ob.len / rowbytes < y0 || ob.len / rowbytes - y0 < rows) {
        PyBuffer_Release(&in.view);
        PyBuffer_Release(&ob);
        PyErr_SetString(PyExc_ValueError, "PNG rows do not fit");
        return NULL;
    }
    dst = (unsigned char *)ob.buf;
    for (y = 0; y < rows; y++) {
        const unsigned char *src = in.buf + y * (rowbytes + 1);
        unsigned filter = src[0];
        unsigned char *row = dst + (y0 + y) * rowbytes;
        const unsigned char *prev = y0 + y ? row - rowbytes : NULL;
        src++;
        switch (filter) {
        case 0:
            memcpy(row, src, (size_t)rowbytes);
            break;
        case 1: /* Sub */
            memcpy(row, src, (size_t)bpp);
            for (i = bpp; i < rowbytes; i++)
                row[i] = (unsigned char)(src[i] + row[i - bpp]);
            break;
        case 2: /* Up */
            if (prev == NULL)
                memcpy(row, src, (size_t)rowbytes);
            else
                for (i = 0; i < rowbytes; i++)
                    row[i] = (unsigned char)(src[i] + prev[i]);
            break;
        case 3: /* Average */
            for (i = 0; i < rowbytes; i++) {
                unsigned a = i >= bpp ? row[i - bpp] : 0, b = prev ? prev[i] : 0;
                row[i] = (unsigned char)(src[i] + ((a + b) >> 1));
            }
            break;
        case 4: /* Paeth */
            for (i = 0; i < rowbytes; i++) {
                int a = i >= bpp ? row[i - bpp] : 0, b = prev ? prev[i] : 0;
                int cc = (i >= bpp && prev) ? prev[i - bpp] : 0;
                int p = a + b - cc, pa = abs(p - a), pb = abs(p - b), pc = abs(p - cc);
                int pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : cc);
                row[i] = (unsigned char)(src[i] + pred);
            }
            break;
        default:
            PyBuffer_Release(&in.view);
            PyBuffer_Release(&ob);
            PyErr_Format(PyExc_ValueError, "unknown PNG filter type %u in row %zd", filter,
                         y0 + y);
            return NULL;
        }
    }
    PyBuffer_Release(&in.view);
    PyBuffer_Release(&ob);
    return PyLong_FromSsize_t(rows);
}

/* new_bytearray(n): a bytearray of n bytes left as malloc gives them, for png_unfilter to fill
 * (the caller drops it unless every byte was written). */
static PyObject *new_bytearray(PyObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    (void)self;
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    return PyByteArray_FromStringAndSize(NULL, n);
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding: appended to the Writer's bytearray.  Anything but the plainest values goes to
 * fallback(value, depth), the pure writer, which appends to the same bytearray. */

typedef struct {
    PyObject *ba;
    int little, descending, max_depth;
    PyObject *fallback;
    Py_UCS4 *scratch;
    Py_ssize_t scratch_len;
} WCtx;

static unsigned char *grow(PyObject *ba, Py_ssize_t n)
{
    Py_ssize_t old = PyByteArray_Size(ba);
    if (old < 0 || PyByteArray_Resize(ba, old + n) < 0)
        return NULL;
    return (unsigned char *)PyByteArray_AsString(ba) + old;
}

static void put_u32(unsigned char *p, uint32_t v, int little)
{
    int i;
    for (i = 0; i < 4; i++)
        p[little ? i : 3 - i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v, int little)
{
    int i;
    for (i = 0; i < 8; i++)
        p[little ? i : 7 - i] = (unsigned char)(v >> (8 * i));
}

/* The code points of s in w->scratch; returns their number, -1 on error.  *astral is set when
 * one needs a surrogate pair. */
static Py_ssize_t to_ucs4(WCtx *w, PyObject *s, int *astral)
{
    Py_ssize_t n = PyUnicode_GetLength(s), i;
    if (n < 0)
        return -1;
    if (n + 1 > w->scratch_len) {
        Py_UCS4 *p = PyMem_Realloc(w->scratch, (size_t)(n + 1) * sizeof(Py_UCS4));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        w->scratch = p;
        w->scratch_len = n + 1;
    }
    if (n && PyUnicode_AsUCS4(s, w->scratch, w->scratch_len, 0) == NULL)
        return -1;
    *astral = 0;
    for (i = 0; i < n; i++)
        if (w->scratch[i] > 0xFFFF) {
            *astral = 1;
            break;
        }
    return n;
}

/* Append a QString (length + UTF-16, surrogates passed through).  1: too long for a 32-bit
 * size (the caller falls back), 0: written, -1: error. */
static int put_string(WCtx *w, PyObject *s)
{
    int astral;
    Py_ssize_t n = to_ucs4(w, s, &astral), i, units = 0, nbytes;
    unsigned char *p;
    if (n < 0)
        return -1;
    for (i = 0; i < n; i++)
        units += w->scratch[i] > 0xFFFF ? 2 : 1;
    nbytes = 2 * units;
    if ((uint64_t)nbytes >= EXTENDED_SIZE)
        return 1;
    p = grow(w->ba, 4 + nbytes);
    if (p == NULL)
        return -1;
    put_u32(p, (uint32_t)nbytes, w->little);
    p += 4;
    for (i = 0; i < n; i++) {
        Py_UCS4 c = w->scratch[i];
        unsigned u[2], k, m = 1;
        if (c > 0xFFFF) {
            c -= 0x10000;
            u[0] = 0xD800 | (c >> 10);
            u[1] = 0xDC00 | (c & 0x3FF);
            m = 2;
        } else {
            u[0] = c;
        }
        for (k = 0; k < m; k++) {
            p[w->little ? 0 : 1] = (unsigned char)(u[k] & 0xFF);
            p[w->little ? 1 : 0] = (unsigned char)(u[k] >> 8);
            p += 2;
        }
    }
    return 0;
}

static int put_head(WCtx *w, uint32_t tid)
{
    unsigned char *p = grow(w->ba, 5);
    if (p == NULL)
        return -1;
    put_u32(p, tid, w->little);
    p[4] = 0;
    return 0;
}

static int put_variant(WCtx *w, PyObject *v, int depth);

static int call_wfallback(WCtx *w, PyObject *v, int depth)
{
    PyObject *r = PyObject_CallFunction(w->fallback, "Oi", v, depth);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Values of keys (a list) from mapping, each preceded by its key. */
static int put_pairs(WCtx *w, PyObject *keys, PyObject *mapping, int depth)
{
    Py_ssize_t n = PyList_Size(keys), i;
    if (n < 0)
        return -1;
    for (i = 0; i < n; i++) {
        PyObject *k = PyList_GetItem(keys, i), *v;
        int rc;
        if (k == NULL)
            return -1;
        if (!PyUnicode_CheckExact(k)) {
            PyErr_SetString(PyExc_TypeError, "keys must be str"); /* the caller checks */
            return -1;
        }
        rc = put_string(w, k);
        if (rc < 0 || (rc > 0 && call_wfallback(w, k, -1) < 0)) /* -1: write it as a QString */
            return -1;
        v = PyObject_GetItem(mapping, k);
        if (v == NULL)
            return -1;
        rc = put_variant(w, v, depth);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A dict value: its keys sorted as Qt does, if that is plain (all str keys, none needing
 * surrogate pairs, none too long); 1 if not (the caller falls back), 0 written, -1 error. */
static int put_dict(WCtx *w, PyObject *d, int depth)
{
    PyObject *keys = PyDict_Keys(d);
    Py_ssize_t n, i;
    unsigned char *p;
    int rc = 1;
    if (keys == NULL)
        return -1;
    n = PyList_Size(keys);
    for (i = 0; i < n; i++) {
        PyObject *k = PyList_GetItem(keys, i);
        int astral;
        if (!PyUnicode_CheckExact(k) || to_ucs4(w, k, &astral) < 0 || astral ||
            PyUnicode_GetLength(k) >= (Py_ssize_t)(EXTENDED_SIZE / 4))
            goto done;
    }
    if (PyList_Sort(keys) < 0)
        goto done;
    if (w->descending && PyList_Reverse(keys) < 0)
        goto done;
    p = grow(w->ba, 9);
    if (p == NULL) {
        rc = -1;
        goto done;
    }
    put_u32(p, 8, w->little);
    p[4] = 0;
    put_u32(p + 5, (uint32_t)n, w->little);
    rc = put_pairs(w, keys, d, depth + 1);
done:
    if (rc > 0)
        PyErr_Clear();
    Py_DECREF(keys);
    return rc;
}

static int put_items(WCtx *w, PyObject *seq, int depth)
{
    Py_ssize_t n = PySequence_Size(seq), i;
    if (n < 0)
        return -1;
    for (i = 0; i < n; i++) {
        PyObject *v = PySequence_GetItem(seq, i);
        int rc;
        if (v == NULL)
            return -1;
        rc = put_variant(w, v, depth);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int put_variant(WCtx *w, PyObject *v, int depth)
{
    unsigned char *p;
    if (PyUnicode_CheckExact(v)) {
        Py_ssize_t mark = PyByteArray_Size(w->ba);
        int rc;
        if (put_head(w, 10) < 0)
            return -1;
        rc = put_string(w, v);
        if (rc <= 0)
            return rc;
        if (PyByteArray_Resize(w->ba, mark) < 0) /* too long: the pure writer decides */
            return -1;
        return call_wfallback(w, v, depth);
    }
    if (PyBool_Check(v)) {
        if ((p = grow(w->ba, 6)) == NULL)
            return -1;
        put_u32(p, 1, w->little);
        p[4] = 0;
        p[5] = v == Py_True;
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (!overflow && x >= INT32_MIN && x <= INT32_MAX) {
            if ((p = grow(w->ba, 9)) == NULL)
                return -1;
            put_u32(p, 2, w->little);
            p[4] = 0;
            put_u32(p + 5, (uint32_t)(int32_t)x, w->little);
            return 0;
        }
        return call_wfallback(w, v, depth);
    }
    if (PyFloat_CheckExact(v) && w->fallback != NULL) {
        double d = PyFloat_AsDouble(v);
        uint64_t u;
        if ((p = grow(w->ba, 13)) == NULL)
            return -1;
        memcpy(&u, &d, 8);
        put_u32(p, 6, w->little);
        p[4] = 0;
        put_u64(p + 5, u, w->little);
        return 0;
    }
    if ((PyDict_CheckExact(v) || PyList_CheckExact(v)) &&
        (depth + 1 > w->max_depth || depth + 1 > MAX_C_DEPTH))
        return call_wfallback(w, v, depth);
    if (PyDict_CheckExact(v)) {
        Py_ssize_t mark = PyByteArray_Size(w->ba);
        int rc = put_dict(w, v, depth);
        if (rc <= 0)
            return rc;
        if (PyByteArray_Resize(w->ba, mark) < 0)
            return -1;
        return call_wfallback(w, v, depth);
    }
    if (PyList_CheckExact(v)) {
        Py_ssize_t n = PyList_Size(v);
        if ((uint64_t)n >= EXTENDED_SIZE)
            return call_wfallback(w, v, depth);
        if ((p = grow(w->ba, 9)) == NULL)
            return -1;
        put_u32(p, 9, w->little);
        p[4] = 0;
        put_u32(p + 5, (uint32_t)n, w->little);
        return put_items(w, v, depth + 1);
    }
    return call_wfallback(w, v, depth);
}

/* write_strings(ba, seq, little) -> True when written (all items str or None, none too long),
 * False with nothing written otherwise. */
static PyObject *write_strings(PyObject *self, PyObject *args)
{
    WCtx w;
    PyObject *seq;
    Py_ssize_t n, i, mark;
    (void)self;
    memset(&w, 0, sizeof w);
    if (!PyArg_ParseTuple(args, "O!Op", &PyByteArray_Type, &w.ba, &seq, &w.little))
        return NULL;
    n = PySequence_Size(seq);
    if (n < 0)
        return NULL;
    mark = PyByteArray_Size(w.ba);
    for (i = 0; i < n; i++) {
        PyObject *s = PySequence_GetItem(seq, i);
        int rc;
        unsigned char *p;
        if (s == NULL)
            goto fail;
        if (s == Py_None) {
            Py_DECREF(s);
            if ((p = grow(w.ba, 4)) == NULL)
                goto fail;
            put_u32(p, NULL_SIZE, w.little);
            continue;
        }
        rc = PyUnicode_CheckExact(s) ? put_string(&w, s) : 1;
        Py_DECREF(s);
        if (rc < 0)
            goto fail;
        if (rc > 0) {
            PyMem_Free(w.scratch);
            if (PyByteArray_Resize(w.ba, mark) < 0)
                return NULL;
            Py_RETURN_FALSE;
        }
    }
    PyMem_Free(w.scratch);
    Py_RETURN_TRUE;
fail:
    PyMem_Free(w.scratch);
    return NULL;
}

/* write_variants(what, ba, obj, keys, little, descending, depth, max_depth, fallback)
 * what 0: obj is one QVariant value; 1: keys (a list, in order) and their values in the
 * mapping obj; 3: obj is a sequence of values.  double precision only (the caller checks). */
static PyObject *write_variants(PyObject *self, PyObject *args)
{
    WCtx w;
    PyObject *obj, *keys;
    int what, depth, rc;
    (void)self;
    memset(&w, 0, sizeof w);
    if (!PyArg_ParseTuple(args, "iO!OOppiiO", &what, &PyByteArray_Type, &w.ba, &obj, &keys,
                          &w.little, &w.descending, &depth, &w.max_depth, &w.fallback))
        return NULL;
    if (what == 0)
        rc = put_variant(&w, obj, depth);
    else if (what == 1) {
        if (!PyList_Check(keys)) {
            PyErr_SetString(PyExc_TypeError, "keys must be a list");
            return NULL;
        }
        rc = put_pairs(&w, keys, obj, depth);
    } else if (what == 3)
        rc = put_items(&w, obj, depth);
    else {
        PyErr_SetString(PyExc_ValueError, "bad request");
        rc = -1;
    }
    PyMem_Free(w.scratch);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"read_strings", read_strings, METH_VARARGS,
     "read_strings(data, pos, n, little) -> (list, end), or None if an item is not regular"},
    {"read_variants", read_variants, METH_VARARGS,
     "read_variants(what, data, pos, n, little, single, unwrap, depth, max_depth, qvariant, "
     "fallback) -> (value, end)"},
    {"png_unfilter", png_unfilter, METH_VARARGS,
     "png_unfilter(raw, out, y0, rowbytes, bpp) -> rows written"},
    {"write_strings", write_strings, METH_VARARGS,
     "write_strings(ba, seq, little) -> True if written, False (nothing written) if not plain"},
    {"write_variants", write_variants, METH_VARARGS,
     "write_variants(what, ba, obj, keys, little, descending, depth, max_depth, fallback)"},
    {"new_bytearray", new_bytearray, METH_O, "new_bytearray(n) -> an unfilled bytearray"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "qshm_compat._codec",
    "C inner loops for qshm_compat.datastream (the pure-Python codec is the specification).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__codec(void)
{
    return PyModule_Create(&module);
}
