/*
 * Exact order statistics of the rows of a float64 matrix, by counting.
 *
 * edgemon.features._order calls select_rows() for the medians, quartiles
 * and extremes of sample windows and amplitude spectra.  It does in C what
 * the module's "histogram" method does with numpy calls, one row at a time:
 *
 *   1. one pass finds the row's minimum and maximum;
 *   2. one pass puts each value in one of B equal buckets of [min, max],
 *      bucket = (unsigned) ((x - min) * (B / (max - min))), and counts them;
 *   3. the cumulative counts locate the bucket of each requested rank;
 *   4. one pass copies the values of those buckets out, and each bucket's
 *      few values are sorted to read the ranks off.
 *
 * The result is exact: the bucket never decreases as x grows, because IEEE
 * subtraction, multiplication by a positive number and truncation each
 * preserve order, so every value of a bucket is at least every value of
 * the buckets below it.  The build passes -ffp-contract=off so that no
 * fused multiply-add changes the rounding.  Every pass is a plain loop
 * whose branches the CPU predicts, unlike a quickselect's comparisons.
 *
 * A row containing NaN gets NaN for every position.  A row whose span or
 * scale is not finite (Inf in the row, a subnormal span) is sorted whole.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Groups of at most this many values are sorted by insertion. */
#define INSERTION_MAX 32

static int
compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static void
sort_doubles(double *values, Py_ssize_t n)
{
    if (n > INSERTION_MAX) {
        qsort(values, (size_t)n, sizeof(double), compare_doubles);
        return;
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        double value = values[i];
        Py_ssize_t j = i - 1;
        while (j >= 0 && values[j] > value) {
            values[j + 1] = values[j];
            j--;
        }
        values[j + 1] = value;
    }
}

/* Scratch memory for rows of n values, reused from row to row. */
typedef struct {
    Py_ssize_t n_buckets;
    uint32_t *bucket_of; /* n: each value's bucket */
    uint32_t *counts;    /* n_buckets: values per bucket */
    int32_t *group_of;   /* n_buckets: 1 + group of a target bucket, else 0 */
    double *grouped;     /* n: the values of the target buckets, by group */
} Scratch;

static void
select_row(const double *row, Py_ssize_t n, const int64_t *positions, Py_ssize_t n_positions,
           double *out, Scratch *scratch)
{
    double lowest = row[0];
    double highest = row[0];
    int has_nan = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double value = row[i];
        has_nan |= value != value;
        lowest = value < lowest ? value : lowest;
        highest = value > highest ? value : highest;
    }
    if (has_nan) {
        for (Py_ssize_t k = 0; k < n_positions; k++) {
            out[k] = NAN;
        }
        return;
    }
    if (lowest == highest) {
        for (Py_ssize_t k = 0; k < n_positions; k++) {
            out[k] = lowest;
        }
        return;
    }

    const Py_ssize_t n_buckets = scratch->n_buckets;
    const double span = highest - lowest;
    const double scale = (double)n_buckets / span;
    double *grouped = scratch->grouped;
    if (!isfinite(span) || !isfinite(scale)) {
        memcpy(grouped, row, (size_t)n * sizeof(double));
        sort_doubles(grouped, n);
        for (Py_ssize_t k = 0; k < n_positions; k++) {
            out[k] = grouped[positions[k]];
        }
        return;
    }

    uint32_t *bucket_of = scratch->bucket_of;
    uint32_t *counts = scratch->counts;
    const uint32_t last = (uint32_t)(n_buckets - 1);
    memset(counts, 0, (size_t)n_buckets * sizeof(uint32_t));
    for (Py_ssize_t i = 0; i < n; i++) {
        /* (x - min) * scale is in [0, B(1 + eps)]; the maximum may round to B. */
        uint32_t bucket = (uint32_t)((row[i] - lowest) * scale);
        bucket = bucket > last ? last : bucket;
        bucket_of[i] = bucket;
        counts[bucket]++;
    }

    /* The bucket of each position, its rank in the bucket, and each distinct
       target bucket's place in `grouped`.  Positions ascend, so one sweep. */
    int32_t *group_of = scratch->group_of;
    uint32_t target_bucket[16];
    Py_ssize_t rank_in_bucket[16];
    Py_ssize_t group_start[16];
    Py_ssize_t group_fill[16];
    Py_ssize_t n_groups = 0;
    Py_ssize_t next_start = 0;
    Py_ssize_t below = 0; /* values in the buckets before `bucket` */
    uint32_t bucket = 0;
    for (Py_ssize_t k = 0; k < n_positions; k++) {
        while (below + (Py_ssize_t)counts[bucket] <= positions[k]) {
            below += counts[bucket];
            bucket++;
        }
        target_bucket[k] = bucket;
        rank_in_bucket[k] = positions[k] - below;
        if (group_of[bucket] == 0) {
            /* Groups are created in ascending bucket order, each after the last. */
            group_start[n_groups] = next_start;
            group_fill[n_groups] = 0;
            next_start += counts[bucket];
            n_groups++;
            group_of[bucket] = (int32_t)n_groups;
        }
    }

    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t group = group_of[bucket_of[i]];
        if (group) {
            grouped[group_start[group - 1] + group_fill[group - 1]++] = row[i];
        }
    }
    for (Py_ssize_t g = 0; g < n_groups; g++) {
        sort_doubles(grouped + group_start[g], group_fill[g]);
    }
    for (Py_ssize_t k = 0; k < n_positions; k++) {
        int32_t group = group_of[target_bucket[k]];
        out[k] = grouped[group_start[group - 1] + rank_in_bucket[k]];
    }
    for (Py_ssize_t k = 0; k < n_positions; k++) {
        group_of[target_bucket[k]] = 0;
    }
}

