/*
 * posttrain.platform.dedup._fastnorm: the ASCII path of dedup's normalization in one
 * pass over the bytes, with the word hashes made on the way; and the word n-gram
 * (shingle) hashes in one pass over the word hashes.
 *
 * It computes exactly what posttrain/platform/dedup/_ascii.py computes with numpy
 * (fold case and whitespace, collapse whitespace runs, cut trailing space, cut words at
 * separators) followed by minhash.word_hashes (XXH3-64 of every word), without the
 * intermediate arrays, and without the GIL, so fingerprint threads run on every core.
 * The byte tables come from Python (_ascii.FOLD and _ascii.WORD), which stay the one
 * definition of the rules; tests check both paths agree byte for byte.
 *
 * Build: an optional setuptools extension (see setup.py). Without a C compiler the
 * numpy path runs instead, with the same results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include "xxhash.h"

typedef struct {
    const uint8_t *data;
    const int64_t *offsets; /* texts + 1 entries, relative to data */
    const uint8_t *fold;    /* 256 entries: the byte after case and whitespace folding */
    const uint8_t *is_word; /* 256 entries: 1 for bytes that belong to words */
    uint8_t *forms;         /* as many bytes as data: the normal forms, flat */
    int64_t *form_offsets;  /* texts + 1 */
    uint64_t *hashes;       /* (data bytes + texts) / 2 + 1 word hashes, flat */
    int64_t *word_offsets;  /* texts + 1 */
} Job;

/* One text: its normal form appended at forms[*out], its word hashes at hashes[*words]. */
static void normalize_text(const Job *job, Py_ssize_t text, Py_ssize_t *out, Py_ssize_t *words)
{
    const uint8_t *src = job->data + job->offsets[text];
    const uint8_t *const end = job->data + job->offsets[text + 1];
    const uint8_t *const fold = job->fold, *const is_word = job->is_word;
    uint8_t *const begin = job->forms + *out;
    uint8_t *dst = begin, *word = NULL;
    uint64_t *hash = job->hashes + *words;
    int after_space = 1; /* a space opening the text is dropped, like one after a space */
    for (; src < end; src++) {
        const uint8_t byte = fold[*src];
        if (is_word[byte]) {
            if (word == NULL)
                word = dst;
        } else if (word != NULL) {
            *hash++ = XXH3_64bits(word, (size_t)(dst - word));
            word = NULL;
        }
        /* Branch-free: always write, keep it unless it is a space after a space. */
        const int is_space = byte == ' ';
        *dst = byte;
        dst += !(is_space & after_space);
        after_space = is_space;
    }
    if (word != NULL)
        *hash++ = XXH3_64bits(word, (size_t)(dst - word));
    if (dst > begin && dst[-1] == ' ')
        dst--; /* the trailing space */
    *out += dst - begin;
    *words = hash - job->hashes;
}

/* Offsets that index a buffer of `limit` items: from >= 0, never decreasing, to <= limit.
 * Checked before the GIL is released: the loops trust them. */
static int valid_offsets(const int64_t *offs, Py_ssize_t texts, Py_ssize_t limit, const char *what)
{
    if (offs[0] < 0 || offs[texts] > limit) {
        PyErr_Format(PyExc_ValueError, "offsets point outside %s", what);
        return 0;
    }
    for (Py_ssize_t i = 0; i < texts; i++) {
        if (offs[i] > offs[i + 1]) {
            PyErr_SetString(PyExc_ValueError, "offsets must not decrease");
            return 0;
        }
    }
    return 1;
}

static int writable(Py_buffer *view, Py_ssize_t needed, const char *name)
{
    if (view->len < needed) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, %zd are needed", name, view->len,
                     needed);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(normalize_ascii_doc,
             "normalize_ascii(data, offsets, fold, is_word, forms, form_offsets, hashes, "
             "word_offsets) -> (form_bytes, words)\n\n"
             "Normal forms and XXH3-64 word hashes of the texts data[offsets[i]:offsets[i+1]] "
             "(offsets: int64), written into the given buffers. Returns how many bytes of "
             "forms and how many hashes were written.");

