/* corkweb.server._speedups: the exchange's and the output queue's per-request core in C.
 *
 * Optional: corkweb/server/exchange_state.py and corker.py build on their pure-Python twins
 * when this module is missing (no compiler at install time) or CORKWEB_PURE_PYTHON is set, and
 * the test suite runs against both. Only the common case lives here:
 *
 * - ExchangeBase: an exchange's fields at fixed offsets, made by make(conn, req) without the
 *   generic type call, and end() for a keep-alive HTTP/1.1 request (not HEAD, the connection
 *   not draining) answered 200 with no header written, no hook and a str, bytes or dict body.
 *   Everything else (other statuses, headers, hooks, HEAD, closing, streaming, late calls,
 *   other body types) goes to the Python method _end_general, the whole of end() in Python;
 * - CorkBase: the output queue's fields and write(), which end() calls without the
 *   interpreter when a connection class keeps CorkBase's write.
 *
 * Nothing here holds state of its own beyond the constants configure_exchange() and
 * configure_queue() hand in (exchange_state.py and corker.py own their values).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "../wire/_head.h"

typedef struct {
    PyObject_HEAD
    PyObject *conn;         /* _conn */
    PyObject *request;
    PyObject *phase;
    PyObject *status;       /* _status: the status line */
    PyObject *code;         /* _code */
    PyObject *headers;      /* _headers */
    PyObject *before_head;  /* _before_head */
    PyObject *on_finish;    /* _on_finish */
    PyObject *closing;
    PyObject *body_done;
    PyObject *defer_done;
} ExchangeBase;

/* Set by configure(); end() takes its fast path only once they are. */
static PyObject *PENDING, *DONE, *STATUS_200, *TEXT_LINE, *JSON_LINE;
/* corkweb.wire._speedups.HeadBase when it is built: its fields are read at their offsets. */
static PyTypeObject *HEAD_TYPE;
static PyObject *S_HAS_BODY, *S_KEEP_ALIVE, *S_VERSION, *S_METHOD, *S_DRAINING, *S_STATE,
    *S_DATE, *S_OPTIONS, *S_JSON_DUMPS, *S_WRITE, *S_RESPONSE_DONE, *S_FINISHED,
    *S_END_GENERAL, *EMPTY;

/* A field of the request head `req` (a new reference): read at its offset when `req` is a
 * HeadBase, else (or when it was deleted) by attribute lookup. */
static PyObject *
head_field(PyObject *req, size_t offset, PyObject *name)
{
    if (HEAD_TYPE != NULL && PyObject_TypeCheck(req, HEAD_TYPE)) {
        PyObject *value = *(PyObject **)((char *)req + offset);
        if (value != NULL)
            return Py_NewRef(value);
    }
    return PyObject_GetAttr(req, name);
}

static PyObject *
exchange_alloc(PyTypeObject *type, PyObject *conn, PyObject *req)
{
    if (PENDING == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "corkweb.server._speedups is not configured");
        return NULL;
    }
    PyObject *has_body = head_field(req, offsetof(HeadBase, has_body), S_HAS_BODY);
    if (has_body == NULL)
        return NULL;
    int truth = PyObject_IsTrue(has_body);
    Py_DECREF(has_body);
    if (truth < 0)
        return NULL;
    ExchangeBase *self = (ExchangeBase *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->conn = Py_NewRef(conn);
    self->request = Py_NewRef(req);
    self->phase = Py_NewRef(PENDING);
    self->status = Py_NewRef(STATUS_200);
    self->code = PyLong_FromLong(200);
    self->headers = Py_NewRef(Py_None);
    self->before_head = Py_NewRef(Py_None);
    self->on_finish = Py_NewRef(Py_None);
    self->closing = Py_NewRef(Py_False);
    self->body_done = Py_NewRef(truth ? Py_False : Py_True);
    self->defer_done = Py_NewRef(Py_False);
    return (PyObject *)self;
}

static PyObject *
exchange_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *conn, *req;
    if (!PyArg_UnpackTuple(args, "Exchange", 2, 2, &conn, &req))
        return NULL;
    return exchange_alloc(type, conn, req);
}

