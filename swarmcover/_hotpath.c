/* An agent's hot path in C: the calls its control tick makes, one each instead of dozens of
 * numpy calls. An agent process wakes every control period with cold caches, where each numpy
 * call costs tens of microseconds (benchmarks/tick_cost.py); these are optional (built at install
 * when a C compiler is present) and each has a numpy twin that tests check it against.
 *
 * velocity(): one agent's blob velocity, swarmcover.local.local_velocity's "c" kernel. The same
 * sum as the numpy kernel (swarmcover/local.py), in the same order: the agent itself, its
 * neighbours within the radius R = cutoff * sqrt(2) * eps, then (walls given) the mirror images of
 * those and of itself across the walls (the reflection group) that lie within R:
 *
 *   v = sum_j m_j phi(x - x_j) [ (x - x_j) W(mid) / (2 eps^2) - grad W(mid) / 2 ],
 *   phi(r) = (4 pi eps^2)^(-d/2) exp(-|r|^2 / (4 eps^2)),  mid = (x + x_j) / 2,
 *
 * with W, grad W sampled from cubic B-spline coefficients (points past the grid clamped to its
 * last cell, as the numpy and numba kernels do).
 *
 * rows_ok(): whether relayed beacon rows pass swarmcover.protocol's checks (the numpy path then
 * names what is wrong). table_update(): the neighbour table's usual tick, in place.
 * nearest2(), farthest2(): the squared distance to the nearest or the farthest of some points (the
 * separation barrier's "nobody within reach", the loss watch's radio reach).
 * phase_top(): of neighbours' schedule phases, the one furthest ahead (PhaseClock.hear_many).
 * command(): an agent's usual command from its neighbour table in one call: the live rows, the
 * mass cap, velocity()'s sum, the separation barrier and the chain of swarmcover.control.compose
 * (None where a neighbour coincides: the numpy path breaks the tie by ids).
 *
 * Arrays arrive through the buffer protocol (float64; the 2-D and 3-D ones C-contiguous; shapes
 * are checked here and a ValueError names the argument). No numpy C API: the module builds
 * without numpy's headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#define MAXD 2

typedef struct {
    double sign, off;
    int moved;
} Transform;

typedef struct {
    const double *coef;
    Py_ssize_t n[MAXD];
    double origin[MAXD], inv_h[MAXD];
    int d;
} Field;

static int is_f64(const Py_buffer *b) {
    const char *f = b->format;
    if (f == NULL) return 0;
    if (*f == '<' || *f == '=' || *f == '@') f++;
    return f[0] == 'd' && f[1] == '\0';
}

static int is_i64(const Py_buffer *b) {
    const char *f = b->format;
    if (f == NULL || b->itemsize != 8) return 0;
    if (*f == '<' || *f == '=' || *f == '@') f++;
    return (f[0] == 'q' || f[0] == 'l') && f[1] == '\0';
}

/* A buffer of ndim dimensions (shape[i] < 0: any length) of float64 (or, with INT64 in flags,
   int64), C-contiguous unless it is a vector (ndim 1: any stride, read with vec()); WRITABLE in
   flags: one this code writes into. */
#define INT64 (1 << 30)
static int get_array_as(PyObject *obj, const char *name, Py_buffer *b, int ndim, const Py_ssize_t *shape, int flags) {
    const char *type = flags & INT64 ? "int64" : "float64";
    const int writable = flags & PyBUF_WRITABLE;
    if (PyObject_GetBuffer(obj, b, PyBUF_STRIDES | PyBUF_FORMAT | writable) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be a %s%s array", name, writable ? "writable " : "", type);
        return -1;
    }
    if (ndim > 1 && b->ndim == ndim && !PyBuffer_IsContiguous(b, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous %s array", name, type);
        PyBuffer_Release(b);
        return -1;
    }
    if (!(flags & INT64 ? is_i64(b) : is_f64(b)) || b->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be a %s array of %d dimension(s)", name, type, ndim);
        PyBuffer_Release(b);
        return -1;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] >= 0 && b->shape[i] != shape[i]) {
            PyErr_Format(PyExc_ValueError, "%s has length %zd along axis %d, expected %zd", name, b->shape[i],
                         i, shape[i]);
            PyBuffer_Release(b);
            return -1;
        }
    }
    return 0;
}

