/*
 * Unit tests for the snapshot as a round trip: share/hash.c (CRC32C and
 * SipHash vectors), master/snapbuild.c (layout, checks, sealing) and
 * share/snap.c (mapping, lookups, and refusal of damaged images: bit flips,
 * truncations and out-of-range fields with the CRC recomputed so the real
 * check is the one that fires).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "share/hash.h"
#include "share/snap.h"
#include "tests/unit/suites.h"

static const uint8_t test_key[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

/*
 * The fixture: four routes, one of them a wildcard route, one with no
 * backend; aliases, a wildcard alias, IPv4 and IPv6 backends.
 */
static const struct snapb_route fx_routes[] = {
	{ .id = 10, .name = "app.example.com", .be_first = 0, .be_count = 2, .connect_ms = 500 },
	{ .id = 11, .name = "api.example.com", .be_first = 2, .be_count = 1, .max_body = 1024 },
	{ .id = 12, .name = "*.wild.example.com", .be_first = 3, .be_count = 1 },
	{ .id = 13, .name = "other.test", .be_first = 4, .be_count = 0 },
};

static const struct snapb_host fx_hosts[] = {
	{ 100, "app.example.com", 0, SNAP_HOST_EXACT, NULL },
	{ 101, "www.app.example.com", 0, SNAP_HOST_ALIAS, NULL },
	{ 102, "api.example.com", 1, SNAP_HOST_EXACT, NULL },
	{ 103, "api.example.org", 1, SNAP_HOST_ALIAS, NULL },
	{ 104, "*.example.net", 1, SNAP_HOST_WILDCARD, NULL },
	{ 105, "*.wild.example.com", 2, SNAP_HOST_WILDCARD, NULL },
	{ 106, "other.test", 3, SNAP_HOST_EXACT, NULL },
};

static const struct snapb_backend fx_backends[] = {
	{ 200, AF_INET, 3000, { 127, 0, 0, 1 }, 0, NULL },
	{ 201, AF_INET6, 3001, { [15] = 1 }, 0, NULL },
	{ 202, AF_INET, 8080, { 10, 0, 0, 2 }, 0, NULL },
	{ 203, AF_INET, 9000, { 10, 0, 0, 3 }, 0, NULL },
};

static void
fixture_input(struct snapb_input *in)
{
	memset(in, 0, sizeof(*in));
	in->routes = fx_routes;
	in->nroutes = 4;
	in->hosts = fx_hosts;
	in->nhosts = 7;
	in->backends = fx_backends;
	in->nbackends = 4;
	in->default_route = SNAP_NONE;
	in->generation = 42;
	in->built_at = 1700000000000000000ull;
	in->hash_key = test_key;
}

static int
build_fd(const struct snapb_input *in)
{
	char err[256] = "";
	int fd;

	ck_assert_msg(snapb_build(in, &fd, err, sizeof(err)) == 0, "build failed: %s", err);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static struct snap *
map_fd(int fd)
{
	struct snap *s;
	char err[256] = "";

	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "map failed: %s", err);
	ck_assert_ptr_nonnull(s);
	return s;
}

static struct snap *
build_and_map(const struct snapb_input *in)
{
	int fd = build_fd(in);
	struct snap *s = map_fd(fd);

	close(fd);
	return s;
}

/* The image in a heap buffer (malloc alignment suffices), to be damaged at will. */
static uint8_t *
read_image(int fd, size_t *size)
{
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *p;

	ck_assert_int_gt(end, 0);
	*size = (size_t)end;
	p = malloc(*size);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(pread(fd, p, *size, 0), (ssize_t)*size);
	return p;
}

static uint8_t *
fixture_image(size_t *size)
{
	struct snapb_input in;
	uint8_t *p;
	int fd;

	fixture_input(&in);
	fd = build_fd(&in);
	p = read_image(fd, size);
	close(fd);
	return p;
}

static uint32_t
route_id(const struct snap *s, const char *host)
{
	const struct snap_route *r = snap_lookup(s, host, strlen(host));

	return r != NULL ? r->id : 0;
}

/* --- hashes */