static int exchange_init(PyObject *self, PyObject *args, PyObject *kwds);

/* ExchangeBase.make(conn, req), a class method: what calling the class does, without the
 * generic type call (its argument tuple, and __init__), for a class whose __new__ and
 * __init__ are this type's; any other class is called as usual. */
static PyObject *
exchange_make(PyTypeObject *cls, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "make() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (cls->tp_new != exchange_new || cls->tp_init != exchange_init)
        return PyObject_Vectorcall((PyObject *)cls, args, nargs, NULL);
    return exchange_alloc(cls, args[0], args[1]);
}

/* The fields are set by __new__; __init__ accepts the same arguments, so that a subclass's
 * __init__ may call super().__init__(conn, req) as with the Python base. */
static int
exchange_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    return 0;
}

static int
exchange_traverse(ExchangeBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conn);
    Py_VISIT(self->request);
    Py_VISIT(self->phase);
    Py_VISIT(self->status);
    Py_VISIT(self->code);
    Py_VISIT(self->headers);
    Py_VISIT(self->before_head);
    Py_VISIT(self->on_finish);
    Py_VISIT(self->closing);
    Py_VISIT(self->body_done);
    Py_VISIT(self->defer_done);
    return 0;
}

static int
exchange_clear(ExchangeBase *self)
{
    Py_CLEAR(self->conn);
    Py_CLEAR(self->request);
    Py_CLEAR(self->phase);
    Py_CLEAR(self->status);
    Py_CLEAR(self->code);
    Py_CLEAR(self->headers);
    Py_CLEAR(self->before_head);
    Py_CLEAR(self->on_finish);
    Py_CLEAR(self->closing);
    Py_CLEAR(self->body_done);
    Py_CLEAR(self->defer_done);
    return 0;
}

static void
exchange_dealloc(ExchangeBase *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    exchange_clear(self);
    /* A Python subclass's instance: subtype_dealloc releases the type's reference after
     * this returns, as the base is a static type. */
    tp->tp_free((PyObject *)self);
}

/* 1 when `obj` is a str whose text is the ASCII `want` of `size` characters (the parser's
 * strings are compact ASCII: their bytes are compared without a call). */
static int
is_ascii(PyObject *obj, const char *want, Py_ssize_t size)
{
    if (!PyUnicode_CheckExact(obj) || PyUnicode_GET_LENGTH(obj) != size)
        return 0;
    if (PyUnicode_IS_COMPACT_ASCII(obj))
        return memcmp(PyUnicode_DATA(obj), want, size) == 0;
    return PyUnicode_CompareWithASCIIString(obj, want) == 0;
}

static PyObject *
end_general(PyObject *self, PyObject *message, PyObject *end_connection)
{
    PyObject *args[3] = {self, message, end_connection};
    return PyObject_VectorcallMethod(S_END_GENERAL, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                     NULL);
}

/* The common answer, built in one buffer: status line, date line, content-type line (if
 * any), content-length line and the blank line, body. */
static PyObject *
build_answer(PyObject *status, PyObject *date, PyObject *ctype, PyObject *body)
{
    /* "content-length: N\r\n\r\n", the digits written backwards from the end (snprintf
     * costs ~800 instructions here) */
    char length[48];
    char *end = length + sizeof(length), *q = end;
    Py_ssize_t size = PyBytes_GET_SIZE(body), rest = size;
    *--q = '\n';
    *--q = '\r';
    *--q = '\n';
    *--q = '\r';
    do {
        *--q = (char)('0' + rest % 10);
        rest /= 10;
    } while (rest);
    q -= 16;
    memcpy(q, "content-length: ", 16);
    int n = (int)(end - q);
    Py_ssize_t s1 = PyBytes_GET_SIZE(status), s2 = PyBytes_GET_SIZE(date);
    Py_ssize_t s3 = ctype ? PyBytes_GET_SIZE(ctype) : 0;
    PyObject *out = PyBytes_FromStringAndSize(NULL, s1 + s2 + s3 + n + size);
    if (out == NULL)
        return NULL;
    char *p = PyBytes_AS_STRING(out);
    memcpy(p, PyBytes_AS_STRING(status), s1);
    p += s1;
    memcpy(p, PyBytes_AS_STRING(date), s2);
    p += s2;
    if (s3) {
        memcpy(p, PyBytes_AS_STRING(ctype), s3);
        p += s3;
    }
    memcpy(p, q, n);
    p += n;
    memcpy(p, PyBytes_AS_STRING(body), size);
    return out;
}