static int get_array(PyObject *obj, const char *name, Py_buffer *b, int ndim, const Py_ssize_t *shape) {
    return get_array_as(obj, name, b, ndim, shape, 0);
}

/* element i of a 1-D buffer */
static inline double vec(const Py_buffer *b, Py_ssize_t i) {
    return *(const double *)((const char *)b->buf + i * b->strides[0]);
}

static void weights(double t, double w[4]) {
    double t2 = t * t, t3 = t2 * t, u = 1.0 - t;
    w[0] = u * u * u / 6.0;
    w[1] = (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0;
    w[2] = (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0;
    w[3] = t3 / 6.0;
}

static void locate(double p, double o, double ih, Py_ssize_t n, Py_ssize_t *i, double *t) {
    double u = (p - o) * ih;
    double f = floor(u);
    *t = u - f;
    if (f < 1.0) {
        *i = 1;
        *t = 0.0;
    } else if (f > (double)(n - 3)) {
        *i = n - 3;
        *t = 1.0;
    } else {
        *i = (Py_ssize_t)f;
    }
}

/* out[0] = W, out[1 + a] = dW/dx_a at p */
static void sample(const Field *fd, const double *p, double *out) {
    Py_ssize_t i, j;
    double t, s, a[4], b[4];
    const int c = fd->d + 1;
    locate(p[0], fd->origin[0], fd->inv_h[0], fd->n[0], &i, &t);
    weights(t, a);
    for (int k = 0; k < c; k++) out[k] = 0.0;
    if (fd->d == 1) {
        for (int q = 0; q < 4; q++)
            for (int k = 0; k < c; k++) out[k] += a[q] * fd->coef[(i - 1 + q) * c + k];
        return;
    }
    locate(p[1], fd->origin[1], fd->inv_h[1], fd->n[1], &j, &s);
    weights(s, b);
    for (int q = 0; q < 4; q++) {
        const double *row = fd->coef + ((i - 1 + q) * fd->n[1] + (j - 1)) * c;
        double acc[MAXD + 1] = {0.0, 0.0, 0.0};
        for (int r = 0; r < 4; r++)
            for (int k = 0; k < c; k++) acc[k] += b[r] * row[r * c + k];
        for (int k = 0; k < c; k++) out[k] += a[q] * acc[k];
    }
}

typedef struct {
    const double *x;
    const Field *fd;
    double norm, inv4e2, inv2e2;
    double v[MAXD];
    int d;
} Sum;

static void add_pair(Sum *s, const double *p, double m) {
    double dx[MAXD], mid[MAXD], f[MAXD + 1], r2 = 0.0;
    for (int a = 0; a < s->d; a++) {
        dx[a] = s->x[a] - p[a];
        mid[a] = 0.5 * (s->x[a] + p[a]);
        r2 += dx[a] * dx[a];
    }
    sample(s->fd, mid, f);
    double g = m * s->norm * exp(-r2 * s->inv4e2);
    for (int a = 0; a < s->d; a++) s->v[a] += g * (dx[a] * (f[0] * s->inv2e2) - 0.5 * f[1 + a]);
}

/* The transforms p -> sign * p + off along one axis that map the box [lo, hi] to within
   radius of x (the reflection group: p + 2kL and 2 lo - p + 2kL). */
static Py_ssize_t axis_transforms(double lo, double hi, double x, double radius, Transform **out) {
    double size = hi - lo;
    Py_ssize_t kmax = (Py_ssize_t)ceil((radius + size) / (2.0 * size)) + 1;
    Transform *t = PyMem_Malloc(sizeof(Transform) * (size_t)(2 * (2 * kmax + 1)));
    if (t == NULL) return -1;
    Py_ssize_t n = 0;
    for (Py_ssize_t k = -kmax; k <= kmax; k++) {
        double s = 2.0 * (double)k * size;
        double ilo = lo + s, ihi = hi + s;  /* p + 2kL */
        if (fmax(fmax(ilo - x, 0.0), x - ihi) < radius) t[n++] = (Transform){1.0, s, k != 0};
        ilo = lo - size + s, ihi = lo + s;  /* 2 lo - p + 2kL */
        if (fmax(fmax(ilo - x, 0.0), x - ihi) < radius) t[n++] = (Transform){-1.0, 2.0 * lo + s, 1};
    }
    *out = t;
    return n;
}

/* The blob velocity at x (d,) into v (d,) from the sources nb (k, d, C order) with masses
   nbm[j * nbm_stride bytes] and the agent itself (mass), reflected across the walls lo, hi (walls
   set). The sum of velocity() below, in its order. -1 with a Python error set on failure. */
static int law_sum(const double *x, int d, const double *nb, const char *nbm, Py_ssize_t nbm_stride, Py_ssize_t k,
                   double mass, double eps, double cutoff, const Field *fd, int walls, const double *lo,
                   const double *hi, double *v) {
#define NBM(j) (*(const double *)(nbm + (j) * nbm_stride))
    Transform *opts[MAXD] = {NULL, NULL};
    const double radius = cutoff * sqrt(2.0) * eps, r2max = radius * radius;
    Sum s = {.x = x, .fd = fd, .d = d, .v = {0.0, 0.0}};
    s.norm = pow(4.0 * M_PI * eps * eps, -0.5 * (double)d);
    s.inv4e2 = 1.0 / (4.0 * eps * eps);
    s.inv2e2 = 1.0 / (2.0 * eps * eps);
    int status = -1;

    add_pair(&s, x, mass); /* the agent itself is a source too */
    Py_ssize_t *near = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(k + 1));
    if (near == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        double r2 = 0.0;
        for (int a = 0; a < d; a++) {
            double dx = nb[j * d + a] - x[a];
            r2 += dx * dx;
        }
        if (r2 < r2max) {
            near[m++] = j;
            add_pair(&s, nb + j * d, NBM(j));
        }
    }
    if (walls) {
        int close = 0;
        for (int a = 0; a < d; a++) close |= (x[a] - lo[a] < radius) || (hi[a] - x[a] < radius);
        if (close) {
            Py_ssize_t count[MAXD] = {1, 1};
            for (int a = 0; a < d; a++) {
                if (!(hi[a] > lo[a])) {
                    PyErr_SetString(PyExc_ValueError, "each wall pair needs hi > lo");
                    goto done;
                }
                count[a] = axis_transforms(lo[a], hi[a], x[a], radius, &opts[a]);
                if (count[a] < 0) {
                    PyErr_NoMemory();
                    goto done;
                }
            }
            /* every combination of the axes' transforms but the identity, applied to the near
               neighbours and then to the agent itself (the numpy kernel's order) */
            Py_ssize_t c1 = d == 2 ? count[1] : 1;
            for (Py_ssize_t t0 = 0; t0 < count[0]; t0++) {
                for (Py_ssize_t t1 = 0; t1 < c1; t1++) {
                    const Transform *tr[MAXD] = {&opts[0][t0], d == 2 ? &opts[1][t1] : NULL};
                    int moved = 0;
                    for (int a = 0; a < d; a++) moved |= tr[a]->moved;
                    if (!moved) continue;
                    for (Py_ssize_t q = 0; q <= m; q++) {
                        const double *p = q < m ? nb + near[q] * d : x;
                        double img[MAXD], r2 = 0.0;
                        for (int a = 0; a < d; a++) {
                            img[a] = tr[a]->sign * p[a] + tr[a]->off;
                            r2 += (img[a] - x[a]) * (img[a] - x[a]);
                        }
                        if (r2 < r2max) add_pair(&s, img, q < m ? NBM(near[q]) : mass);
                    }
                }
            }
        }
    }
    for (int a = 0; a < d; a++) v[a] = s.v[a];
    status = 0;
done:
    PyMem_Free(near);
    for (int a = 0; a < MAXD; a++) PyMem_Free(opts[a]);
    return status;
#undef NBM
}

/* The field of coef (n_1, ..., n_d, d + 1) from origin, spacing; -1 with a Python error set. */
static int field_of(const Py_buffer *bcoef, const Py_buffer *borig, const Py_buffer *bsp, int d, Field *fd) {
    fd->coef = bcoef->buf;
    fd->d = d;
    for (int a = 0; a < d; a++) {
        fd->n[a] = bcoef->shape[a];
        fd->origin[a] = vec(borig, a);
        double h = vec(bsp, a);
        if (fd->n[a] < 4 || !(h > 0.0)) {
            PyErr_SetString(PyExc_ValueError, "the field needs at least 4 nodes and a positive spacing per axis");
            return -1;
        }
        fd->inv_h[a] = 1.0 / h;
    }
    return 0;
}

static PyObject *floats(const double *v, int d) {
    PyObject *result = PyTuple_New(d);
    for (int a = 0; result != NULL && a < d; a++) {
        PyObject *f = PyFloat_FromDouble(v[a]);
        if (f == NULL) Py_CLEAR(result);
        else PyTuple_SET_ITEM(result, a, f);
    }
    return result;
}

/* eps and cutoff positive, both walls or neither: 0, else -1 with a Python error set */
static int law_args_ok(double eps, double cutoff, PyObject *olo, PyObject *ohi) {
    if (!(eps > 0.0) || !(cutoff > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "eps and cutoff must be positive");
        return -1;
    }
    if ((olo == Py_None) != (ohi == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "give both walls (lo and hi) or neither");
        return -1;
    }
    return 0;
}

/* The law's inputs both velocity() and command() read: x (d,), the field (coef, origin,
   spacing) and the walls lo, hi (both None: none). Release with law_in_release(), also after a
   failure (-1, a Python error set). */
typedef struct {
    Py_buffer x, coef, origin, spacing, lo, hi;
    Field fd;
    double xv[MAXD], lov[MAXD], hiv[MAXD];
    Py_ssize_t d;
    int walls;
} LawIn;

static int law_in(LawIn *in, PyObject *ox, PyObject *ocoef, PyObject *oorigin, PyObject *ospacing, PyObject *olo,
                  PyObject *ohi) {
    memset(in, 0, sizeof *in);
    in->walls = olo != Py_None;
    Py_ssize_t any = -1;
    if (get_array(ox, "x", &in->x, 1, &any) < 0) return -1;
    const Py_ssize_t d = in->d = in->x.shape[0];
    if (d < 1 || d > MAXD) {
        PyErr_Format(PyExc_ValueError, "x must have 1 or 2 coordinates, got %zd", d);
        return -1;
    }
    Py_ssize_t dshape[1] = {d}, cshape[MAXD + 1] = {-1, -1, -1};
    cshape[d] = d + 1;
    if (get_array(ocoef, "coef", &in->coef, (int)d + 1, cshape) < 0) return -1;
    if (get_array(oorigin, "origin", &in->origin, 1, dshape) < 0) return -1;
    if (get_array(ospacing, "spacing", &in->spacing, 1, dshape) < 0) return -1;
    if (in->walls && (get_array(olo, "lo", &in->lo, 1, dshape) < 0 || get_array(ohi, "hi", &in->hi, 1, dshape) < 0))
        return -1;
    if (field_of(&in->coef, &in->origin, &in->spacing, (int)d, &in->fd) < 0) return -1;
    for (int a = 0; a < d; a++) {
        in->xv[a] = vec(&in->x, a);
        in->lov[a] = in->walls ? vec(&in->lo, a) : 0.0;
        in->hiv[a] = in->walls ? vec(&in->hi, a) : 0.0;
    }
    return 0;
}

static void release_all(Py_buffer **all, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (all[i]->obj != NULL) PyBuffer_Release(all[i]);
}

static void law_in_release(LawIn *in) {
    Py_buffer *all[] = {&in->x, &in->coef, &in->origin, &in->spacing, &in->lo, &in->hi};
    release_all(all, sizeof(all) / sizeof(all[0]));
}

static PyObject *velocity(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *ox, *onb, *onbm, *ocoef, *oorigin, *ospacing, *olo, *ohi;
    double mass, eps, cutoff;
    if (!PyArg_ParseTuple(args, "OOdOddOOOOO:velocity", &ox, &onb, &mass, &onbm, &eps, &cutoff, &ocoef, &oorigin,
                          &ospacing, &olo, &ohi))
        return NULL;
    if (law_args_ok(eps, cutoff, olo, ohi) < 0) return NULL;
    LawIn in;
    Py_buffer bnb = {0}, bnbm = {0};
    PyObject *result = NULL;
    double v[MAXD];
    if (law_in(&in, ox, ocoef, oorigin, ospacing, olo, ohi) < 0) goto done;
    Py_ssize_t nb_shape[2] = {-1, in.d};
    if (get_array(onb, "neighbors", &bnb, 2, nb_shape) < 0) goto done;
    Py_ssize_t kshape[1] = {bnb.shape[0]};
    if (get_array(onbm, "neighbor_mass", &bnbm, 1, kshape) < 0) goto done;
    if (law_sum(in.xv, (int)in.d, bnb.buf, bnbm.buf, bnbm.strides[0], kshape[0], mass, eps, cutoff, &in.fd, in.walls,
                in.lov, in.hiv, v) < 0)
        goto done;
    result = floats(v, (int)in.d);
done:;
    Py_buffer *all[] = {&bnb, &bnbm};
    release_all(all, 2);
    law_in_release(&in);
    return result;
}

/* v scaled down to length lim if longer: swarmcover.control.clip_speed */
static void clip(double *v, int d, double lim) {
    double s2 = 0.0;
    for (int a = 0; a < d; a++) s2 += v[a] * v[a];
    double speed = sqrt(s2);
    if (speed > lim)
        for (int a = 0; a < d; a++) v[a] *= lim / speed;
}

/* An agent's usual command from its neighbour table in one call (agents/agent.py, Agent.command):
   the rows heard at or after `since` are the neighbours (in slot order), their masses capped at
   cap when any is above cap (1 + 1e-9) (Hearing.live); then the law (velocity() above) and the
   chain of swarmcover.control.compose: the law's velocity times gain clipped to vmax; where a
   barrier is configured (sep = (r_min, reach radius, speed, cap)), plus its push
   (swarmcover.control.Separation.velocity) clipped; minus the drift (given) clipped. Returns
   (neighbours, capped, command), or None where two neighbours coincide with this agent (closer
   than 1e-9 r_min: the numpy path breaks the tie by their ids). */
static PyObject *command(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *ox, *oheard, *opos, *omass, *ocoef, *oorigin, *ospacing, *olo, *ohi, *odrift;
    PyObject *osep;
    double since, cap, mass, eps, cutoff, gain, vmax, rm = 0.0, rs = 0.0, speed = 0.0, scap = 0.0;
    if (!PyArg_ParseTuple(args, "OOOOddOOOddOOdOddO:command", &ox, &oheard, &opos, &omass, &since, &cap, &ocoef,
                          &oorigin, &ospacing, &mass, &eps, &olo, &ohi, &cutoff, &osep, &gain, &vmax, &odrift))
        return NULL;
    if (law_args_ok(eps, cutoff, olo, ohi) < 0) return NULL;
    const int sep = osep != Py_None;
    if (sep && (!PyTuple_Check(osep) || !PyArg_ParseTuple(osep, "dddd", &rm, &rs, &speed, &scap))) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "sep must be None or (r_min, radius, speed, cap)");
        return NULL;
    }
    const int drift = odrift != Py_None;
    LawIn in;
    Py_buffer bheard = {0}, bpos = {0}, bmass = {0}, bdrift = {0};
    PyObject *result = NULL;
    double *live = NULL;
    if (law_in(&in, ox, ocoef, oorigin, ospacing, olo, ohi) < 0) goto done;
    const Py_ssize_t d = in.d;
    const double *x = in.xv;
    Py_ssize_t any = -1, dshape[1] = {d};
    if (get_array(oheard, "heard", &bheard, 1, &any) < 0) goto done;
    Py_ssize_t n = bheard.shape[0], nshape[1] = {n}, pshape[2] = {n, d};
    if (get_array(opos, "pos", &bpos, 2, pshape) < 0 || get_array(omass, "mass", &bmass, 1, nshape) < 0) goto done;
    if (drift && get_array(odrift, "drift", &bdrift, 1, dshape) < 0) goto done;
    double v[MAXD];
    /* the live rows: positions (m, d) then masses (m,) in one block */
    live = PyMem_Malloc(sizeof(double) * (size_t)((d + 1) * n + 1));
    if (live == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *lp = live, *lm = live + d * n;
    const double *pos = bpos.buf;
    Py_ssize_t m = 0, capped = 0;
    double push[MAXD] = {0.0, 0.0};
    for (Py_ssize_t j = 0; j < n; j++) {
        if (!(vec(&bheard, j) >= since)) continue;
        double diff[MAXD], r2 = 0.0;
        for (int a = 0; a < d; a++) {
            lp[m * d + a] = pos[j * d + a];
            diff[a] = x[a] - pos[j * d + a];
            r2 += diff[a] * diff[a];
        }
        lm[m] = vec(&bmass, j);
        capped += lm[m] > cap * (1.0 + 1e-9);
        m++;
        if (!sep || !(r2 < rs * rs)) continue;
        /* the barrier: s(r) capped, zero from the reach on; along the pair's direction */
        double r = sqrt(r2), s;
        if (r < 1e-9 * rm) {
            result = Py_NewRef(Py_None); /* coincident: the numpy path's tie-break by ids */
            goto done;
        }
        if (r <= rm) s = scap;
        else {
            s = (rs - r) * (rs - r) / ((rs - rm) * (r - rm));
            s = s < scap ? s : scap;
        }
        if (r >= rs) s = 0.0;
        for (int a = 0; a < d; a++) push[a] += (speed * s) * (diff[a] / r);
    }
    if (capped)
        for (Py_ssize_t j = 0; j < m; j++) lm[j] = lm[j] > cap ? cap : lm[j];
    if (law_sum(x, (int)d, lp, (const char *)lm, sizeof(double), m, mass, eps, cutoff, &in.fd, in.walls, in.lov,
                in.hiv, v) < 0)
        goto done;
    for (int a = 0; a < d; a++) v[a] *= gain;
    clip(v, (int)d, vmax);
    if (sep) {
        for (int a = 0; a < d; a++) v[a] += push[a];
        clip(v, (int)d, vmax);
    }
    if (drift) {
        for (int a = 0; a < d; a++) v[a] -= vec(&bdrift, a);
        clip(v, (int)d, vmax);
    }
    PyObject *u = floats(v, (int)d);
    if (u != NULL) result = Py_BuildValue("nnN", m, capped, u);
done:
    PyMem_Free(live);
    Py_buffer *all[] = {&bheard, &bpos, &bmass, &bdrift};
    release_all(all, 4);
    law_in_release(&in);
    return result;
}