static int
get_buffer(PyObject *object, Py_buffer *view, int flags, const char *name, int ndim,
           const char *formats)
{
    if (PyObject_GetBuffer(object, view, flags | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    const char *format = view->format[0] == '<' || view->format[0] == '=' ? view->format + 1
                                                                          : view->format;
    if (view->ndim != ndim || strlen(format) != 1 || strchr(formats, format[0]) == NULL
        || (format[0] != 'd' && view->itemsize != 8)) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a C-contiguous %d-D array of %s, got format '%s' and %d dimensions",
                     name, ndim, formats[0] == 'd' ? "float64" : "int64", view->format,
                     view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(select_rows_doc,
             "select_rows(values, positions, out)\n"
             "--\n\n"
             "Write the order statistics of each row of ``values`` into ``out``.\n\n"
             "``values`` is a C-contiguous float64 array of shape (n_rows, n), n >= 1;\n"
             "``positions`` a C-contiguous int64 array of at most 16 ascending, distinct\n"
             "positions in [0, n); ``out`` a writable C-contiguous float64 array of shape\n"
             "(n_rows, len(positions)).  ``out[r, k]`` becomes the value at position\n"
             "``positions[k]`` of row r sorted, or NaN for every k when row r contains NaN.");

static PyObject *
select_rows(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *values_object, *positions_object, *out_object;
    if (!PyArg_ParseTuple(args, "OOO:select_rows", &values_object, &positions_object,
                          &out_object)) {
        return NULL;
    }
    Py_buffer values, positions, out;
    if (get_buffer(values_object, &values, PyBUF_SIMPLE, "values", 2, "d") < 0) {
        return NULL;
    }
    if (get_buffer(positions_object, &positions, PyBUF_SIMPLE, "positions", 1, "ql") < 0) {
        PyBuffer_Release(&values);
        return NULL;
    }
    if (get_buffer(out_object, &out, PyBUF_WRITABLE, "out", 2, "d") < 0) {
        PyBuffer_Release(&values);
        PyBuffer_Release(&positions);
        return NULL;
    }

    PyObject *result = NULL;
    const Py_ssize_t n_rows = values.shape[0];
    const Py_ssize_t n = values.shape[1];
    const Py_ssize_t n_positions = positions.shape[0];
    const int64_t *position = (const int64_t *)positions.buf;
    if (n < 1 || n_positions < 1 || n_positions > 16) {
        PyErr_Format(PyExc_ValueError,
                     "need n >= 1 and 1 to 16 positions, got n=%zd and %zd positions", n,
                     n_positions);
        goto done;
    }
    for (Py_ssize_t k = 0; k < n_positions; k++) {
        if (position[k] < 0 || position[k] >= n || (k > 0 && position[k] <= position[k - 1])) {
            PyErr_Format(PyExc_ValueError,
                         "positions must ascend strictly within [0, %zd), got %lld at index %zd",
                         n, (long long)position[k], k);
            goto done;
        }
    }
    if (out.shape[0] != n_rows || out.shape[1] != n_positions) {
        PyErr_Format(PyExc_ValueError, "out must have shape (%zd, %zd), got (%zd, %zd)", n_rows,
                     n_positions, out.shape[0], out.shape[1]);
        goto done;
    }

    Scratch scratch;
    scratch.n_buckets = n < 16 ? 16 : n;
    scratch.bucket_of = malloc((size_t)n * sizeof(uint32_t));
    scratch.counts = malloc((size_t)scratch.n_buckets * sizeof(uint32_t));
    scratch.group_of = calloc((size_t)scratch.n_buckets, sizeof(int32_t));
    scratch.grouped = malloc((size_t)n * sizeof(double));
    if (!scratch.bucket_of || !scratch.counts || !scratch.group_of || !scratch.grouped) {
        PyErr_NoMemory();
    }
    else {
        const double *rows = (const double *)values.buf;
        double *results = (double *)out.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < n_rows; r++) {
            select_row(rows + r * n, n, position, n_positions, results + r * n_positions,
                       &scratch);
        }
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    free(scratch.bucket_of);
    free(scratch.counts);
    free(scratch.group_of);
    free(scratch.grouped);

done:
    PyBuffer_Release(&values);
    PyBuffer_Release(&positions);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"select_rows", select_rows, METH_VARARGS, select_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "edgemon.features._select",
    .m_doc = "Exact order statistics of float64 rows by counting (see _select.c).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__select(void)
{
    return PyModule_Create(&module);
}