static PyObject *normalize_ascii(PyObject *self, PyObject *args)
{
    Py_buffer data, offsets, fold, is_word, forms, form_offsets, hashes, word_offsets;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*w*", &data, &offsets, &fold, &is_word, &forms,
                          &form_offsets, &hashes, &word_offsets))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t texts = offsets.len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (texts < 0 || fold.len != 256 || is_word.len != 256) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold at least one int64 and the "
                                          "tables 256 bytes each");
        goto done;
    }
    const int64_t *offs = offsets.buf;
    if (!valid_offsets(offs, texts, data.len, "data"))
        goto done;
    const Py_ssize_t index_bytes = (texts + 1) * (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t max_words = (data.len + texts) / 2 + 1;
    if (!writable(&forms, data.len, "forms") ||
        !writable(&form_offsets, index_bytes, "form_offsets") ||
        !writable(&hashes, max_words * (Py_ssize_t)sizeof(uint64_t), "hashes") ||
        !writable(&word_offsets, index_bytes, "word_offsets"))
        goto done;
    Job job = {data.buf,  offs,           fold.buf,   is_word.buf,
               forms.buf, form_offsets.buf, hashes.buf, word_offsets.buf};
    Py_ssize_t out = 0, words = 0;
    Py_BEGIN_ALLOW_THREADS
    job.form_offsets[0] = 0;
    job.word_offsets[0] = 0;
    for (Py_ssize_t text = 0; text < texts; text++) {
        normalize_text(&job, text, &out, &words);
        job.form_offsets[text + 1] = out;
        job.word_offsets[text + 1] = words;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", out, words);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&fold);
    PyBuffer_Release(&is_word);
    PyBuffer_Release(&forms);
    PyBuffer_Release(&form_offsets);
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&word_offsets);
    return result;
}

/* minhash._mix: the MurmurHash3 64-bit finalizer. */
static inline uint64_t mix(uint64_t value)
{
    value ^= value >> 33;
    value *= 0xFF51AFD7ED558CCDULL;
    value ^= value >> 33;
    value *= 0xC4CEB9FE1A85EC53ULL;
    value ^= value >> 33;
    return value;
}

PyDoc_STRVAR(shingle_hashes_doc,
             "shingle_hashes(hashes, offsets, ngram, multiplier, shingles, shingle_offsets) "
             "-> count\n\n"
             "minhash.shingle_hashes in one pass: the hashes of the word ngram-grams of every "
             "text (a text of fewer words: one of all its words), written into shingles with "
             "per-text offsets. Returns how many were written.");

static PyObject *shingle_hashes(PyObject *self, PyObject *args)
{
    Py_buffer hashes, offsets, shingles, shingle_offsets;
    Py_ssize_t ngram;
    unsigned long long multiplier;
    if (!PyArg_ParseTuple(args, "y*y*nKw*w*", &hashes, &offsets, &ngram, &multiplier, &shingles,
                          &shingle_offsets))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t texts = offsets.len / (Py_ssize_t)sizeof(int64_t) - 1;
    const Py_ssize_t words = hashes.len / (Py_ssize_t)sizeof(uint64_t);
    const int64_t *offs = offsets.buf;
    if (texts < 0 || ngram < 1) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold at least one int64, ngram >= 1");
        goto done;
    }
    if (!valid_offsets(offs, texts, words, "hashes"))
        goto done;
    /* At most one shingle per word. */
    if (!writable(&shingles, (offs[texts] - offs[0]) * (Py_ssize_t)sizeof(uint64_t), "shingles") ||
        !writable(&shingle_offsets, (texts + 1) * (Py_ssize_t)sizeof(int64_t), "shingle_offsets"))
        goto done;
    const uint64_t *h = hashes.buf;
    uint64_t *out = shingles.buf;
    int64_t *out_offsets = shingle_offsets.buf;
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    out_offsets[0] = 0;
    for (Py_ssize_t text = 0; text < texts; text++) {
        const int64_t start = offs[text], length = offs[text + 1] - start;
        /* A text shorter than ngram has one window: all of its words. */
        const int64_t width = length < ngram ? length : ngram;
        for (int64_t first = start; length > 0 && first + width <= start + length; first++) {
            uint64_t window = h[first];
            for (int64_t i = 1; i < width; i++)
                window = window * multiplier + h[first + i];
            out[count++] = mix(window);
        }
        out_offsets[text + 1] = count;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(count);
done:
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&shingles);
    PyBuffer_Release(&shingle_offsets);
    return result;
}

static PyMethodDef methods[] = {
    {"normalize_ascii", normalize_ascii, METH_VARARGS, normalize_ascii_doc},
    {"shingle_hashes", shingle_hashes, METH_VARARGS, shingle_hashes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastnorm",
    "The ASCII normalization of dedup in C (see csrc/fastnorm.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__fastnorm(void) { return PyModule_Create(&module); }