/* Whether the request and connection allow the common answer: keep-alive HTTP/1.1, not HEAD,
 * the server not draining. -1 on error. */
static int
common_request(ExchangeBase *self)
{
    PyObject *req = self->request, *v;
    int ok;
    v = head_field(req, offsetof(HeadBase, keep_alive), S_KEEP_ALIVE);
    if (v == NULL)
        return -1;
    ok = v == Py_True;
    Py_DECREF(v);
    if (!ok)
        return 0;
    v = head_field(req, offsetof(HeadBase, version), S_VERSION);
    if (v == NULL)
        return -1;
    ok = is_ascii(v, "1.1", 3);
    Py_DECREF(v);
    if (!ok)
        return 0;
    v = head_field(req, offsetof(HeadBase, method), S_METHOD);
    if (v == NULL)
        return -1;
    ok = !is_ascii(v, "HEAD", 4);
    Py_DECREF(v);
    if (!ok)
        return 0;
    v = PyObject_GetAttr(self->conn, S_DRAINING);
    if (v == NULL)
        return -1;
    ok = v == Py_False;
    Py_DECREF(v);
    return ok;
}

static PyObject *
call_method1(PyObject *obj, PyObject *name, PyObject *arg)
{
    PyObject *args[2] = {obj, arg};
    return PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* -- the corked connection's output queue --------------------------------------------------
 *
 * CorkBase holds what CorkedProtocol.write touches, so that write is a C method and end()
 * queues its answer without a call into Python. The fields keep the Python meanings (see
 * corker.py): _out is NOTHING_QUEUED (the shared empty tuple) or a list, _out_size an int,
 * _dirty and _closed booleans, _corker the loop's Corker. */

typedef struct {
    PyObject_HEAD
    PyObject *corker;
    PyObject *out;
    PyObject *out_size;
    PyObject *dirty;
    PyObject *closed;
    PyObject *state;  /* the server's ServerState (end() reads its date line) */
} CorkBase;

static PyObject *NOTHING_QUEUED, *S_CURRENT, *S_MARK_DIRTY;
static PyObject *CORK_WRITE;  /* CorkBase's write descriptor */

static int
cork_traverse(CorkBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->corker);
    Py_VISIT(self->out);
    Py_VISIT(self->out_size);
    Py_VISIT(self->dirty);
    Py_VISIT(self->closed);
    Py_VISIT(self->state);
    return 0;
}

static int
cork_clear(CorkBase *self)
{
    Py_CLEAR(self->corker);
    Py_CLEAR(self->out);
    Py_CLEAR(self->out_size);
    Py_CLEAR(self->dirty);
    Py_CLEAR(self->closed);
    Py_CLEAR(self->state);
    return 0;
}