START_TEST(crc32c_vectors)
{
	uint8_t buf[32];
	size_t i;

	ck_assert_uint_eq(hash_crc32c(0, "123456789", 9), 0xe3069283);
	ck_assert_uint_eq(hash_crc32c_sw(0, "123456789", 9), 0xe3069283);
	ck_assert_uint_eq(hash_crc32c(0, NULL, 0), 0);
	/* RFC 3720, B.4. */
	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(hash_crc32c(0, buf, 32), 0x8a9136aa);
	ck_assert_uint_eq(hash_crc32c_sw(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, sizeof(buf));
	ck_assert_uint_eq(hash_crc32c(0, buf, 32), 0x62a8ab43);
	ck_assert_uint_eq(hash_crc32c_sw(0, buf, 32), 0x62a8ab43);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(hash_crc32c(0, buf, 32), 0x46dd794e);
	ck_assert_uint_eq(hash_crc32c_sw(0, buf, 32), 0x46dd794e);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(hash_crc32c(0, buf, 32), 0x113fdb5c);
	ck_assert_uint_eq(hash_crc32c_sw(0, buf, 32), 0x113fdb5c);
}
END_TEST

/* Any split and any alignment give the same CRC, on both paths. */
START_TEST(crc32c_pieces_and_alignment)
{
	uint8_t buf[300];
	uint32_t whole, a;
	size_t i, off, len;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	whole = hash_crc32c_sw(0, buf, sizeof(buf));
	for (i = 0; i <= sizeof(buf); i++) {
		a = hash_crc32c(0, buf, i);
		ck_assert_uint_eq(hash_crc32c(a, buf + i, sizeof(buf) - i), whole);
		a = hash_crc32c_sw(0, buf, i);
		ck_assert_uint_eq(hash_crc32c_sw(a, buf + i, sizeof(buf) - i), whole);
	}
	for (off = 0; off < 8; off++)
		for (len = 0; len < 64; len++)
			ck_assert_uint_eq(hash_crc32c(0, buf + off, len),
			    hash_crc32c_sw(0, buf + off, len));
}
END_TEST

/* The reference implementation's vectors: key 00..0f, input 00..n-1. */
START_TEST(siphash_vectors)
{
	static const uint64_t want[] = {
		0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a,
		0x85676696d7fb7e2d, 0xcf2794e0277187b7, 0x18765564cd99a68d,
		0xcbc9466e58fee3ce, 0xab0200f58b01d137, 0x93f5f5799a932462,
		0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
		0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee,
		0xa129ca6149be45e5, 0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794,
		0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd, 0xbed65cf21aa2ee98,
		0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
		0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3,
		0x2f2e6163076bcfad, 0xde4daaaca71dc9a5, 0xa6a2506687956571,
		0xad87a3535c49ef28, 0x32d892fad841c342, 0x7127512f72f27cce,
	};
	uint8_t in[64], key2[16];
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	ck_assert_uint_eq(hash_siphash24(test_key, NULL, 0), want[0]);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(hash_siphash24(test_key, in, i) == want[i], "length %zu", i);
	/* The key matters. */
	memcpy(key2, test_key, sizeof(key2));
	key2[15] ^= 1;
	ck_assert_uint_ne(hash_siphash24(key2, in, 15), want[15]);
}
END_TEST

/* --- build, map, look up */

START_TEST(lookup_exact_alias_wildcard)
{
	struct snapb_input in;
	struct snap *s;

	fixture_input(&in);
	s = build_and_map(&in);
	ck_assert_uint_eq(snap_generation(s), 42);
	ck_assert_uint_eq(snap_route_count(s), 4);
	ck_assert_uint_eq(snap_backend_count(s), 4);
	/* Exact and alias. */
	ck_assert_uint_eq(route_id(s, "app.example.com"), 10);
	ck_assert_uint_eq(route_id(s, "www.app.example.com"), 10);
	ck_assert_uint_eq(route_id(s, "api.example.com"), 11);
	ck_assert_uint_eq(route_id(s, "api.example.org"), 11);
	ck_assert_uint_eq(route_id(s, "other.test"), 13);
	/* A wildcard matches exactly one more label. */
	ck_assert_uint_eq(route_id(s, "x.wild.example.com"), 12);
	ck_assert_uint_eq(route_id(s, "x-y_z.example.net"), 11);
	ck_assert_uint_eq(route_id(s, "a.b.wild.example.com"), 0);
	ck_assert_uint_eq(route_id(s, "wild.example.com"), 0);
	ck_assert_uint_eq(route_id(s, "example.net"), 0);
	ck_assert_uint_eq(route_id(s, "a.b.example.net"), 0);
	/* Near misses and odd input. */
	ck_assert_uint_eq(route_id(s, "app.example.co"), 0);
	ck_assert_uint_eq(route_id(s, "pp.example.com"), 0);
	ck_assert_uint_eq(route_id(s, "xapp.example.com"), 0);
	ck_assert_uint_eq(route_id(s, "unknown.test"), 0);
	ck_assert_uint_eq(route_id(s, ".example.net"), 0);
	ck_assert_uint_eq(route_id(s, "x."), 0);
	ck_assert_uint_eq(route_id(s, ""), 0);
	ck_assert_ptr_null(snap_lookup(s, NULL, 0));
	/* A length shorter than the string: only len bytes count. */
	ck_assert_ptr_eq(snap_lookup(s, "other.testing", 10), snap_lookup(s, "other.test", 10));
	snap_unref(s);
}
END_TEST

START_TEST(lookup_default_route)
{
	struct snapb_input in;
	struct snap *s;

	fixture_input(&in);
	in.default_route = 3;
	s = build_and_map(&in);
	ck_assert_uint_eq(route_id(s, "unknown.test"), 13);
	ck_assert_uint_eq(route_id(s, "a.b.wild.example.com"), 13);
	ck_assert_uint_eq(route_id(s, ""), 13);
	ck_assert_uint_eq(route_id(s, "app.example.com"), 10);
	ck_assert_uint_eq(route_id(s, "x.wild.example.com"), 12);
	snap_unref(s);
}
END_TEST

START_TEST(route_fields_and_backends)
{
	struct snapb_input in;
	const struct snap_route *r;
	const struct snap_backend *b;
	struct snap *s;
	uint32_t i;

	fixture_input(&in);
	s = build_and_map(&in);
	r = snap_lookup(s, "www.app.example.com", 19);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(snap_string(s, r->name), "app.example.com");
	ck_assert_uint_eq(r->name.len, 15);
	ck_assert_uint_eq(r->connect_ms, 500);
	ck_assert_uint_eq(r->be_count, 2);
	/* In input order, with their addresses. */
	b = snap_backend_at(s, r->be_first);
	ck_assert_uint_eq(b->id, 200);
	ck_assert_uint_eq(b->family, AF_INET);
	ck_assert_uint_eq(b->port, 3000);
	ck_assert_mem_eq(b->addr, fx_backends[0].addr, 16);
	b = snap_route_backend(s, r, 1);
	ck_assert_uint_eq(b->id, 201);
	ck_assert_uint_eq(b->family, AF_INET6);
	ck_assert_uint_eq(b->port, 3001);
	ck_assert_uint_eq(b->addr[15], 1);
	r = snap_lookup(s, "api.example.org", 15);
	ck_assert_uint_eq(r->max_body, 1024);
	ck_assert_uint_eq(r->be_count, 1);
	ck_assert_uint_eq(snap_backend_at(s, r->be_first)->id, 202);
	ck_assert_uint_eq(snap_lookup(s, "other.test", 10)->be_count, 0);
	ck_assert_str_eq(snap_string(s, snap_route_at(s, 2)->name), "*.wild.example.com");
	for (i = 0; i < snap_backend_count(s); i++) {
		b = snap_backend_at(s, i);
		r = snap_route_at(s, b->route);
		ck_assert(i >= r->be_first && i < r->be_first + r->be_count);
	}
	snap_unref(s);
}
END_TEST

/* The mapping outlives the fd and lasts until the last reference goes. */
START_TEST(refcount_and_seals)
{
	struct snapb_input in;
	struct snap *s;
	int fd, seals;

	fixture_input(&in);
	fd = build_fd(&in);
	seals = fcntl(fd, F_GET_SEALS);
	ck_assert_int_eq(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
	    F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	ck_assert_int_eq(pwrite(fd, "x", 1, 0), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	s = map_fd(fd);
	close(fd);
	ck_assert_ptr_eq(snap_ref(s), s);
	snap_unref(s);
	ck_assert_uint_eq(route_id(s, "app.example.com"), 10);
	snap_unref(s);
	snap_unref(NULL);
}
END_TEST

/* Same input and key, same bytes; no key, a fresh random one. */
START_TEST(deterministic_and_random_key)
{
	struct snapb_input in;
	const struct snap_header *h1, *h3;
	uint8_t *a, *b, *c;
	size_t na, nb, nc;
	int fd;

	fixture_input(&in);
	a = fixture_image(&na);
	b = fixture_image(&nb);
	ck_assert_uint_eq(na, nb);
	ck_assert_mem_eq(a, b, na);
	in.hash_key = NULL;
	fd = build_fd(&in);
	c = read_image(fd, &nc);
	close(fd);
	h1 = (const struct snap_header *)a;
	h3 = (const struct snap_header *)c;
	ck_assert_mem_eq(h1->hash_key, test_key, 16);
	ck_assert(memcmp(h3->hash_key, test_key, 16) != 0);
	ck_assert_int_eq(snap_validate(c, nc, NULL, 0), 0);
	free(a);
	free(b);
	free(c);
}
END_TEST

/* The layout the builder promises: header fields, table, aligned sections. */
START_TEST(builder_layout)
{
	const struct snap_header *h;
	const struct snap_section *t;
	uint8_t *img;
	size_t size;
	uint32_t i;

	img = fixture_image(&size);
	h = (const struct snap_header *)img;
	ck_assert_mem_eq(h->magic, "HLYDSNAP", 8);
	ck_assert_uint_eq(h->major, SNAP_MAJOR);
	ck_assert_uint_eq(h->header_size, 128);
	ck_assert_uint_eq(h->file_size, size);
	ck_assert_uint_eq(h->built_at, 1700000000000000000ull);
	ck_assert_uint_eq(h->nsections, SNAP_SEC__MAX - 1);	/* every known kind, once */
	ck_assert_uint_ge(h->max_probe, 1);
	t = (const struct snap_section *)(img + h->section_table_off);
	for (i = 0; i < h->nsections; i++) {
		ck_assert_uint_eq(t[i].offset % 8, 0);
		ck_assert_uint_ge(t[i].size, (uint64_t)t[i].count * t[i].entry_size);
		/* Five names: 16 slots (>= 2n); two wildcards: the minimum of 8. */
		if (t[i].kind == SNAP_SEC_HOST_INDEX)
			ck_assert_uint_eq(t[i].count, 16);
		if (t[i].kind == SNAP_SEC_WILD_INDEX)
			ck_assert_uint_eq(t[i].count, 8);
		if (t[i].kind == SNAP_SEC_HOSTS)
			ck_assert_uint_eq(t[i].count, 7);
	}
	free(img);
}
END_TEST

static void
expect_build_error(const struct snapb_input *in, const char *want)
{
	char err[256] = "";
	int fd = 123;

	ck_assert_int_eq(snapb_build(in, &fd, err, sizeof(err)), -1);
	ck_assert_int_eq(fd, -1);
	ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
}

START_TEST(builder_rejects)
{
	struct snapb_input in;
	struct snapb_host hosts[7];
	struct snapb_route routes[4];
	struct snapb_backend backends[4];
	char longname[300];

	fixture_input(&in);
	memcpy(hosts, fx_hosts, sizeof(hosts));
	memcpy(routes, fx_routes, sizeof(routes));
	memcpy(backends, fx_backends, sizeof(backends));
	in.hosts = hosts;
	in.routes = routes;
	in.backends = backends;
	hosts[3].name = "app.example.com";
	expect_build_error(&in, "duplicate host name 'app.example.com'");
	hosts[3].name = "*.wild.example.com";
	hosts[3].kind = SNAP_HOST_WILDCARD;
	expect_build_error(&in, "duplicate host name '*.wild.example.com'");
	memcpy(hosts, fx_hosts, sizeof(hosts));
	hosts[2].route = 4;
	expect_build_error(&in, "route 4 out of range");
	memcpy(hosts, fx_hosts, sizeof(hosts));
	hosts[1].kind = SNAP_HOST_WILDCARD;
	expect_build_error(&in, "does not fit the name");
	memcpy(hosts, fx_hosts, sizeof(hosts));
	hosts[1].name = "WWW.app.example.com";
	expect_build_error(&in, "bad or too long name");
	memset(longname, 'a', sizeof(longname));
	for (size_t i = 63; i < sizeof(longname); i += 64)
		longname[i] = '.';
	longname[254] = '\0';
	hosts[1].name = longname;
	expect_build_error(&in, "host 1: bad or too long name");
	longname[253] = '\0';
	ck_assert_uint_eq(strlen(longname), 253);
	hosts[1].name = longname;
	close(build_fd(&in));
	memcpy(hosts, fx_hosts, sizeof(hosts));
	routes[1].be_count = 4;
	expect_build_error(&in, "backends 2+4 out of range");
	routes[1].be_count = 1;
	routes[1].be_first = 1;
	expect_build_error(&in, "backend 1 is shared by routes 0 and 1");
	routes[1].be_count = 0;
	expect_build_error(&in, "backend 2 belongs to no route");
	memcpy(routes, fx_routes, sizeof(routes));
	routes[0].name = NULL;
	expect_build_error(&in, "route 0: bad or too long name");
	memcpy(routes, fx_routes, sizeof(routes));
	backends[3].family = AF_UNIX;
	expect_build_error(&in, "backend 3: bad kind");
	memcpy(backends, fx_backends, sizeof(backends));
	in.default_route = 4;
	expect_build_error(&in, "default route 4 out of range");
}
END_TEST

/* Backend protocol, server name and CA travel; routes without them read empty. */
START_TEST(backend_tls_roundtrip)
{
	static const char ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	struct snapb_route routes[4];
	struct snapb_input in;
	const struct snap_route *r;
	struct snap *s;

	fixture_input(&in);
	memcpy(routes, fx_routes, sizeof(routes));
	in.routes = routes;
	routes[0].proto = SNAP_PROTO_HTTPS;
	routes[0].backend_ca = ca;
	routes[0].backend_sni = "internal.example.net";
	routes[0].flags = SNAP_ROUTE_BACKEND_NO_VERIFY;
	routes[1].proto = SNAP_PROTO_H2C;
	routes[2].proto = SNAP_PROTO_H2;
	routes[2].backend_sni = "";	/* empty is none */
	s = build_and_map(&in);
	r = snap_lookup(s, "app.example.com", 15);
	ck_assert_uint_eq(r->proto, SNAP_PROTO_HTTPS);
	ck_assert_uint_eq(r->flags, SNAP_ROUTE_BACKEND_NO_VERIFY);
	ck_assert_str_eq(snap_string(s, r->backend_sni), "internal.example.net");
	ck_assert_str_eq(snap_string(s, r->backend_ca), ca);
	ck_assert_uint_eq(r->backend_ca.len, strlen(ca));
	r = snap_lookup(s, "api.example.com", 15);
	ck_assert_uint_eq(r->proto, SNAP_PROTO_H2C);
	ck_assert_uint_eq(r->backend_sni.len, 0);
	ck_assert_uint_eq(r->backend_ca.len, 0);
	ck_assert_uint_eq(snap_route_at(s, 2)->proto, SNAP_PROTO_H2);
	ck_assert_uint_eq(snap_route_at(s, 2)->backend_sni.len, 0);
	ck_assert_uint_eq(snap_route_at(s, 3)->proto, SNAP_PROTO_HTTP1);
	snap_unref(s);

	routes[1].proto = SNAP_PROTO__MAX;
	expect_build_error(&in, "route 1 (api.example.com): unknown backend protocol 4");
	routes[1].proto = SNAP_PROTO_H2;
	routes[1].backend_sni = "*.example.net";
	expect_build_error(&in, "bad backend server name");
	routes[1].backend_sni = "Upper.example.net";
	expect_build_error(&in, "bad backend server name");
}
END_TEST

START_TEST(proto_names)
{
	int i;

	for (i = 0; i < SNAP_PROTO__MAX; i++)
		ck_assert_int_eq(snap_proto_parse(snap_proto_name((unsigned)i)), i);
	ck_assert_str_eq(snap_proto_name(SNAP_PROTO_H2C), "h2c");
	ck_assert_ptr_null(snap_proto_name(SNAP_PROTO__MAX));
	ck_assert_int_eq(snap_proto_parse("HTTPS"), -1);
	ck_assert_int_eq(snap_proto_parse(""), -1);
	ck_assert(snap_proto_tls(SNAP_PROTO_HTTPS) && snap_proto_tls(SNAP_PROTO_H2));
	ck_assert(!snap_proto_tls(SNAP_PROTO_HTTP1) && !snap_proto_tls(SNAP_PROTO_H2C));
}
END_TEST

/* No routes at all still makes a valid image; only the default can answer. */
START_TEST(empty_snapshot)
{
	struct snapb_input in;
	struct snap *s;

	memset(&in, 0, sizeof(in));
	in.default_route = SNAP_NONE;
	in.hash_key = test_key;
	s = build_and_map(&in);
	ck_assert_uint_eq(snap_route_count(s), 0);
	ck_assert_ptr_null(snap_lookup(s, "a.example.com", 13));
	snap_unref(s);
}
END_TEST

/* --- damaged images */

static void
fix_crc(uint8_t *img, size_t size)
{
	struct snap_header *h = (struct snap_header *)img;

	h->crc32c = 0;
	h->crc32c = hash_crc32c(0, img, size);
}

static void
expect_invalid(const uint8_t *img, size_t size, const char *want)
{
	char err[256] = "";

	ck_assert_int_eq(snap_validate(img, size, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
}

/* What the validator must name when header byte i is damaged. */
static const char *
header_flip_reason(size_t i)
{
	if (i < 8)
		return "bad magic";
	if (i < 10)
		return "unsupported version";
	if (i >= 12 && i < 16)
		return "bad header size";
	if (i >= 24 && i < 32)
		return "file size";
	if ((i >= 40 && i < 44) || i >= 84)
		return "reserved header field";
	if (i >= 80 && i < 84)
		return "shard";
	/* minor, generation, built_at, the table, CRC, key, default, probe */
	return "crc mismatch";
}

START_TEST(header_bit_flips)
{
	uint8_t *img;
	size_t size, bit;

	img = fixture_image(&size);
	ck_assert_int_eq(snap_validate(img, size, NULL, 0), 0);
	for (bit = 0; bit < sizeof(struct snap_header) * 8; bit++) {
		img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		expect_invalid(img, size, header_flip_reason(bit / 8));
		img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	ck_assert_int_eq(snap_validate(img, size, NULL, 0), 0);
	free(img);
}
END_TEST

/* Beyond the header the CRC catches every flip, wherever it lands. */
START_TEST(image_bit_flips)
{
	uint8_t *img;
	size_t size, bit;
	char err[128];

	img = fixture_image(&size);
	for (bit = sizeof(struct snap_header) * 8; bit < size * 8; bit++) {
		img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_msg(snap_validate(img, size, err, sizeof(err)) == -1, "bit %zu", bit);
		img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(img);
}
END_TEST

/*
 * Truncation at every section boundary and at size - 1: refused for the
 * size, and again with file_size and the CRC rewritten to match, so the
 * section bounds check must catch it.
 */
START_TEST(truncation)
{
	const struct snap_header *h;
	const struct snap_section *t;
	uint8_t *img, *cut;
	size_t size, cuts[32], n = 0, i;

	img = fixture_image(&size);
	h = (const struct snap_header *)img;
	t = (const struct snap_section *)(img + h->section_table_off);
	cuts[n++] = 0;
	cuts[n++] = 64;
	cuts[n++] = h->section_table_off;
	cuts[n++] = h->section_table_off + 16;
	for (i = 0; i < h->nsections; i++) {
		cuts[n++] = t[i].offset;
		if (t[i].offset + t[i].size < size)
			cuts[n++] = t[i].offset + t[i].size;
	}
	cuts[n++] = size - 1;
	for (i = 0; i < n; i++) {
		expect_invalid(img, cuts[i], cuts[i] < 128 ? "too small" : "file size");
		if (cuts[i] < 128)
			continue;
		cut = malloc(cuts[i]);
		memcpy(cut, img, cuts[i]);
		((struct snap_header *)cut)->file_size = cuts[i];
		fix_crc(cut, cuts[i]);
		expect_invalid(cut, cuts[i], "out of bounds");
		free(cut);
	}
	free(img);
}
END_TEST

/* The fixture with its route 1's backend a unix socket and route 2 given a tunnel. */
static const struct snapb_backend kind_backends[] = {
	{ 200, AF_INET, 3000, { 127, 0, 0, 1 }, 0, NULL },
	{ 201, AF_UNIX, 0, { 0 }, 0, "/run/app/app.sock" },
	{ 202, AF_UNSPEC, 0, { 0 }, SNAP_BACKEND_TUNNEL, "office-nas.lan" },
	{ 203, AF_INET, 9000, { 10, 0, 0, 3 }, 0, NULL },
};

static void
kinds_input(struct snapb_input *in, struct snapb_route *routes)
{
	fixture_input(in);
	memcpy(routes, fx_routes, sizeof(fx_routes));
	routes[1].flags = SNAP_ROUTE_BALANCE_RR;
	in->routes = routes;
	in->backends = kind_backends;
}

START_TEST(backend_kinds_roundtrip)
{
	struct snapb_route routes[4];
	struct snapb_input in;
	const struct snap_backend *b;
	const struct snap_route *r;
	struct snap *s;

	kinds_input(&in, routes);
	s = build_and_map(&in);
	r = snap_lookup(s, "app.example.com", 15);
	b = snap_backend_at(s, r->be_first);
	ck_assert_uint_eq(b->family, AF_INET);
	ck_assert_uint_eq(b->name.len, 0);
	b = snap_route_backend(s, r, 1);
	ck_assert_uint_eq(b->id, 201);
	ck_assert_uint_eq(b->family, AF_UNIX);
	ck_assert_uint_eq(b->flags, 0);
	ck_assert_uint_eq(b->port, 0);
	ck_assert_str_eq(snap_string(s, b->name), "/run/app/app.sock");
	r = snap_lookup(s, "api.example.com", 15);
	ck_assert_uint_eq(r->flags & SNAP_ROUTE_BALANCE_RR, SNAP_ROUTE_BALANCE_RR);
	b = snap_backend_at(s, r->be_first);
	ck_assert_uint_eq(b->family, AF_UNSPEC);
	ck_assert_uint_eq(b->flags, SNAP_BACKEND_TUNNEL);
	ck_assert_str_eq(snap_string(s, b->name), "office-nas.lan");
	snap_unref(s);
}
END_TEST

/* The builder refuses a kind that does not fit its name, as the reader would. */
START_TEST(backend_kinds_builder_rejects)
{
	struct snapb_backend bes[4];
	struct snapb_route routes[4];
	struct snapb_input in;
	char longpath[200];

	kinds_input(&in, routes);
	memcpy(bes, kind_backends, sizeof(bes));
	in.backends = bes;
	bes[1].name = "relative.sock";
	expect_build_error(&in, "backend 1: bad kind");
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[108] = '\0';	/* 108 bytes: one more than sun_path holds with its NUL */
	bes[1].name = longpath;
	expect_build_error(&in, "backend 1: bad kind");
	longpath[107] = '\0';
	close(build_fd(&in));	/* 107 bytes fit */
	bes[1].name = NULL;
	expect_build_error(&in, "backend 1: bad kind");
	memcpy(bes, kind_backends, sizeof(bes));
	bes[2].name = "Office";
	expect_build_error(&in, "backend 2: bad kind");
	bes[2].name = "-office";
	expect_build_error(&in, "backend 2: bad kind");
	bes[2].name = "office";
	bes[2].family = AF_INET;
	expect_build_error(&in, "backend 2: bad kind");
	bes[2].family = AF_UNSPEC;
	bes[2].flags = 0;
	expect_build_error(&in, "backend 2: bad kind");
	bes[2] = kind_backends[0];
	bes[2].name = "/x.sock";	/* an address has no name */
	expect_build_error(&in, "backend 2: bad kind");
}
END_TEST

/* Damaged unix and tunnel entries: each is refused, with the backend named. */
START_TEST(backend_kinds_damage)
{
	struct snapb_route routes[4];
	struct snapb_input in;
	struct snap_backend *be;
	struct snap_section *t;
	uint8_t *img, *copy;
	size_t size;
	uint32_t i;
	char *str;
	int fd;

	kinds_input(&in, routes);
	fd = build_fd(&in);
	img = read_image(fd, &size);
	close(fd);
	ck_assert_int_eq(snap_validate(img, size, NULL, 0), 0);
	for (i = 0; i < 9; i++) {
		copy = malloc(size);
		memcpy(copy, img, size);
		t = (struct snap_section *)(copy + ((struct snap_header *)copy)->section_table_off);
		while (t->kind != SNAP_SEC_BACKENDS)
			t++;
		be = (struct snap_backend *)(copy + t->offset);
		t = (struct snap_section *)(copy + ((struct snap_header *)copy)->section_table_off);
		while (t->kind != SNAP_SEC_STRTAB)
			t++;
		str = (char *)copy + t->offset;
		switch (i) {
		case 0: str[be[1].name.off] = 'r'; break;		/* not absolute */
		case 1: str[be[1].name.off + 3] = '\n'; break;	/* a control byte */
		case 2: be[1].port = 80; break;			/* an address on a path */
		case 3: be[1].name.len = 0; break;			/* no path */
		case 4: str[be[2].name.off] = 'O'; break;		/* not the name rule */
		case 5: be[2].flags = 0; break;			/* no kind */
		case 6: be[2].addr[3] = 1; break;
		case 7: be[0].name = be[1].name; break;		/* an address with a name */
		case 8: be[2].name.len = 200; break;			/* past its NUL */
		}
		fix_crc(copy, size);
		expect_invalid(copy, size, i < 4 || i == 8 ? (i == 8 ? "backend 2: bad kind" :
		    "backend 1: bad kind") : i == 7 ? "backend 0: bad kind" : "backend 2: bad kind");
		free(copy);
	}
	free(img);
}
END_TEST

/* A DNS name's entries (major 4): one per address with the name, or one unresolved. */
static const struct snapb_backend name_backends[] = {
	{ 0x80000001u, AF_INET, 3000, { 127, 0, 0, 2 }, SNAP_BACKEND_NAME, "app.internal" },
	{ 0x80000002u, AF_INET6, 3000, { [15] = 1 }, SNAP_BACKEND_NAME, "app.internal" },
	{ 202, AF_UNSPEC, 8080, { 0 }, SNAP_BACKEND_NAME, "nosuch.internal" },
	{ 203, AF_INET, 9000, { 10, 0, 0, 3 }, 0, NULL },
};

/* The entries of backend i in a private copy of img, to damage them. */
static struct snap_backend *
name_image_backends(uint8_t *copy, char **str)
{
	struct snap_section *t;

	t = (struct snap_section *)(copy + ((struct snap_header *)copy)->section_table_off);
	while (t->kind != SNAP_SEC_STRTAB)
		t++;
	*str = (char *)copy + t->offset;
	t = (struct snap_section *)(copy + ((struct snap_header *)copy)->section_table_off);
	while (t->kind != SNAP_SEC_BACKENDS)
		t++;
	return (struct snap_backend *)(copy + t->offset);
}

START_TEST(backend_names)
{
	struct snapb_backend bes[4];
	struct snapb_route routes[4];
	struct snapb_input in;
	const struct snap_backend *b;
	struct snap_backend *be;
	uint8_t *img, *copy;
	size_t size;
	struct snap *s;
	char *str;
	int fd, i;

	kinds_input(&in, routes);
	in.backends = name_backends;
	s = build_and_map(&in);
	b = snap_backend_at(s, 1);
	ck_assert_uint_eq(b->id, 0x80000002u);
	ck_assert_uint_eq(b->family, AF_INET6);
	ck_assert_uint_eq(b->port, 3000);
	ck_assert_str_eq(snap_string(s, b->name), "app.internal");
	b = snap_backend_at(s, 2);
	ck_assert_uint_eq(b->family, AF_UNSPEC);
	ck_assert_uint_eq(b->flags, SNAP_BACKEND_NAME);
	ck_assert_uint_eq(b->port, 8080);
	snap_unref(s);
	/* The builder refuses what the reader would. */
	memcpy(bes, name_backends, sizeof(bes));
	in.backends = bes;
	bes[0].port = 0;
	expect_build_error(&in, "backend 0: bad kind");
	bes[0] = name_backends[0];
	bes[0].name = "App.internal";
	expect_build_error(&in, "backend 0: bad kind");
	bes[0].name = "10.0.0.1";
	expect_build_error(&in, "backend 0: bad kind");
	bes[0] = name_backends[0];
	bes[0].family = AF_UNIX;
	expect_build_error(&in, "backend 0: bad kind");
	/* The reader: a damaged entry is refused with its index. */
	in.backends = name_backends;
	fd = build_fd(&in);
	img = read_image(fd, &size);
	close(fd);
	for (i = 0; i < 4; i++) {
		copy = malloc(size);
		memcpy(copy, img, size);
		be = name_image_backends(copy, &str);
		switch (i) {
		case 0: be[0].port = 0; break;				/* no port */
		case 1: str[be[0].name.off] = 'A'; break;		/* not normalised */
		case 2: be[2].addr[0] = 1; break;			/* unresolved with an address */
		case 3: be[2].flags |= SNAP_BACKEND_TUNNEL; break;	/* two kinds */
		}
		fix_crc(copy, size);
		expect_invalid(copy, size, i < 2 ? "backend 0: bad kind" : "backend 2: bad kind");
		free(copy);
	}
	free(img);
}
END_TEST

/* Pointers into a private copy of the fixture image, to rewrite fields. */
struct damaged {
	uint8_t *img;
	size_t size;
	struct snap_header *h;
	struct snap_section *sec[SNAP_SEC__MAX];
	struct snap_host *hosts;
	struct snap_slot *hidx;
	struct snap_route *routes;
	struct snap_backend *backends;
};

static void
damaged_open(struct damaged *d)
{
	struct snap_section *t;
	uint32_t i;

	memset(d, 0, sizeof(*d));
	d->img = fixture_image(&d->size);
	d->h = (struct snap_header *)d->img;
	t = (struct snap_section *)(d->img + d->h->section_table_off);
	for (i = 0; i < d->h->nsections; i++)
		d->sec[t[i].kind] = &t[i];
	d->hosts = (struct snap_host *)(d->img + d->sec[SNAP_SEC_HOSTS]->offset);
	d->hidx = (struct snap_slot *)(d->img + d->sec[SNAP_SEC_HOST_INDEX]->offset);
	d->routes = (struct snap_route *)(d->img + d->sec[SNAP_SEC_ROUTES]->offset);
	d->backends = (struct snap_backend *)(d->img + d->sec[SNAP_SEC_BACKENDS]->offset);
}

/* Recomputes the CRC so that the check under test is the one that fires. */
static void
damaged_expect(struct damaged *d, const char *want)
{
	fix_crc(d->img, d->size);
	expect_invalid(d->img, d->size, want);
	free(d->img);
	damaged_open(d);
}

START_TEST(out_of_range_indexes)
{
	struct damaged d;
	uint32_t i;

	damaged_open(&d);
	/* The untouched copy is fine, and so is a rewritten CRC of it. */
	fix_crc(d.img, d.size);
	ck_assert_int_eq(snap_validate(d.img, d.size, NULL, 0), 0);
	d.hosts[2].route = 4;
	damaged_expect(&d, "host 2: route 4 out of range");
	d.hosts[0].cert = 0;
	damaged_expect(&d, "host 0: cert 0 out of range");
	d.routes[1].be_count = 3;
	damaged_expect(&d, "route 1: backends 2+3 out of range");
	d.routes[3].be_first = 5;
	damaged_expect(&d, "route 3: backends 5+0 out of range");
	d.backends[1].route = 9;
	damaged_expect(&d, "backend 1: route 9 out of range");
	d.backends[1].route = 1;
	damaged_expect(&d, "route 0: backend 1 belongs to route 1");
	d.backends[0].family = 0;
	damaged_expect(&d, "backend 0: bad kind (family 0");
	d.h->default_route = 4;
	damaged_expect(&d, "default route 4 out of range");
	/* A health check's path must come with every one of its bounded settings. */
	d.routes[0].health_path = d.routes[0].name;
	damaged_expect(&d, "route 0: bad health check settings");
	d.routes[0].health_path = d.routes[0].name;
	d.routes[0].health_interval_ms = 5000;
	d.routes[0].health_timeout_ms = 2000;
	d.routes[0].health_rise = 2;
	d.routes[0].health_fall = SNAP_HEALTH_COUNT_MAX + 1;
	damaged_expect(&d, "route 0: bad health check settings");
	d.routes[0].reserved2 = 1;
	damaged_expect(&d, "route 0: bad protocol 0, PROXY version 0 or reserved fields set");
	for (i = 0; d.hidx[i].host_plus1 == 0; i++)
		;
	d.hidx[i].host_plus1 = 8;
	damaged_expect(&d, "points past HOSTS");
	for (i = 0; d.hidx[i].host_plus1 == 0; i++)
		;
	d.hidx[i].hash ^= 1;
	damaged_expect(&d, "not found within");
	free(d.img);
}
END_TEST

START_TEST(bad_strings)
{
	struct damaged d;
	uint32_t strtab;

	damaged_open(&d);
	strtab = d.sec[SNAP_SEC_STRTAB]->count;
	d.hosts[0].name.off = strtab;
	damaged_expect(&d, "host 0: name string");
	d.hosts[0].name.off = strtab - d.hosts[0].name.len;
	damaged_expect(&d, "host 0: name string");
	d.hosts[0].name.off = UINT32_MAX;
	damaged_expect(&d, "host 0: name string");
	/* Not NUL-terminated where it ends. */
	d.hosts[0].name.len--;
	damaged_expect(&d, "host 0: name string");
	/* A NUL inside. */
	d.hosts[1].name.len += d.hosts[2].name.len + 1;
	damaged_expect(&d, "host 1: name string");
	d.hosts[0].name.len = 0;
	damaged_expect(&d, "host 0: name string");
	d.routes[2].name.off = strtab + 100;
	damaged_expect(&d, "route 2: name string");
	/* A name that is not a wildcard in the wildcard index, and the reverse. */
	d.hosts[4].kind = SNAP_HOST_ALIAS;
	damaged_expect(&d, "host 4: bad kind");
	d.hosts[0].kind = SNAP_HOST_WILDCARD;
	damaged_expect(&d, "host 0: bad kind");
	d.hosts[0].kind = 9;
	damaged_expect(&d, "host 0: bad kind");
	free(d.img);
}
END_TEST

START_TEST(bad_sections)
{
	struct damaged d;

	damaged_open(&d);
	d.sec[SNAP_SEC_HOSTS]->offset = (d.size + 8) & ~(size_t)7;
	damaged_expect(&d, "out of bounds");
	d.sec[SNAP_SEC_STRTAB]->size += 8;
	damaged_expect(&d, "out of bounds");
	d.sec[SNAP_SEC_HOSTS]->offset += 4;
	damaged_expect(&d, "not 8-aligned");
	d.sec[SNAP_SEC_WILD_INDEX]->offset = d.sec[SNAP_SEC_ROUTES]->offset;
	damaged_expect(&d, "overlaps section");
	d.sec[SNAP_SEC_BACKENDS]->offset = d.sec[SNAP_SEC_ROUTES]->offset + 8;
	damaged_expect(&d, "overlaps section");
	d.sec[SNAP_SEC_WILD_INDEX]->offset = 64;
	damaged_expect(&d, "overlaps the header");
	d.sec[SNAP_SEC_WILD_INDEX]->offset = d.h->section_table_off + 32;
	damaged_expect(&d, "overlaps the header");
	d.sec[SNAP_SEC_ROUTES]->entry_size = 40;
	damaged_expect(&d, "entry size 40, expected 112");
	d.sec[SNAP_SEC_HOSTS]->count = 100;
	damaged_expect(&d, "do not fit");
	d.sec[SNAP_SEC_WILD_INDEX]->count = 7;
	damaged_expect(&d, "not a power of two");
	d.sec[SNAP_SEC_HOSTS]->flags = 1;
	damaged_expect(&d, "reserved flags");
	d.sec[SNAP_SEC_HOSTS]->kind = SNAP_SEC_ROUTES;
	d.sec[SNAP_SEC_HOSTS]->entry_size = sizeof(struct snap_route);
	d.sec[SNAP_SEC_HOSTS]->count = 1;
	damaged_expect(&d, "kind 5 repeated");
	d.sec[SNAP_SEC_HOSTS]->kind = 77;
	damaged_expect(&d, "section kind 2 missing");
	d.h->nsections = 1000;
	damaged_expect(&d, "section table");
	d.h->section_table_off = (uint32_t)d.size;
	damaged_expect(&d, "section table");
	d.h->section_table_off = 132;
	damaged_expect(&d, "section table");
	free(d.img);
}
END_TEST

START_TEST(bad_probes_and_reserved)
{
	struct damaged d;
	uint32_t i;

	damaged_open(&d);
	d.h->max_probe = 0;
	damaged_expect(&d, "not found within 0 probes");
	d.h->max_probe = 1000;
	damaged_expect(&d, "max probe 1000 exceeds");
	/* Another generation's key: nothing is where the builder put it. */
	d.h->hash_key[0] ^= 0x55;
	damaged_expect(&d, "not found within");
	/* Two rows with one name: the second is unreachable. */
	d.hosts[1].name = d.hosts[0].name;
	damaged_expect(&d, "host 1 (app.example.com) not found");
	/* A stray slot: every host is still found, but one slot too many is used. */
	for (i = 0; d.hidx[i].host_plus1 != 0; i++)
		;
	d.hidx[i] = (struct snap_slot){ 12345, 1 };
	damaged_expect(&d, "indexes hold 6 and 2 slots for 5 and 2 hosts");
	for (i = 0; d.hidx[i].host_plus1 != 0; i++)
		;
	d.hidx[i] = (struct snap_slot){ 12345, 5 };
	damaged_expect(&d, "host index: slot");
	d.hosts[3].flags = 1;
	damaged_expect(&d, "host 3: reserved flags");
	d.routes[0].flags = 0x8000;
	damaged_expect(&d, "route 0: unknown flags");
	d.routes[1].proto = SNAP_PROTO__MAX;
	damaged_expect(&d, "route 1: bad protocol");
	d.routes[1].backend_ca = (struct snap_str){ 0xfffff, 3 };
	damaged_expect(&d, "route 1: backend TLS strings invalid");
	d.backends[2].flags = 4;
	damaged_expect(&d, "backend 2: unknown flags 0x4");
	d.h->reserved[43] = 1;
	damaged_expect(&d, "reserved header field");
	d.h->major = SNAP_MAJOR + 1;
	damaged_expect(&d, "unsupported version");
	/* A newer minor version is accepted. */
	d.h->minor = SNAP_MINOR + 1;
	fix_crc(d.img, d.size);
	ck_assert_int_eq(snap_validate(d.img, d.size, NULL, 0), 0);
	free(d.img);
}
END_TEST

/* An image in a memfd with the given seals (0 for none). */
static int
memfd_with(const uint8_t *img, size_t size, int seals)
{
	int fd = memfd_create("check-snap", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, img, size), (ssize_t)size);
	if (seals != 0)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/*
 * Found by tests/fuzz/fuzz_snapshot: an empty string's offset is not
 * validated (the builder leaves it 0, where another string starts), so
 * snap_string must not read there: it is "" whatever the offset says.
 */
START_TEST(empty_strings_read_empty)
{
	struct damaged d;
	struct snap *s = NULL;
	char err[256] = "";
	int fd;

	damaged_open(&d);
	d.routes[1].backend_sni = (struct snap_str){ 0xfffffff0, 0 };
	d.routes[1].backend_ca = (struct snap_str){ 0, 0 };
	fix_crc(d.img, d.size);
	fd = memfd_with(d.img, d.size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(snap_string(s, snap_route_at(s, 1)->backend_sni), "");
	ck_assert_str_eq(snap_string(s, snap_route_at(s, 1)->backend_ca), "");
	ck_assert_str_eq(snap_string(s, snap_route_at(s, 1)->name), "api.example.com");
	snap_unref(s);
	close(fd);
	free(d.img);
}
END_TEST

static void
expect_map_error(int fd, const char *want)
{
	struct snap *s = (struct snap *)1;
	char err[256] = "";

	ck_assert_int_eq(snap_map(fd, &s, err, sizeof(err)), -1);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
}

START_TEST(map_refuses_unsealed)
{
	const int all = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	struct snap *s;
	uint8_t *img;
	size_t size;
	int fd, p[2];

	img = fixture_image(&size);
	fd = memfd_with(img, size, 0);
	expect_map_error(fd, "not a sealed memfd");
	close(fd);
	fd = memfd_with(img, size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	expect_map_error(fd, "not a sealed memfd");
	close(fd);
	fd = memfd_with(img, size, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
	expect_map_error(fd, "not a sealed memfd");
	close(fd);
	ck_assert_int_eq(pipe(p), 0);
	expect_map_error(p[0], "not a sealed memfd");
	close(p[0]);
	close(p[1]);
	/* Sealed but damaged, or too short: refused by validation. */
	img[200] ^= 1;
	fd = memfd_with(img, size, all);
	expect_map_error(fd, "crc mismatch");
	close(fd);
	img[200] ^= 1;
	fd = memfd_with(img, size - 1, all);
	expect_map_error(fd, "file size");
	close(fd);
	fd = memfd_with(img, 100, all);
	expect_map_error(fd, "out of bounds");
	close(fd);
	/* The same bytes, sealed, map. */
	fd = memfd_with(img, size, all);
	ck_assert_int_eq(snap_map(fd, &s, NULL, 0), 0);
	close(fd);
	ck_assert_uint_eq(route_id(s, "x.example.net"), 11);
	snap_unref(s);
	free(img);
}
END_TEST

/* --- scale */

#define BIG_ROUTES 100000
#define BIG_NAME 40

/* 100 000 routes, each with one alias and two backends. */
START_TEST(big_roundtrip)
{
	struct snapb_route *routes = calloc(BIG_ROUTES, sizeof(*routes));
	struct snapb_host *hosts = calloc(2 * BIG_ROUTES, sizeof(*hosts));
	struct snapb_backend *bes = calloc(2 * BIG_ROUTES, sizeof(*bes));
	char *names = malloc((size_t)2 * BIG_ROUTES * BIG_NAME);
	struct snapb_input in;
	struct snap *s;
	char host[BIG_NAME];
	uint32_t i;

	ck_assert(routes != NULL && hosts != NULL && bes != NULL && names != NULL);
	for (i = 0; i < BIG_ROUTES; i++) {
		char *n = names + (size_t)2 * i * BIG_NAME, *a = n + BIG_NAME;

		snprintf(n, BIG_NAME, "r%u.example.com", i);
		snprintf(a, BIG_NAME, "www.r%u.example.org", i);
		routes[i] = (struct snapb_route){ .id = i + 1, .name = n, .be_first = 2 * i,
		    .be_count = 2 };
		hosts[2 * i] = (struct snapb_host){ 2 * i + 1, n, i, SNAP_HOST_EXACT, NULL };
		hosts[2 * i + 1] = (struct snapb_host){ 2 * i + 2, a, i, SNAP_HOST_ALIAS, NULL };
		bes[2 * i] = (struct snapb_backend){ 2 * i + 1, AF_INET,
		    (uint16_t)(1024 + i % 60000),
		    { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i }, 0, NULL };
		bes[2 * i + 1] = bes[2 * i];
		bes[2 * i + 1].id = 2 * i + 2;
	}
	memset(&in, 0, sizeof(in));
	in.routes = routes;
	in.nroutes = BIG_ROUTES;
	in.hosts = hosts;
	in.nhosts = 2 * BIG_ROUTES;
	in.backends = bes;
	in.nbackends = 2 * BIG_ROUTES;
	in.default_route = SNAP_NONE;
	s = build_and_map(&in);
	ck_assert_uint_eq(snap_route_count(s), BIG_ROUTES);
	for (i = 0; i < BIG_ROUTES; i++) {
		const struct snap_route *r;

		snprintf(host, sizeof(host), "r%u.example.com", i);
		r = snap_lookup(s, host, strlen(host));
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(r->id, i + 1);
		ck_assert_uint_eq(r->be_count, 2);
		ck_assert_uint_eq(snap_route_backend(s, r, 1)->id, 2 * i + 2);
		snprintf(host, sizeof(host), "www.r%u.example.org", i);
		ck_assert_uint_eq(route_id(s, host), i + 1);
	}
	ck_assert_uint_eq(route_id(s, "r100000.example.com"), 0);
	snap_unref(s);
	free(routes);
	free(hosts);
	free(bes);
	free(names);
}
END_TEST

Suite *
suite_snap(void)
{
	Suite *s = suite_create("snap");
	TCase *tc = tcase_create("hash");

	tcase_add_test(tc, crc32c_vectors);
	tcase_add_test(tc, crc32c_pieces_and_alignment);
	tcase_add_test(tc, siphash_vectors);
	suite_add_tcase(s, tc);
	tc = tcase_create("roundtrip");
	tcase_add_test(tc, lookup_exact_alias_wildcard);
	tcase_add_test(tc, lookup_default_route);
	tcase_add_test(tc, backend_tls_roundtrip);
	tcase_add_test(tc, proto_names);
	tcase_add_test(tc, route_fields_and_backends);
	tcase_add_test(tc, refcount_and_seals);
	tcase_add_test(tc, deterministic_and_random_key);
	tcase_add_test(tc, builder_layout);
	tcase_add_test(tc, builder_rejects);
	tcase_add_test(tc, empty_snapshot);
	tcase_add_test(tc, backend_kinds_roundtrip);
	tcase_add_test(tc, backend_kinds_builder_rejects);
	suite_add_tcase(s, tc);
	tc = tcase_create("damage");
	tcase_add_test(tc, header_bit_flips);
	tcase_add_test(tc, image_bit_flips);
	tcase_add_test(tc, truncation);
	tcase_add_test(tc, out_of_range_indexes);
	tcase_add_test(tc, bad_strings);
	tcase_add_test(tc, backend_kinds_damage);
	tcase_add_test(tc, backend_names);
	tcase_add_test(tc, bad_sections);
	tcase_add_test(tc, bad_probes_and_reserved);
	tcase_add_test(tc, map_refuses_unsealed);
	tcase_add_test(tc, empty_strings_read_empty);
	suite_add_tcase(s, tc);
	tc = tcase_create("scale");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, big_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}