/* rows (k, d + 3) = [id, t, position, mass], or (k, d + 5) with [phase epoch, phase age] after
   them: ids integers in [0, 2^31), t in [0, 1e11], |position| <= 1e12, mass in (0, 1]; epoch -1
   (none given) or an integer in [0, 2^31), age in [0, 1e11]; no NaN (every comparison below is
   false for NaN) */
static PyObject *rows_ok(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *orows;
    int d;
    if (!PyArg_ParseTuple(args, "Oi:rows_ok", &orows, &d)) return NULL;
    if (d < 1 || d > 3) {
        PyErr_Format(PyExc_ValueError, "d must be 1, 2 or 3, got %d", d);
        return NULL;
    }
    Py_buffer b;
    Py_ssize_t shape[2] = {-1, -1};
    if (get_array(orows, "rows", &b, 2, shape) < 0) return NULL;
    const Py_ssize_t w = b.shape[1];
    if (w != d + 3 && w != d + 5) {
        PyBuffer_Release(&b);
        PyErr_Format(PyExc_ValueError, "rows must have %d or %d columns, got %zd", d + 3, d + 5, w);
        return NULL;
    }
    const double *r = b.buf;
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < b.shape[0]; i++, r += w) {
        double id = r[0], t = r[1], m = r[2 + d];
        ok = id >= 0.0 && id < 2147483648.0 && floor(id) == id && t >= 0.0 && t <= 1e11 && m > 0.0 && m <= 1.0;
        for (int a = 0; ok && a < d; a++) ok = r[2 + a] >= -1e12 && r[2 + a] <= 1e12;
        if (ok && w == d + 5) {
            double e = r[3 + d], age = r[4 + d];
            ok = e >= -1.0 && e < 2147483648.0 && floor(e) == e && age >= 0.0 && age <= 1e11;
        }
    }
    PyBuffer_Release(&b);
    return PyBool_FromLong(ok);
}

