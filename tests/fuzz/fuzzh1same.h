/*
 * The quick head reader (worker/h1head.c) held to http-parser's word: a
 * head it takes must parse to the same head down the http-parser path.
 * The HTTP/1.1 harnesses call it on their input; a difference aborts.
 */
#ifndef HALOYD_TESTS_FUZZ_FUZZH1SAME_H
#define HALOYD_TESTS_FUZZ_FUZZH1SAME_H

#include <stddef.h>

void fuzzh1same_check(int response, const char *data, size_t len);

#endif
