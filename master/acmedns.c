/*
 * DNS-01's settings in the master: the update server (a literal address,
 * port 53 unless given) and the TSIG key file, read once at start. The
 * master reads the key because the file is root's and the ACME child runs
 * as haloyd-acme under a filter; the child gets the secret in MSG_A_DNS
 * and keeps it in memory only. A key file others may read is refused.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "master/acmeint.h"
#include "master/master.h"
#include "share/addr.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/util.h"

#define KEYFILE_MAX 8192	/* one key statement; BIND's files are a few lines */

/* The next token of a BIND statement: a quoted string, a word, or one of "{};". */
static int
next_token(const char **p, char *out, size_t outlen)
{
	const char *s = *p;
	size_t n;

	while (isspace((unsigned char)*s) || *s == '#' || (s[0] == '/' && s[1] == '/'))
		if (isspace((unsigned char)*s))
			s++;
		else
			s += strcspn(s, "\n");
	if (*s == '\0')
		return -1;
	if (strchr("{};", *s) != NULL) {
		out[0] = *s;
		out[1] = '\0';
		*p = s + 1;
		return 0;
	}
	if (*s == '"') {
		n = strcspn(++s, "\"");
		if (s[n] != '"' || n == 0 || n >= outlen)
			return -1;
		memcpy(out, s, n);
		out[n] = '\0';
		*p = s + n + 1;
		return 0;
	}
	n = strcspn(s, " \t\r\n{};\"");
	if (n == 0 || n >= outlen)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = s + n;
	return 0;
}

/* `key "NAME" { algorithm hmac-sha256; secret "BASE64"; };` into d. */
int
acmedns_parse_key(const char *text, struct acme_dns *d, char *err, size_t errlen)
{
	char tok[MSG_A_DNS_STR_MAX + 1], word[32];
	const char *p = text;
	int alg = 0;

	if (next_token(&p, tok, sizeof(tok)) == -1 || strcmp(tok, "key") != 0 ||
	    next_token(&p, d->keyname, sizeof(d->keyname)) == -1 ||
	    next_token(&p, tok, sizeof(tok)) == -1 || strcmp(tok, "{") != 0)
		goto bad;
	for (;;) {
		if (next_token(&p, word, sizeof(word)) == -1)
			goto bad;
		if (strcmp(word, "}") == 0)
			break;
		if (next_token(&p, tok, sizeof(tok)) == -1)
			goto bad;
		if (strcmp(word, "algorithm") == 0)
			alg = strcasecmp(tok, "hmac-sha256") == 0 ? 1 : -1;
		else if (strcmp(word, "secret") == 0)
			util_strlcpy(d->secret, tok, sizeof(d->secret));
		if (next_token(&p, word, sizeof(word)) == -1 || strcmp(word, ";") != 0)
			goto bad;
	}
	if (alg != 1) {
		snprintf(err, errlen, "the algorithm must be hmac-sha256");
		return -1;
	}
	if (d->secret[0] == '\0' || strlen(d->secret) % 4 != 0 ||
	    strspn(d->secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
	    strlen(d->secret)) {
		snprintf(err, errlen, "no base64 secret");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "not a BIND key statement (key \"NAME\" { algorithm hmac-sha256; "
	    "secret \"BASE64\"; };)");
	return -1;
}

static int
read_key_file(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		snprintf(err, errlen, "not a regular file");
	else if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0)
		snprintf(err, errlen, "every user may read it: make it root's, mode 0600");
	else if ((n = read(fd, buf, cap - 1)) < 0 || (size_t)n == cap - 1)
		snprintf(err, errlen, "unreadable or larger than %zu bytes", cap - 2);
	else {
		buf[n] = '\0';
		rc = 0;
	}
	close(fd);
	return rc;
}

int
acmedns_load(const struct conf *cf, struct acme_dns *d)
{
	char buf[KEYFILE_MAX], err[200], tmp[ADDR_STR_MAX + 8];
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc;

	memset(d, 0, sizeof(*d));
	if (cf->dns_update_server == NULL || cf->dns_update_server[0] == '\0')
		return 0;
	/* ADDR:PORT, [ADDR6]:PORT, or an address alone: port 53. */
	if (addr_parse(cf->dns_update_server, &ss, &sl) == -1 &&
	    (snprintf(tmp, sizeof(tmp), "%s:53", cf->dns_update_server),
	    addr_parse(tmp, &ss, &sl)) == -1 &&
	    (snprintf(tmp, sizeof(tmp), "[%s]:53", cf->dns_update_server),
	    addr_parse(tmp, &ss, &sl)) == -1) {
		log_warnx("dns_update_server: '%s' is not ADDR[:PORT] (a literal address)",
		    cf->dns_update_server);
		return -1;
	}
	addr_format((struct sockaddr *)&ss, d->server, sizeof(d->server));
	rc = read_key_file(cf->dns_tsig_key, buf, sizeof(buf), err, sizeof(err));
	if (rc == 0)
		rc = acmedns_parse_key(buf, d, err, sizeof(err));
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc == -1) {
		log_warnx("dns_tsig_key %s: %s", cf->dns_tsig_key, err);
		OPENSSL_cleanse(d, sizeof(*d));
		return -1;
	}
	util_strlcpy(d->zone, cf->dns_zone, sizeof(d->zone));
	d->ns_port = (uint16_t)cf->dns_ns_port;
	d->wait_ms = (uint32_t)cf->dns_propagation_timeout_ms;
	d->on = 1;
	log_info("acme: dns-01 through %s with TSIG key %s", d->server, d->keyname);
	return 0;
}

int
acmedns_send(struct acme_peer *a)
{
	uint8_t buf[14 + 4 * MSG_A_DNS_STR_MAX];
	struct wbuf b;
	int rc;

	if (!a->dns.on)
		return 0;
	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, a->dns.server);
	wb_str(&b, a->dns.zone);
	wb_str(&b, a->dns.keyname);
	wb_str(&b, a->dns.secret);
	wb_u16(&b, a->dns.ns_port);
	wb_u32(&b, a->dns.wait_ms);
	rc = b.bad ? -1 : proc_send(&a->proc, MSG_A_DNS, 0, 0, buf, b.len, -1);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}
