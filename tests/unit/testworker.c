/* The unit suites' worker fixtures (see testworker.h). */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "share/evloop.h"
#include "tests/unit/testworker.h"

static struct worker *tw_w;
static struct shm_wslot tw_stats;	/* the worker's counters, as if the region had come */

void
tw_worker_init(struct worker *w)
{
	memset(w, 0, sizeof(*w));
	ck_assert_ptr_nonnull(w->loop = ev_loop_new());
	w->bufs.size = BUF_SIZE;
	memset(&tw_stats, 0, sizeof(tw_stats));
	w->stats = &tw_stats;
	tw_w = w;
}

uint64_t
tw_deadline(int ms)
{
	return util_now_ms() + (uint64_t)ms;
}

void
tw_turn(void)
{
	ck_assert_int_eq(ev_run_once(tw_w->loop, 10), 0);
}

void
tw_run_ms(int ms)
{
	uint64_t end = tw_deadline(ms);

	while (util_now_ms() < end)
		tw_turn();
}

struct snap *
tw_snap(const struct snapb_input *in)
{
	char err[256] = "";
	struct snap *s = NULL;
	int fd;

	ck_assert_msg(snapb_build(in, &fd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	return s;
}

int
tw_listen(int flags, int backlog, uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

int
tw_try_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	ck_assert_msg(fd >= 0 || errno == EAGAIN, "accept: %s", strerror(errno));
	return fd;
}

int
tw_accept(int lfd)
{
	uint64_t dl = tw_deadline(3000);
	int fd;

	while ((fd = tw_try_accept(lfd)) == -1) {
		ck_assert_msg(util_now_ms() < dl, "no connection on the listener");
		tw_turn();
	}
	return fd;
}

static int
nop_head(void *a, struct msg_head *h)
{
	(void)a;
	(void)h;
	return 0;
}

static int
nop_body(void *a, const char *p, size_t n)
{
	(void)a;
	(void)p;
	(void)n;
	return 0;
}

const struct h1_events tw_nop_events = { nop_head, nop_body, nop_head };

void
tw_parse_head(struct msg_head *h, const char *text)
{
	struct h1 *p = h1_new(H1_REQUEST, h, &tw_nop_events, NULL);

	ck_assert_ptr_nonnull(p);
	ck_assert_int_gt(h1_feed(p, text, strlen(text)), 0);
	ck_assert_int_eq(h1_head_done(p), 1);
	h1_free(p);
}

char *
tw_bio_take(BIO *b, size_t *len)
{
	char *p, *out;
	long n = BIO_get_mem_data(b, &p);

	ck_assert_int_gt(n, 0);
	out = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

X509 *
tw_x509(EVP_PKEY *k, const char *cn, const char *san, long days)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n;
	X509_EXTENSION *ext;
	X509V3_CTX v3;

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	ck_assert_ptr_nonnull(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
	return x;
}