/* The squared distance from x (d,) to the nearest (far = 0) or the farthest (far = 1) of points
   (k, d): nearest2() and farthest2(). */
static PyObject *extreme2(PyObject *args, const char *format, int far) {
    PyObject *ox, *opts;
    if (!PyArg_ParseTuple(args, format, &ox, &opts)) return NULL;
    Py_buffer bx, bp;
    Py_ssize_t any = -1;
    if (get_array(ox, "x", &bx, 1, &any) < 0) return NULL;
    Py_ssize_t d = bx.shape[0], shape[2] = {-1, d};
    if (get_array(opts, "points", &bp, 2, shape) < 0) {
        PyBuffer_Release(&bx);
        return NULL;
    }
    double best = far ? -HUGE_VAL : HUGE_VAL;
    const double *p = bp.buf;
    for (Py_ssize_t j = 0; j < bp.shape[0]; j++, p += d) {
        double r2 = 0.0;
        for (Py_ssize_t a = 0; a < d; a++) r2 += (p[a] - vec(&bx, a)) * (p[a] - vec(&bx, a));
        if (far ? r2 > best : r2 < best) best = r2;
    }
    PyBuffer_Release(&bx);
    PyBuffer_Release(&bp);
    return PyFloat_FromDouble(best);
}

static PyObject *nearest2(PyObject *Py_UNUSED(self), PyObject *args) { return extreme2(args, "OO:nearest2", 0); }

