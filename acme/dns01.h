/*
 * DNS-01 (RFC 8555 section 8.4) through RFC 2136 dynamic updates, in the
 * ACME child: the wire format (dnsmsg.c), TSIG (tsig.c, RFC 8945), the TCP
 * exchange with the zone's primary (dnsclient.c), and what an order asks
 * of them (dns01.c). Every length read from the network is bounded.
 */
#ifndef HALOYD_ACME_DNS01_H
#define HALOYD_ACME_DNS01_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_MSG_MAX 4096	/* our messages and the answers we read: one TXT RRset, small */
#define DNS_NAME_MAX 255	/* wire length of a name (RFC 1035 section 3.1) */
#define DNS_PTR_MAX 32		/* compression pointers followed in one name */
#define DNS_TSIG_SECRET_MAX 128
#define DNS_TSIG_FUDGE 300

enum {
	DNS_T_A = 1, DNS_T_NS = 2, DNS_T_SOA = 6, DNS_T_TXT = 16, DNS_T_AAAA = 28,
	DNS_T_TSIG = 250, DNS_T_ANY = 255
};
enum { DNS_C_IN = 1, DNS_C_NONE = 254, DNS_C_ANY = 255 };
enum { DNS_OP_QUERY = 0, DNS_OP_UPDATE = 5 };

struct dns_buf {
	uint8_t b[DNS_MSG_MAX];
	size_t len;
	int bad;		/* a write did not fit, or a name was invalid */
};

/* A DNS-01 record an order added: deleted when the order ends. */
struct dns01_rec {
	char name[DNS_NAME_MAX + 2];
	char zone[DNS_NAME_MAX + 2];
	char txt[44];
};

/* --- dnsmsg.c: building (uncompressed names) and bounded parsing */

void dnsmsg_init(struct dns_buf *w, uint16_t id, uint16_t flags);
void dnsmsg_u16(struct dns_buf *w, uint16_t v);
void dnsmsg_u32(struct dns_buf *w, uint32_t v);
void dnsmsg_bytes(struct dns_buf *w, const void *p, size_t n);
/* A dotted name (trailing dot optional) in wire form, lower-cased; bad when invalid. */
void dnsmsg_name(struct dns_buf *w, const char *name);
/* Sets header count i (0 QD/ZO, 1 AN/PR, 2 NS/UP, 3 AR) to v. */
void dnsmsg_count(struct dns_buf *w, int i, uint16_t v);
/* A query for (name, type, IN), recursion not desired. */
int dnsmsg_query(struct dns_buf *w, uint16_t id, const char *name, uint16_t type);
/*
 * An UPDATE of zone: add (ttl) or delete the one TXT record name "txt"
 * (RFC 2136 section 2.5.1 / 2.5.4: class NONE deletes that RR only).
 */
int dnsmsg_update(struct dns_buf *w, uint16_t id, const char *zone, const char *name,
    const char *txt, uint32_t ttl, int add);

struct dns_rr {
	char name[DNS_NAME_MAX + 2];	/* dotted, lower case, no trailing dot */
	uint16_t type, class;
	uint32_t ttl;
	size_t off;		/* where the RR starts in the message */
	size_t rdoff, rdlen;	/* its RDATA, inside the message */
};

/* Reads the name at *off (following backward pointers) into out; 0 or -1. */
int dnsmsg_read_name(const uint8_t *m, size_t len, size_t *off, char out[DNS_NAME_MAX + 2]);

/* A parsed answer: the header and where each RR is (up to DNS_RR_MAX). */
#define DNS_RR_MAX 64
struct dns_msg {
	uint16_t id, flags, count[4];
	struct dns_rr rr[DNS_RR_MAX];	/* answer, authority, additional: in order */
	size_t nrr;
	size_t nan;		/* the first nan of rr[] are the answer section */
};

