/*
 * haloyd-tunnel: the agent that dials out to a proxy and serves the streams
 * it opens from a local HTTP/1.1 app. main(), the tunnel slots and their
 * reconnect schedule, signals and the graceful stop.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "agent/agent.h"
#include "agent/agenttls.h"
#include "agent/appconn.h"
#include "agent/backoff.h"
#include "agent/tunnel.h"
#include "share/log.h"
#include "share/util.h"

static void slot_dial(struct ev_loop *l, struct ev_timer *tm);

static void
slot_schedule(struct tslot *s, uint64_t delay)
{
	if (s->ag->stopping)
		return;
	if (delay > 0)
		log_debug("tunnel %u: next attempt in %llu ms", s->idx, (unsigned long long)delay);
	ev_timer_start(s->ag->loop, &s->retry, delay);
}

static uint32_t
slot_random(void)
{
	uint32_t r = 0;

	util_random(&r, sizeof(r));
	return r;
}

static void
slot_dial(struct ev_loop *l, struct ev_timer *tm)
{
	struct tslot *s = tm->arg;

	(void)l;
	if (s->ag->stopping || s->t != NULL)
		return;
	if ((s->t = tunnel_open(s->ag, s)) == NULL)
		slot_schedule(s, backoff_next(&s->fails, 0, 0, 0, slot_random()));
}

void
agent_tunnel_ready(struct agent *ag, struct tunnel *t)
{
	(void)ag;
	(void)t;
}

void
agent_tunnel_lost(struct agent *ag, struct tunnel *t, int goaway)
{
	struct tslot *s = t->slot;
	uint64_t delay;
	int ready;

	if (s == NULL || s->t != t)
		return;
	s->t = NULL;
	ready = t->state == TUNNEL_READY;
	delay = backoff_next(&s->fails, ready, ready ? ev_now(ag->loop) - t->ready_at : 0, goaway,
	    slot_random());
	slot_schedule(s, delay);
}

void
agent_tunnel_freed(struct agent *ag)
{
	if (ag->stopping && ag->tunnels == NULL)
		ev_break(ag->loop);
}

static void
agent_drain_over(struct ev_loop *l, struct ev_timer *tm)
{
	struct agent *ag = tm->arg;
	struct tunnel *t;

	(void)l;
	log_warnx("drain timeout: closing %s", ag->tunnels != NULL ? "the tunnels left" : "");
	for (t = ag->tunnels; t != NULL; t = t->next)
		tunnel_kill(t, "drain timeout");
	if (ag->tunnels == NULL)
		ev_break(ag->loop);
}

static void
agent_stop(struct agent *ag)
{
	struct tunnel *t, *next;
	unsigned i;

	if (ag->stopping) {
		agent_drain_over(ag->loop, &ag->stop_timer);
		return;
	}
	ag->stopping = 1;
	log_notice("stopping: GOAWAY to the proxy, waiting up to %llu ms for in-flight streams",
	    (unsigned long long)ag->conf.drain_ms);
	for (i = 0; i < ag->conf.conns; i++) {
		ev_timer_stop(ag->loop, &ag->slot[i].retry);
		ag->slot[i].t = NULL;
	}
	for (t = ag->tunnels; t != NULL; t = next) {
		next = t->next;
		tunnel_stop(t);
	}
	appconn_clear(ag);
	if (ag->tunnels == NULL)
		ev_break(ag->loop);
	else
		ev_timer_start(ag->loop, &ag->stop_timer, ag->conf.drain_ms);
}

static void
agent_signal(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct agent *ag = io->arg;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(ag->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			agent_stop(ag);
}

/* The app's address, resolved once at start (it is local: --to). */
static int
agent_resolve_app(struct agent *ag, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	int rc;

	if ((rc = getaddrinfo(ag->conf.app_host, ag->conf.app_port, &hints, &res)) != 0)
		return util_errf(err, errlen, "--to %s: %s", ag->conf.app_host, gai_strerror(rc));
	memcpy(&ag->app, res->ai_addr, res->ai_addrlen);
	ag->applen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int
agent_setup(struct agent *ag, int argc, char **argv, char *err, size_t errlen)
{
	sigset_t set;

	agentconf_defaults(&ag->conf);
	ag->sigfd = -1;
	if (agentconf_parse_args(&ag->conf, argc, argv, err, errlen) == -1)
		return -1;
	if (ag->conf.help || ag->conf.version)
		return 0;
	if (agentconf_check(&ag->conf, err, errlen) == -1 ||
	    (ag->tls = agenttls_context(&ag->conf, err, errlen)) == NULL ||
	    agent_resolve_app(ag, err, errlen) == -1)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (ag->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1 ||
	    (ag->loop = ev_loop_new()) == NULL ||
	    ev_io_start(ag->loop, &ag->sigio, ag->sigfd, EPOLLIN, agent_signal, ag) == -1)
		return util_errf(err, errlen, "start-up: %s", strerror(errno));
	ev_timer_init(&ag->stop_timer, agent_drain_over, ag);
	return 0;
}

static void
agent_cleanup(struct agent *ag)
{
	appconn_clear(ag);
	if (ag->loop != NULL) {
		ev_io_stop(ag->loop, &ag->sigio);
		ev_loop_free(ag->loop);
	}
	if (ag->sigfd != -1)
		close(ag->sigfd);
	SSL_CTX_free(ag->tls);
}

int
main(int argc, char **argv)
{
	static struct agent agent;	/* the one context, passed down from here */
	struct agent *ag = &agent;
	char err[512];
	unsigned i;

	log_init("haloyd-tunnel", -1, LOG_TARGET_AUTO, 0);
	if (agent_setup(ag, argc, argv, err, sizeof(err)) == -1) {
		/* One line: what systemd's journal shows as the reason the unit failed. */
		fprintf(stderr, "haloyd-tunnel: %s\n", err);
		agent_cleanup(ag);
		return 2;
	}
	if (ag->conf.help || ag->conf.version) {
		fputs(ag->conf.help ? agentconf_usage() : PACKAGE_VERSION "\n", stdout);
		return 0;
	}
	log_set_verbose(ag->conf.verbose);
	log_notice("haloyd-tunnel %s: %u tunnels to %s:%s, serving %s:%s", PACKAGE_VERSION,
	    ag->conf.conns, ag->conf.proxy_host, ag->conf.proxy_port, ag->conf.app_host,
	    ag->conf.app_port);
	for (i = 0; i < ag->conf.conns; i++) {
		ag->slot[i].ag = ag;
		ag->slot[i].idx = i;
		ev_timer_init(&ag->slot[i].retry, slot_dial, &ag->slot[i]);
		ev_timer_start(ag->loop, &ag->slot[i].retry, 0);
	}
	ev_run(ag->loop);
	log_notice("stopped");
	agent_cleanup(ag);
	return 0;
}