static PyObject *farthest2(PyObject *Py_UNUSED(self), PyObject *args) { return extreme2(args, "OO:farthest2", 1); }

/* Of phases (epochs[i], ages[i]), the one furthest ahead: the highest epoch in [0, max_epoch] with
   an age in [0, inf), of those the oldest; (-1, -1) if none (swarmcover/schedule.py,
   PhaseClock.hear_many, whose loop this is: NaN fails every comparison and is skipped). */
static PyObject *phase_top(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *oe, *oa;
    double hi;
    if (!PyArg_ParseTuple(args, "OOd:phase_top", &oe, &oa, &hi)) return NULL;
    Py_buffer be, ba;
    Py_ssize_t any = -1;
    if (get_array(oe, "epochs", &be, 1, &any) < 0) return NULL;
    Py_ssize_t k = be.shape[0];
    if (get_array(oa, "ages", &ba, 1, &k) < 0) {
        PyBuffer_Release(&be);
        return NULL;
    }
    double top = -1.0, oldest = -1.0;
    for (Py_ssize_t i = 0; i < k; i++) {
        const double e = vec(&be, i), a = vec(&ba, i);
        if (0 <= e && e <= hi && 0 <= a && a < HUGE_VAL && (e > top || (e == top && a > oldest))) {
            top = e;
            oldest = a;
        }
    }
    PyBuffer_Release(&be);
    PyBuffer_Release(&ba);
    return Py_BuildValue("(dd)", top, oldest);
}

