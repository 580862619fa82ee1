/* The fields of a parsed request head at fixed offsets: corkweb.wire._speedups.HeadBase.
 * corkweb/server/_speedups.c reads them through this layout; both are built from this file. */
#ifndef CORKWEB_HEAD_H
#define CORKWEB_HEAD_H

#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *method;
    PyObject *url;
    PyObject *path;
    PyObject *query;
    PyObject *version;
    PyObject *keep_alive;
    PyObject *headers;
    PyObject *content_length;
    PyObject *chunked;
    PyObject *expect_continue;
    PyObject *upgrade;
    PyObject *has_body;
} HeadBase;

#endif
