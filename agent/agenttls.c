/* haloyd-tunnel's TLS client context (see agenttls.h). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "agent/agentconf.h"
#include "agent/agenttls.h"
#include "share/util.h"

static const unsigned char alpn_h2[] = { 2, 'h', '2' };

static int
tls_errf(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	return util_errf(err, errlen, "%s %s: %s", what, path,
	    e != 0 ? ERR_reason_error_string(e) : "unusable");
}

int
agenttls_check_key_mode(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return util_errf(err, errlen, "key %s: %s", path, strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return util_errf(err, errlen, "key %s is readable by group or others (mode %04o): "
		    "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
	return 0;
}

static int
readable(const char *what, const char *path, char *err, size_t errlen)
{
	if (access(path, R_OK) == -1)
		return util_errf(err, errlen, "%s %s: %s", what, path, strerror(errno));
	return 0;
}

SSL_CTX *
agenttls_context(const struct agentconf *c, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;

	if (readable("certificate", c->cert, err, errlen) == -1 ||
	    readable("key", c->key, err, errlen) == -1 ||
	    agenttls_check_key_mode(c->key, err, errlen) == -1 ||
	    (c->ca[0] != '\0' && readable("CA file", c->ca, err, errlen) == -1))
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		util_errf(err, errlen, "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
		tls_errf(err, errlen, "certificate", c->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
		tls_errf(err, errlen, "key", c->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		util_errf(err, errlen, "key %s does not match certificate %s", c->key, c->cert);
		goto fail;
	}
	if (c->ca[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, c->ca, NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_errf(err, errlen, "CA file", c->ca[0] != '\0' ? c->ca : "(system roots)");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0) {
		util_errf(err, errlen, "out of memory");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}