/* Parses the whole message; -1 when anything is out of bounds or too many RRs. */
int dnsmsg_parse(const uint8_t *m, size_t len, struct dns_msg *out);
/* The RCODE (header only; TSIG's own error is tsig.c's). */
int dnsmsg_rcode(const struct dns_msg *d);
/* 1 when the answer section holds TXT name with exactly the one string txt. */
int dnsmsg_has_txt(const uint8_t *m, const struct dns_msg *d, const char *name, const char *txt);
/* 1 when the answer section holds an SOA for name. */
int dnsmsg_has_soa(const struct dns_msg *d, const char *name);
/* 1 when a (parsed: lower case, no trailing dot) equals b (trailing dot optional). */
int dnsmsg_same_name(const char *a, const char *b);

/* --- tsig.c: RFC 8945 with HMAC-SHA256 */

struct tsig_key {
	char name[DNS_NAME_MAX + 2];
	uint8_t secret[DNS_TSIG_SECRET_MAX];
	size_t len;
};

/*
 * Signs the message in w (ARCOUNT is raised by one) at time now; the MAC
 * is copied into mac (32 bytes) for the answer's check. 0 or -1.
 */
int tsig_sign(struct dns_buf *w, const struct tsig_key *k, uint64_t now, uint8_t mac[32]);
/*
 * Checks the answer's TSIG (the last additional RR) against the request's
 * MAC: key name, algorithm, error field, time within the fudge, MAC. 0, or
 * -1 with why in err.
 */
int tsig_verify(const uint8_t *m, size_t len, const struct dns_msg *d, const struct tsig_key *k,
    const uint8_t reqmac[32], uint64_t now, char *err, size_t errlen);

/* --- dnsclient.c: one exchange over TCP (RFC 7766 framing), bounded in time */

int dnsclient_exchange(const struct sockaddr_storage *srv, socklen_t srvlen,
    const struct dns_buf *q, uint8_t *resp, size_t cap, size_t *rlen, int timeout_ms,
    char *err, size_t errlen);

/* --- dns01.c: what an order needs */

struct dns01_conf {
	int on;
	struct sockaddr_storage srv;
	socklen_t srvlen;
	char server[64];	/* as configured, for the log */
	char zone[DNS_NAME_MAX + 2];	/* "" = found by SOA queries */
	struct tsig_key key;
	uint16_t ns_port;	/* the NS set is asked on it; 0 = the update server only */
	uint32_t wait_ms;	/* then the order fails naming the servers that lag */
};

/* From MSG_A_DNS: "ADDR:PORT" ("[ADDR]:PORT"), zone, key name, secret base64. */
int dns01_configure(struct dns01_conf *c, const char *server, const char *zone,
    const char *keyname, const char *secret_b64);
/* The TXT value for a key authorisation: base64url(SHA-256(keyauth)), 43 characters. */
int dns01_txt_value(const char *keyauth, char out[44]);
/* The zone name belongs to: the configured one, else the closest SOA at the server. */
int dns01_zone(const struct dns01_conf *c, const char *name, char zone[DNS_NAME_MAX + 2],
    char *err, size_t errlen);
/* A TSIG-signed UPDATE adding or deleting the TXT record; 0 or -1 with why in err. */
int dns01_update(const struct dns01_conf *c, const char *zone, const char *name,
    const char *txt, int add, char *err, size_t errlen);

/* --- dnsrdata.c: NS, A and AAAA records of a parsed answer, bounded */

/*
 * The NS targets of owner in the answer section, at most max (the rest are
 * counted in *dropped); the count, or -1 when an RDATA is malformed.
 */
int dnsrdata_ns(const uint8_t *m, size_t len, const struct dns_msg *d, const char *owner,
    char (*out)[DNS_NAME_MAX + 2], size_t max, size_t *dropped);
/*
 * The A and AAAA records of name in the answer section as addresses with
 * port, at most max; the count, or -1 when an RDATA has the wrong length.
 */
int dnsrdata_addrs(const uint8_t *m, const struct dns_msg *d, const char *name, uint16_t port,
    struct sockaddr_storage *out, size_t max);

#endif
