/* corkweb.wire._speedups: a parsed request head's fields at fixed offsets, in C.
 *
 * Optional, as corkweb/server/_speedups.c: corkweb/wire/parser.py's RequestHead is built on
 * HeadBase when this module is present (and CORKWEB_PURE_PYTHON is not set), and is a plain
 * Python class otherwise. make_head(cls, entry) builds a head from an entry of the plain-head
 * table (wire/plain.py) in one call: the parser's per-request work for a remembered head.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "_head.h"

static int
head_traverse(HeadBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->method);
    Py_VISIT(self->url);
    Py_VISIT(self->path);
    Py_VISIT(self->query);
    Py_VISIT(self->version);
    Py_VISIT(self->keep_alive);
    Py_VISIT(self->headers);
    Py_VISIT(self->content_length);
    Py_VISIT(self->chunked);
    Py_VISIT(self->expect_continue);
    Py_VISIT(self->upgrade);
    Py_VISIT(self->has_body);
    return 0;
}

static int
head_clear(HeadBase *self)
{
    Py_CLEAR(self->method);
    Py_CLEAR(self->url);
    Py_CLEAR(self->path);
    Py_CLEAR(self->query);
    Py_CLEAR(self->version);
    Py_CLEAR(self->keep_alive);
    Py_CLEAR(self->headers);
    Py_CLEAR(self->content_length);
    Py_CLEAR(self->chunked);
    Py_CLEAR(self->expect_continue);
    Py_CLEAR(self->upgrade);
    Py_CLEAR(self->has_body);
    return 0;
}

static void
head_dealloc(HeadBase *self)
{
    PyObject_GC_UnTrack(self);
    head_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The fields only some requests have start at the values a plain head has. */
static HeadBase *
head_alloc(PyTypeObject *type)
{
    HeadBase *self = (HeadBase *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->content_length = Py_NewRef(Py_None);
    self->chunked = Py_NewRef(Py_False);
    self->expect_continue = Py_NewRef(Py_False);
    self->upgrade = Py_NewRef(Py_None);
    self->has_body = Py_NewRef(Py_False);
    return self;
}

static PyObject *
head_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments (the parser sets its fields)",
                     type->tp_name);
        return NULL;
    }
    return (PyObject *)head_alloc(type);
}

/* make_head(cls, entry): a head of `cls` from a plain-head table entry
 * (limits, method, url, path, query, version, keep_alive, headers), with a list of its own
 * made from the entry's header tuple (a handler may change it). */
static PyObject *
make_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "make_head(cls, entry) takes 2 arguments");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    PyObject *entry = args[1];
    if (!PyType_Check(cls) || cls->tp_new != head_new) {
        PyErr_SetString(PyExc_TypeError, "make_head: cls must be a HeadBase class");
        return NULL;
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) < 8) {
        PyErr_SetString(PyExc_TypeError, "make_head: entry must be a plain-head table entry");
        return NULL;
    }
    PyObject *headers = PySequence_List(PyTuple_GET_ITEM(entry, 7));
    if (headers == NULL)
        return NULL;
    HeadBase *self = head_alloc(cls);
    if (self == NULL) {
        Py_DECREF(headers);
        return NULL;
    }
    self->method = Py_NewRef(PyTuple_GET_ITEM(entry, 1));
    self->url = Py_NewRef(PyTuple_GET_ITEM(entry, 2));
    self->path = Py_NewRef(PyTuple_GET_ITEM(entry, 3));
    self->query = Py_NewRef(PyTuple_GET_ITEM(entry, 4));
    self->version = Py_NewRef(PyTuple_GET_ITEM(entry, 5));
    self->keep_alive = Py_NewRef(PyTuple_GET_ITEM(entry, 6));
    self->headers = headers;
    return (PyObject *)self;
}

/* same_at(data, pos, head): whether the bytes `head` come next in `data` at `pos` (the
 * parser's test for a run of equal pipelined heads, without slicing a copy to compare). */
static PyObject *
same_at(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyLong_CheckExact(args[1])
            || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "same_at(data: bytes, pos: int, head: bytes)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]), step = PyBytes_GET_SIZE(args[2]);
    if (pos < 0 || pos > size - step)
        Py_RETURN_FALSE;
    return PyBool_FromLong(memcmp(PyBytes_AS_STRING(args[0]) + pos, PyBytes_AS_STRING(args[2]),
                                  step) == 0);
}

#define FIELD(name, doc) {#name, T_OBJECT_EX, offsetof(HeadBase, name), 0, doc}

static PyMemberDef head_members[] = {
    FIELD(method, "The method, upper-case: \"GET\"."),
    FIELD(url, "The request target as received (origin form, or the path of an absolute-form "
               "one)."),
    FIELD(path, "url without the query string and fragment."),
    FIELD(query, "The query string, without its ? (\"\" when there is none)."),
    FIELD(version, "\"1.1\" or \"1.0\"."),
    FIELD(keep_alive, "Whether the connection stays open after this request (RFC 9112 §9.3)."),
    FIELD(headers, "(lower-case name, value) byte pairs in arrival order."),
    FIELD(content_length, "The Content-Length, or None."),
    FIELD(chunked, "Whether the body is chunked."),
    FIELD(expect_continue, "Whether the client sent Expect: 100-continue."),
    FIELD(upgrade, "The Upgrade header's value, or None."),
    FIELD(has_body, "Whether a body follows the head (RFC 9112 §6.3)."),
    {NULL}
};

static PyTypeObject HeadBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "corkweb.wire._speedups.HeadBase",
    .tp_doc = PyDoc_STR("A parsed request head's fields at fixed offsets (see RequestHead)."),
    .tp_basicsize = sizeof(HeadBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = head_new,
    .tp_dealloc = (destructor)head_dealloc,
    .tp_traverse = (traverseproc)head_traverse,
    .tp_clear = (inquiry)head_clear,
    .tp_members = head_members,
};

static PyMethodDef module_methods[] = {
    {"same_at", (PyCFunction)(void (*)(void))same_at, METH_FASTCALL,
     "same_at(data, pos, head)\n--\n\nWhether ``head`` comes next in ``data`` at ``pos``."},
    {"make_head", (PyCFunction)(void (*)(void))make_head, METH_FASTCALL,
     "make_head(cls, entry)\n--\n\nA head of ``cls`` from a plain-head table entry."},
    {NULL}
};

static struct PyModuleDef wire_speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corkweb.wire._speedups",
    .m_doc = "A request head's fields in C (optional; see corkweb/wire/parser.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&HeadBaseType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&wire_speedups_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "HeadBase", (PyObject *)&HeadBaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
