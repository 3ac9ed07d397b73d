/*
 * libFuzzer harness: the ACME child's handling of what the CA answers
 * (acme/client.c: directory, nonces, problem documents, account
 * registration; acme/order.c: newOrder, authorisations and their
 * challenges, polling, finalize, the order object, the certificate
 * download), run as the child runs it: one order per input, started with
 * order_start, the master's CHAL_READY sent back for every challenge the
 * child publishes, its timers fired by a clock that jumps a minute a turn.
 *
 * The CA's answers come from the input instead of libcurl: the harness is
 * linked with -Wl,--wrap=acme_http,--wrap=util_now_ms, so acme/http.c's
 * acme_http is replaced and every other part of the child is real. Each
 * answer, in the order the child asks:
 *
 *	u16 status; u16 body length; u8 header length (little-endian);
 *	headers: "Replay-Nonce\nLocation\nRetry-After" (missing parts empty);
 *	body (JSON, or the PEM chain)
 *
 * The Retry-After value goes through the real acme_retry_after. When the
 * input runs out, the CA is unreachable (a transport error).
 * With the first byte's low bit set, the rest is instead a base64url string
 * for jws_b64u_decode; what it decodes must re-encode (jws_b64u) to itself.
 */
#include "config.h"

#include <sys/socket.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acme/acmechild.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __wrap_acme_http(void *h, const char *url, const char *body, int head, const char *ca_file,
    struct acme_resp *r, char *err, size_t errlen);
uint64_t __wrap_util_now_ms(void);
uint64_t __real_util_now_ms(void);

#define AJ_TURNS 48		/* loop turns per order */
#define AJ_TICK_MS 61000	/* longer than any poll delay (POLL_MAX_S) */

static struct acme a;
static int parent[2];		/* [0] is the child's, [1] the master's */
static struct ipc_msg *rx;
static char dir[128];
static const uint8_t *in;	/* the CA's answers still to give */
static size_t in_left;
static uint64_t clock_skew;

uint64_t
__wrap_util_now_ms(void)
{
	return __real_util_now_ms() + clock_skew;
}

static size_t
aj_num(size_t n)
{
	size_t v = 0, i;

	for (i = 0; i < n && in_left > 0; i++, in++, in_left--)
		v |= (size_t)*in << (8 * i);
	return v;
}

/* The next piece of the header block, up to '\n'. */
static void
aj_header(const char **p, const char *end, char *out, size_t outlen)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = (size_t)((nl != NULL ? nl : end) - *p);

	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = nl != NULL ? nl + 1 : end;
}

int
__wrap_acme_http(void *h, const char *url, const char *body, int head, const char *ca_file,
    struct acme_resp *r, char *err, size_t errlen)
{
	char hdr[256], ra[64];
	const char *p = hdr, *end;
	size_t blen, hlen;

	memset(r, 0, sizeof(*r));
	if (in_left < 5) {
		snprintf(err, errlen, "%s: connection refused (the input ran out)", url);
		return -1;
	}
	r->status = (long)aj_num(2);
	blen = aj_num(2);
	hlen = aj_num(1);
	if (hlen > in_left)
		hlen = in_left;
	memcpy(hdr, in, hlen);
	in += hlen;
	in_left -= hlen;
	end = hdr + hlen;
	aj_header(&p, end, r->nonce, sizeof(r->nonce));
	aj_header(&p, end, r->location, sizeof(r->location));
	aj_header(&p, end, ra, sizeof(ra));
	r->retry_after_s = acme_retry_after(ra, time(NULL));
	if (blen > in_left)
		blen = in_left;
	if ((r->body = malloc(blen + 1)) == NULL)
		abort();
	memcpy(r->body, in, blen);
	r->body[blen] = '\0';
	r->len = head ? 0 : blen;
	in += blen;
	in_left -= blen;
	return 0;
}

/* What the child sent the master; a published challenge is answered CHAL_READY at once. */
static void
aj_master(void)
{
	char host[MSG_NAME_MAX + 1], token[MSG_A_TOKEN_MAX + 1], ka[512];
	struct cur c;

	while (ipc_recv(parent[1], rx) == 1) {
		if (rx->h.type != MSG_A_CHAL_ADD && rx->h.type != MSG_A_CHAL_ALPN)
			continue;
		cur_init(&c, rx->data, rx->h.len);
		(void)cur_u64(&c);
		if (cur_str(&c, host, sizeof(host)) == 0 && cur_str(&c, token, sizeof(token)) == 0 &&
		    cur_str(&c, ka, sizeof(ka)) == 0 && a.order != NULL)
			order_chal_ready(&a, token);
	}
}

static void
aj_order(void)
{
	static uint64_t id;
	char **names = calloc(2, sizeof(char *));
	/* Both challenge types in turn; replaces and a profile, which the directory may offer. */
	struct order_opts op = { MSG_A_CHAL_HTTP01, "kid.serial", "shortlived" };
	int i;

	if (names == NULL || (names[0] = strdup("a.example.com")) == NULL ||
	    (names[1] = strdup("www.a.example.com")) == NULL)
		abort();
	/* Every input starts from scratch: directory, nonce and account come from it too. */
	acme_client_reset(&a.cl);
	free(a.cl.kid);
	a.cl.kid = NULL;
	unlinkat(a.cl.dirfd, "account.url", 0);
	op.chal = ++id % 2 ? MSG_A_CHAL_HTTP01 : MSG_A_CHAL_TLSALPN01;
	(void)order_start(&a, id, names, 2, &op);
	for (i = 0; i < AJ_TURNS && a.order != NULL; i++) {
		aj_master();
		clock_skew += AJ_TICK_MS;
		if (ev_run_once(a.loop, 0) == -1)
			break;
	}
	aj_master();
	if (a.order != NULL) {
		order_free(a.order);
		a.order = NULL;
	}
}

static void
aj_b64u(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1), *again;
	uint8_t *out = NULL;
	size_t len = 0;

	if (s == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	if (jws_b64u_decode(s, &out, &len) == 0 && (again = jws_b64u(out, len)) != NULL) {
		/* The decoder takes only canonical input (no padding, no stray bits): it comes back. */
		if (strcmp(again, s) != 0) {
			fprintf(stderr, "jws_b64u(jws_b64u_decode(\"%s\")) = \"%s\"\n", s, again);
			abort();
		}
		free(again);
	}
	free(out);
	free(s);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	const char *tmp = getenv("TMPDIR");

	/* tests/fuzz/run gives each harness a TMPDIR of its own and removes it afterwards. */
	snprintf(dir, sizeof(dir), "%s/haloyd-fuzz-acme.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, parent) == -1 ||
	    (rx = malloc(sizeof(*rx))) == NULL || (a.loop = ev_loop_new()) == NULL)
		abort();
	a.parent = parent[0];
	a.sigfd = -1;
	a.configured = 1;
	a.cl.directory_url = strdup("https://ca.invalid/dir");
	a.cl.email = strdup("ops@example.com");
	if ((a.cl.dirfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) == -1 ||
	    a.cl.directory_url == NULL || a.cl.email == NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		aj_b64u(data + 1, size - 1);
		return 0;
	}
	in = data + 1;
	in_left = size - 1;
	aj_order();
	return 0;
}