static void
cork_dealloc(CorkBase *self)
{
    PyObject_GC_UnTrack(self);
    cork_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* CorkedProtocol.write: queue `data`; it leaves when the current scope or loop tick ends. */
static int
cork_queue(CorkBase *self, PyObject *data)
{
    if (self->closed == NULL || self->out == NULL || self->out_size == NULL
            || self->corker == NULL || self->dirty == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the connection's output queue is not set up");
        return -1;
    }
    if (self->closed != Py_False) {
        int closed = PyObject_IsTrue(self->closed);
        if (closed < 0)
            return -1;
        if (closed)
            return 0;  /* the peer is gone: nothing can be delivered, and nothing must raise */
    }
    Py_ssize_t size = PyObject_Length(data);
    if (size < 0)
        return -1;
    if (self->out == NOTHING_QUEUED) {
        PyObject *out = PyList_New(1);
        if (out == NULL)
            return -1;
        PyList_SET_ITEM(out, 0, Py_NewRef(data));
        Py_SETREF(self->out, out);
    }
    else if (PyList_CheckExact(self->out)) {
        if (PyList_Append(self->out, data) < 0)
            return -1;
    }
    else {
        PyErr_SetString(PyExc_TypeError, "the connection's output queue is not a list");
        return -1;
    }
    Py_ssize_t queued = PyLong_AsSsize_t(self->out_size);
    if (queued == -1 && PyErr_Occurred())
        return -1;
    PyObject *total = PyLong_FromSsize_t(queued + size);
    if (total == NULL)
        return -1;
    Py_SETREF(self->out_size, total);
    PyObject *current = PyObject_GetAttr(self->corker, S_CURRENT);
    if (current == NULL)
        return -1;
    Py_DECREF(current);  /* only its identity is compared */
    if (current != (PyObject *)self && self->dirty == Py_False) {
        Py_SETREF(self->dirty, Py_NewRef(Py_True));
        PyObject *r = call_method1(self->corker, S_MARK_DIRTY, (PyObject *)self);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

static PyObject *
cork_write(CorkBase *self, PyObject *data)
{
    if (cork_queue(self, data) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef cork_methods[] = {
    {"write", (PyCFunction)cork_write, METH_O,
     "write(data)\n--\n\nQueue ``data``; it leaves when the current scope or loop tick ends."},
    {NULL}
};

#define CORK_MEMBER(name, field) {name, T_OBJECT_EX, offsetof(CorkBase, field), 0, NULL}

static PyMemberDef cork_members[] = {
    CORK_MEMBER("_corker", corker),
    CORK_MEMBER("_out", out),
    CORK_MEMBER("_out_size", out_size),
    CORK_MEMBER("_dirty", dirty),
    CORK_MEMBER("_closed", closed),
    CORK_MEMBER("state", state),
    {NULL}
};

static PyTypeObject CorkBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "corkweb.server._speedups.CorkBase",
    .tp_doc = PyDoc_STR("A corked connection's output queue, and its write(), in C."),
    .tp_basicsize = sizeof(CorkBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)cork_dealloc,
    .tp_traverse = (traverseproc)cork_traverse,
    .tp_clear = (inquiry)cork_clear,
    .tp_members = cork_members,
    .tp_methods = cork_methods,
};

PyDoc_STRVAR(end_doc,
"end(message=b'', end_connection=False)\n--\n\n"
"Send ``message`` as the whole body (or the last part after ``write``) and finish.\n\n"
"``str`` is sent as UTF-8 ``text/plain``; ``bytes`` as is; ``None`` as an empty body;\n"
"a :class:`TypedBody` with its own default type (``render`` sends HTML this way);\n"
"anything else (dict, list, dataclass, ...) as JSON through orjson. A ``content-type``\n"
"header written before wins over these defaults. Ending an aborted response does\n"
"nothing; ending a response twice raises ``RuntimeError``.");

static PyObject *
exchange_end(ExchangeBase *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *message = NULL, *end_connection = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "end() takes at most 2 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (nargs > 0)
        message = args[0];
    if (nargs > 1)
        end_connection = args[1];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject **slot;
        if (PyUnicode_CompareWithASCIIString(key, "message") == 0)
            slot = &message;
        else if (PyUnicode_CompareWithASCIIString(key, "end_connection") == 0)
            slot = &end_connection;
        else {
            PyErr_Format(PyExc_TypeError, "end() got an unexpected keyword argument '%U'", key);
            return NULL;
        }
        if (*slot != NULL) {
            PyErr_Format(PyExc_TypeError, "end() got multiple values for argument '%U'", key);
            return NULL;
        }
        *slot = args[nargs + i];
    }
    if (message == NULL)
        message = EMPTY;
    if (end_connection == NULL)
        end_connection = Py_False;

    /* The common case, or _end_general. Every test comes before the first change. */
    if (self->conn == NULL || self->request == NULL  /* deleted: the general path says so */
            || self->phase != PENDING || end_connection != Py_False || self->before_head != Py_None
            || self->headers != Py_None || self->closing != Py_False
            || self->status != STATUS_200)
        return end_general((PyObject *)self, message, end_connection);
    PyTypeObject *cls = Py_TYPE(message);
    if (cls != &PyUnicode_Type && cls != &PyBytes_Type && cls != &PyDict_Type)
        return end_general((PyObject *)self, message, end_connection);
    int common = common_request(self);
    if (common < 0)
        return NULL;
    if (!common)
        return end_general((PyObject *)self, message, end_connection);
    PyObject *conn = self->conn;
    PyObject *state;
    if (PyObject_TypeCheck(conn, &CorkBaseType) && ((CorkBase *)conn)->state != NULL)
        state = Py_NewRef(((CorkBase *)conn)->state);
    else if ((state = PyObject_GetAttr(conn, S_STATE)) == NULL)
        return NULL;
    PyObject *date = PyObject_GetAttr(state, S_DATE);
    Py_DECREF(state);
    if (date == NULL)
        return NULL;
    if (!PyBytes_CheckExact(date)) {
        Py_DECREF(date);
        return end_general((PyObject *)self, message, end_connection);
    }

    PyObject *body, *ctype;
    if (cls == &PyUnicode_Type) {
        body = PyUnicode_AsUTF8String(message);
        ctype = TEXT_LINE;
    }
    else if (cls == &PyBytes_Type) {
        body = Py_NewRef(message);
        ctype = NULL;
    }
    else {
        PyObject *options = PyObject_GetAttr(conn, S_OPTIONS);
        if (options == NULL) {
            Py_DECREF(date);
            return NULL;
        }
        PyObject *dumps = PyObject_GetAttr(options, S_JSON_DUMPS);
        Py_DECREF(options);
        if (dumps == NULL) {
            Py_DECREF(date);
            return NULL;
        }
        body = PyObject_CallOneArg(dumps, message);
        Py_DECREF(dumps);
        ctype = JSON_LINE;
        if (body != NULL && !PyBytes_CheckExact(body)) {
            /* a json_dumps of the app's that returns something else: the general path
             * knows what to do with it */
            Py_DECREF(body);
            Py_DECREF(date);
            return end_general((PyObject *)self, message, end_connection);
        }
    }
    if (body == NULL) {
        Py_DECREF(date);
        return NULL;
    }
    PyObject *data = build_answer(self->status, date, ctype, body);
    Py_DECREF(date);
    Py_DECREF(body);
    if (data == NULL)
        return NULL;
    Py_SETREF(self->phase, Py_NewRef(DONE));
    PyObject *r;
    if (PyObject_TypeCheck(conn, &CorkBaseType)
            && _PyType_Lookup(Py_TYPE(conn), S_WRITE) == CORK_WRITE) {
        /* CorkBase.write itself, not a subclass's (the access log counts bytes in its own) */
        int failed = cork_queue((CorkBase *)conn, data);
        Py_DECREF(data);
        if (failed)
            return NULL;
    }
    else {
        r = call_method1(conn, S_WRITE, data);
        Py_DECREF(data);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    if (self->defer_done != Py_True) {
        r = call_method1(conn, S_RESPONSE_DONE, (PyObject *)self);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    if (self->on_finish != Py_None) {
        PyObject *a[1] = {(PyObject *)self};
        r = PyObject_VectorcallMethod(S_FINISHED, a, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    return Py_NewRef(self);
}


#define MEMBER(name, field, doc) \
    {name, T_OBJECT_EX, offsetof(ExchangeBase, field), 0, doc}

static PyMemberDef exchange_members[] = {
    MEMBER("_conn", conn, NULL),
    MEMBER("request", request, "The request this exchange answers."),
    MEMBER("phase", phase, "Where the exchange is: a Phase."),
    MEMBER("_status", status, NULL),
    MEMBER("_code", code, NULL),
    MEMBER("_headers", headers, NULL),
    MEMBER("_before_head", before_head, NULL),
    MEMBER("_on_finish", on_finish, NULL),
    MEMBER("closing", closing, "True when the connection closes after this answer."),
    MEMBER("body_done", body_done, "True once the request body has been read to its end."),
    MEMBER("defer_done", defer_done,
           "True while the connection that dispatched this exchange calls response_done "
           "itself once the handler returns (end() then leaves it to the connection)."),
    {NULL}
};

static PyMethodDef exchange_methods[] = {
    {"end", (PyCFunction)(void (*)(void))exchange_end, METH_FASTCALL | METH_KEYWORDS, end_doc},
    {"make", (PyCFunction)(void (*)(void))exchange_make, METH_FASTCALL | METH_CLASS,
     "make(conn, req)\n--\n\nA new exchange of this class: ``cls(conn, req)``, faster."},
    {NULL}
};

static PyTypeObject ExchangeBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "corkweb.server._speedups.ExchangeBase",
    .tp_doc = PyDoc_STR("The fields every exchange has, and end()'s common case, in C."),
    .tp_basicsize = sizeof(ExchangeBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = exchange_new,
    .tp_init = exchange_init,
    .tp_dealloc = (destructor)exchange_dealloc,
    .tp_traverse = (traverseproc)exchange_traverse,
    .tp_clear = (inquiry)exchange_clear,
    .tp_members = exchange_members,
    .tp_methods = exchange_methods,
};

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *pending, *done, *status_200, *text_line, *json_line, *head_type;
    if (!PyArg_ParseTuple(args, "OOSSSO", &pending, &done, &status_200, &text_line, &json_line,
                          &head_type))
        return NULL;
    if (head_type != Py_None) {
        if (!PyType_Check(head_type)
                || ((PyTypeObject *)head_type)->tp_basicsize != sizeof(HeadBase)) {
            PyErr_SetString(PyExc_TypeError, "head_type must be corkweb.wire._speedups.HeadBase");
            return NULL;
        }
        Py_XSETREF(HEAD_TYPE, (PyTypeObject *)Py_NewRef(head_type));
    }
    Py_XSETREF(PENDING, Py_NewRef(pending));
    Py_XSETREF(DONE, Py_NewRef(done));
    Py_XSETREF(STATUS_200, Py_NewRef(status_200));
    Py_XSETREF(TEXT_LINE, Py_NewRef(text_line));
    Py_XSETREF(JSON_LINE, Py_NewRef(json_line));
    Py_RETURN_NONE;
}

static PyObject *
configure_queue(PyObject *module, PyObject *nothing_queued)
{
    Py_XSETREF(NOTHING_QUEUED, Py_NewRef(nothing_queued));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure_exchange", configure, METH_VARARGS,
     "configure_exchange(pending, done, status_200, text_line, json_line, head_type): the\n"
     "constants end() uses (exchange.py's), and HeadBase or None."},
    {"configure_queue", configure_queue, METH_O,
     "configure_queue(nothing_queued): what an empty output queue holds (corker.py's)."},
    {NULL}
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corkweb.server._speedups",
    .m_doc = "The exchange's per-request core in C (optional; see corkweb/server/exchange.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL

PyMODINIT_FUNC
PyInit__speedups(void)
{
    INTERN(S_HAS_BODY, "has_body");
    INTERN(S_KEEP_ALIVE, "keep_alive");
    INTERN(S_VERSION, "version");
    INTERN(S_METHOD, "method");
    INTERN(S_DRAINING, "draining");
    INTERN(S_STATE, "state");
    INTERN(S_DATE, "date");
    INTERN(S_OPTIONS, "options");
    INTERN(S_JSON_DUMPS, "json_dumps");
    INTERN(S_WRITE, "write");
    INTERN(S_RESPONSE_DONE, "response_done");
    INTERN(S_FINISHED, "_finished");
    INTERN(S_END_GENERAL, "_end_general");
    if ((EMPTY = PyBytes_FromStringAndSize("", 0)) == NULL)
        return NULL;
    INTERN(S_CURRENT, "current");
    INTERN(S_MARK_DIRTY, "mark_dirty");
    if (PyType_Ready(&ExchangeBaseType) < 0 || PyType_Ready(&CorkBaseType) < 0)
        return NULL;
    CORK_WRITE = PyDict_GetItemWithError(CorkBaseType.tp_dict, S_WRITE);
    if (CORK_WRITE == NULL)
        return NULL;
    Py_INCREF(CORK_WRITE);
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "ExchangeBase", (PyObject *)&ExchangeBaseType) < 0
            || PyModule_AddObjectRef(m, "CorkBase", (PyObject *)&CorkBaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