/* The neighbour table's usual tick (agents/neighbors.py, NeighborTable.offer_relayed): every
   relayed row's sender is held and each beacon is no older than the one held. Then the rows are
   written into the table's arrays and True returned; else nothing is written and False returned
   (the numpy path takes the rows). Senders are found by binary search in sorted_ids. */
/* the slot held for id (binary search in the sorted ids), -1 if none */
static long long find_slot(const Py_buffer *ids, const Py_buffer *slots, long long id) {
    Py_ssize_t lo = 0, hi = ids->shape[0] - 1;
    while (lo <= hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        long long v = *(const long long *)((const char *)ids->buf + mid * ids->strides[0]);
        if (v == id) return *(const long long *)((const char *)slots->buf + mid * slots->strides[0]);
        if (v < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static PyObject *table_update(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *o[7];
    double now;
    if (!PyArg_ParseTuple(args, "OOOOOOOd:table_update", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &now))
        return NULL;
    static const char *names[7] = {"sorted_ids", "sorted_slots", "t", "pos", "mass", "heard", "rows"};
    Py_buffer b[7];
    int got = 0;
    PyObject *result = NULL;
    Py_ssize_t any = -1, m, cap, d;
    if (get_array_as(o[0], names[0], &b[0], 1, &any, INT64) < 0) goto done;
    got = 1;
    m = b[0].shape[0];
    Py_ssize_t mshape[1] = {m};
    if (get_array_as(o[1], names[1], &b[1], 1, mshape, INT64) < 0) goto done;
    got = 2;
    if (get_array_as(o[2], names[2], &b[2], 1, &any, PyBUF_WRITABLE) < 0) goto done;
    got = 3;
    cap = b[2].shape[0];
    Py_ssize_t pshape[2] = {cap, -1}, cshape[1] = {cap};
    if (get_array_as(o[3], names[3], &b[3], 2, pshape, PyBUF_WRITABLE) < 0) goto done;
    got = 4;
    d = b[3].shape[1];
    if (get_array_as(o[4], names[4], &b[4], 1, cshape, PyBUF_WRITABLE) < 0) goto done;
    got = 5;
    if (get_array_as(o[5], names[5], &b[5], 1, cshape, PyBUF_WRITABLE) < 0) goto done;
    got = 6;
    Py_ssize_t rshape[2] = {-1, -1};
    if (get_array(o[6], names[6], &b[6], 2, rshape) < 0) goto done;
    got = 7;
    const Py_ssize_t k = b[6].shape[0], w = b[6].shape[1];
    if (w != d + 3 && w != d + 5) {
        PyErr_Format(PyExc_ValueError, "rows must have %zd or %zd columns, got %zd", d + 3, d + 5, w);
        goto done;
    }
    const double *rows = b[6].buf;
    int usual = m > 0;
    for (Py_ssize_t i = 0; usual && i < k; i++) { /* first pass: check, write nothing */
        const double *r = rows + i * w;
        if (!(r[0] >= 0.0 && r[0] < 2147483648.0)) { /* not an id (the decoder refuses these) */
            usual = 0;
            break;
        }
        long long slot = find_slot(&b[0], &b[1], (long long)r[0]);
        usual = slot >= 0 && slot < cap && r[1] >= vec(&b[2], slot);
    }
    if (usual) { /* second pass: write (the search again: cheaper than keeping k slots) */
        for (Py_ssize_t i = 0; i < k; i++) {
            const double *r = rows + i * w;
            long long slot = find_slot(&b[0], &b[1], (long long)r[0]);
            *(double *)((char *)b[2].buf + slot * b[2].strides[0]) = r[1];
            for (Py_ssize_t a = 0; a < d; a++) ((double *)b[3].buf)[slot * d + a] = r[2 + a];
            *(double *)((char *)b[4].buf + slot * b[4].strides[0]) = r[2 + d];
            *(double *)((char *)b[5].buf + slot * b[5].strides[0]) = now;
        }
    }
    result = PyBool_FromLong(usual);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"velocity", velocity, METH_VARARGS,
     "velocity(x, neighbors, mass, neighbor_mass, eps, cutoff, coef, origin, spacing, lo, hi) -> tuple\n\n"
     "One agent's blob velocity (see swarmcover.local.local_velocity); lo, hi: the walls, or None."},
    {"command", command, METH_VARARGS,
     "command(x, heard, pos, mass, since, cap, coef, origin, spacing, self_mass, eps, lo, hi, cutoff, sep, gain, "
     "vmax, drift) -> (neighbours, capped, tuple) or None\n\n"
     "An agent's usual command from its neighbour table (see agents/agent.py); None: a neighbour coincides."},
    {"rows_ok", rows_ok, METH_VARARGS,
     "rows_ok(rows, d) -> bool\n\nWhether relayed beacon rows (k, d + 3) or (k, d + 5) pass the protocol's checks."},
    {"table_update", table_update, METH_VARARGS,
     "table_update(sorted_ids, sorted_slots, t, pos, mass, heard, rows, now) -> bool\n\n"
     "The neighbour table's usual tick in place (see agents/neighbors.py); False: nothing written."},
    {"nearest2", nearest2, METH_VARARGS,
     "nearest2(x, points) -> float\n\nThe squared distance from x (d,) to the nearest of points (k, d); inf if none."},
    {"phase_top", phase_top, METH_VARARGS,
     "phase_top(epochs, ages, max_epoch) -> (epoch, age)\n\nOf phases, the highest epoch in [0, max_epoch] with an "
     "age in [0, inf), of those the oldest; (-1, -1) if none."},
    {"farthest2", farthest2, METH_VARARGS,
     "farthest2(x, points) -> float\n\nThe squared distance from x (d,) to the farthest of points (k, d); -inf if none."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hotpath", "An agent's hot path in C (see swarmcover/_hotpath.c).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hotpath(void) { return PyModule_Create(&module); }
