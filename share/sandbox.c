/*
 * seccomp filters per child role (see sandbox.h). Each role's filter is the
 * base table (what every child's loop, logging and allocator need) plus the
 * role's own table; anything else kills the process (SCMP_ACT_KILL_PROCESS,
 * SIGSYS). Argument filters where they are cheap and say something: no
 * executable memory, read-only opens in the worker, socket() families,
 * threads but no fork in the ACME child, no connect in the tunnel process.
 * A new role is one table and one line in `roles`. ARCHITECTURE.md "Sandboxes" says why each call is there.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/log.h"
#include "share/sandbox.h"
#include "share/util.h"

struct sandbox_rule {
	int nr;				/* SCMP_SYS(name) */
	int errno_value;		/* 0: allowed; else failed with this errno */
	unsigned nargs;			/* 0 or 1 argument comparison */
	struct scmp_arg_cmp arg;
};

#define ALLOW(name) { SCMP_SYS(name), 0, 0, { 0, 0, 0, 0 } }
/* Allowed when (argument n & mask) == value. */
#define ALLOW_MASKED(name, n, mask, value) \
	{ SCMP_SYS(name), 0, 1, { (n), SCMP_CMP_MASKED_EQ, (mask), (value) } }
#define ALLOW_EQ(name, n, value) { SCMP_SYS(name), 0, 1, { (n), SCMP_CMP_EQ, (value), 0 } }
#define FAIL(name, e) { SCMP_SYS(name), (e), 0, { 0, 0, 0, 0 } }

/* Every child once running: its epoll loop, the master's channel, logging, memory. */
static const struct sandbox_rule base_rules[] = {
	ALLOW(read), ALLOW(readv), ALLOW(write), ALLOW(writev), ALLOW(pread64),
	ALLOW(close), ALLOW(lseek), ALLOW(fstat), ALLOW(newfstatat), ALLOW(statx),
	ALLOW(fcntl),
	ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl),
	ALLOW(recvmsg), ALLOW(sendmsg), ALLOW(recvfrom), ALLOW(sendto),
	ALLOW(getsockopt), ALLOW(setsockopt), ALLOW(getsockname), ALLOW(getpeername),
	ALLOW(shutdown),
	/* sd_journal_sendv opens its datagram socket at its first message. */
	ALLOW_EQ(socket, 0, AF_UNIX),
	/* ...and passes a message too big for a datagram in a sealed memfd. */
	ALLOW(memfd_create), ALLOW(ftruncate),
	ALLOW(brk), ALLOW(munmap), ALLOW(mremap), ALLOW(madvise),
	/* No executable memory: nothing can be loaded or injected once running. */
	ALLOW_MASKED(mmap, 2, PROT_EXEC, 0),
	ALLOW_MASKED(mprotect, 2, PROT_EXEC, 0),
	ALLOW(futex), ALLOW(getrandom),
	ALLOW(clock_gettime), ALLOW(clock_getres), ALLOW(gettimeofday), ALLOW(clock_nanosleep),
	ALLOW(nanosleep),
	ALLOW(getpid), ALLOW(gettid), ALLOW(getuid), ALLOW(geteuid), ALLOW(getgid),
	ALLOW(getegid),
	ALLOW(rt_sigreturn), ALLOW(rt_sigprocmask), ALLOW(restart_syscall),
	ALLOW(exit), ALLOW(exit_group),
	ALLOW(uname),
	/*
	 * glibc's qsort asks sysconf(_SC_PHYS_PAGES), that is sysinfo, how much
	 * memory it may use (OpenSSL sorts the system roots it loads for a
	 * verified backend). ASan's qsort never asks, so only a plain build met it.
	 */
	ALLOW(sysinfo),
};

/*
 * The worker: accepts on the listeners it was given and dials backends. It
 * reads error pages (reload) and CA files (system roots, when a backend is
 * verified) but opens nothing for writing; it never forks nor binds. The
 * cache's LMDB environment is opened before the filter: its commits write
 * pages with pwrite/pwritev (writev after lseek), its reader table is
 * checked with fcntl locks (base), msync/fdatasync only if syncing is on.
 */
static const struct sandbox_rule worker_rules[] = {
	ALLOW(accept4), ALLOW(accept), ALLOW(connect),
	ALLOW_EQ(socket, 0, AF_INET), ALLOW_EQ(socket, 0, AF_INET6),
	ALLOW_MASKED(openat, 2, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY),
	ALLOW(getdents64),
	ALLOW(pwrite64), ALLOW(pwritev), ALLOW(msync), ALLOW(fdatasync), ALLOW(fsync),
};

/*
 * The ACME child: libcurl (HTTPS to the CA; its DNS in a resolver thread:
 * threads, never a new process), and its account key and URL in the state
 * folder it was given (write, rename, unlink, fsync).
 */
static const struct sandbox_rule acme_rules[] = {
	ALLOW(connect), ALLOW(bind), ALLOW(socketpair), ALLOW(pipe2), ALLOW(eventfd2),
	ALLOW_EQ(socket, 0, AF_INET), ALLOW_EQ(socket, 0, AF_INET6),
	ALLOW_EQ(socket, 0, AF_NETLINK),	/* getaddrinfo's AI_ADDRCONFIG */
	ALLOW(poll), ALLOW(ppoll),
	/* glibc's stub resolver: A and AAAA queries at once, then what is pending to read. */
	ALLOW(sendmmsg), ALLOW(recvmmsg), ALLOW_EQ(ioctl, 1, FIONREAD),
	ALLOW(openat), ALLOW(renameat), ALLOW(renameat2), ALLOW(unlinkat), ALLOW(fsync),
	ALLOW(fdatasync), ALLOW(getdents64), ALLOW(fchmod), ALLOW(umask),
	/* pthread_create: clone3 cannot be filtered by its flags, so glibc falls back to clone. */
	FAIL(clone3, ENOSYS),
	ALLOW_MASKED(clone, 0, CLONE_THREAD, CLONE_THREAD),
	ALLOW(set_robust_list), ALLOW(rseq), ALLOW(sched_getaffinity), ALLOW(sched_yield),
	ALLOW(rt_sigaction), ALLOW(sigaltstack), ALLOW(sysinfo), ALLOW(prlimit64),
};

/*
 * The tunnel process, from MSG_T_START on: strace -f of it over
 * test_tunnel*.py (sanitizer and plain builds) shows the base table's calls
 * and these only. It dials nothing (agents dial in, workers reach it on the
 * hop), so no connect and no socket but the base's AF_UNIX (the journal's).
 */
static const struct sandbox_rule tunnel_rules[] = {
	/* Agents on the TLS listener, workers on the hop's unix socket (listen.c). */
	ALLOW(accept4),
	/*
	 * localtime re-reads /etc/localtime (seen after the filter); a reload's
	 * W_CONFIG re-reads the error pages (NNN.html, each opened by name), as
	 * in a worker. No getdents64: it reads no CA folder (its CA is in memory).
	 */
	ALLOW_MASKED(openat, 2, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY),
};

/*
 * ASan and LSan at run time and at exit (the leak check stops the world
 * with a ptrace-ing thread): only in sanitizer builds, which are test builds.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

#ifdef SANDBOX_ASAN
static const struct sandbox_rule sanitizer_rules[] = {
	/* The tracer thread shares our memory; a new process still may not be made. */
	ALLOW_MASKED(clone, 0, CLONE_VM, CLONE_VM),
	ALLOW(ptrace), ALLOW(wait4), ALLOW(prctl), ALLOW(sched_yield), ALLOW(getppid),
	/* The sanitizers' own syscall wrappers use the legacy calls on x86-64. */
	ALLOW_MASKED(openat, 2, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY),
	ALLOW_MASKED(open, 1, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY),
	ALLOW(getdents), ALLOW(getdents64), ALLOW(stat), ALLOW(lstat), ALLOW(readlink), ALLOW(sigaltstack),
	ALLOW(rt_sigaction), ALLOW(tgkill), ALLOW(prlimit64), ALLOW(sysinfo),
	ALLOW(set_robust_list), ALLOW(rseq), ALLOW(sched_getaffinity), ALLOW(pipe2),
};
#endif

struct sandbox_table {
	const char *name;
	const struct sandbox_rule *rules;
	size_t n;
};

static const struct sandbox_table roles[SANDBOX_NROLES] = {
	[SANDBOX_WORKER] = { "worker", worker_rules, ARRAY_LEN(worker_rules) },
	[SANDBOX_ACME] = { "acme", acme_rules, ARRAY_LEN(acme_rules) },
	[SANDBOX_TUNNEL] = { "tunnel", tunnel_rules, ARRAY_LEN(tunnel_rules) },
};

const char *
sandbox_role_name(enum sandbox_role role)
{
	return role < SANDBOX_NROLES ? roles[role].name : "?";
}

static int
sandbox_add(scmp_filter_ctx ctx, const struct sandbox_rule *r, size_t n)
{
	uint32_t action;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		action = r[i].errno_value != 0 ? SCMP_ACT_ERRNO((uint32_t)r[i].errno_value) :
		    SCMP_ACT_ALLOW;
		rc = seccomp_rule_add_array(ctx, action, r[i].nr, r[i].nargs, &r[i].arg);
		if (rc < 0) {
			errno = -rc;
			log_warn("sandbox: rule for system call %d", r[i].nr);
			return -1;
		}
	}
	return 0;
}

static scmp_filter_ctx
sandbox_build(enum sandbox_role role)
{
	scmp_filter_ctx ctx;

	if (role >= SANDBOX_NROLES) {
		log_warnx("sandbox: no role %d", (int)role);
		return NULL;
	}
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL) {
		/* Seen when a SystemCallFilter= of systemd denies seccomp(2) itself. */
		log_warnx("sandbox: seccomp_init failed (is the seccomp system call allowed?)");
		return NULL;
	}
	if (sandbox_add(ctx, base_rules, ARRAY_LEN(base_rules)) == -1 ||
	    sandbox_add(ctx, roles[role].rules, roles[role].n) == -1)
		goto fail;
#ifdef SANDBOX_ASAN
	if (sandbox_add(ctx, sanitizer_rules, ARRAY_LEN(sanitizer_rules)) == -1)
		goto fail;
#endif
	return ctx;
fail:
	seccomp_release(ctx);
	return NULL;
}

int
sandbox_check(enum sandbox_role role)
{
	scmp_filter_ctx ctx;

	if ((ctx = sandbox_build(role)) == NULL)
		return -1;
	seccomp_release(ctx);
	return 0;
}

int
sandbox_enter(enum sandbox_role role)
{
	scmp_filter_ctx ctx;
	int rc;

	if ((ctx = sandbox_build(role)) == NULL)
		return -1;
	/* NO_NEW_PRIVS (libseccomp's default) lets an unprivileged process load it. */
	if ((rc = seccomp_load(ctx)) < 0) {
		errno = -rc;
		log_warn("sandbox: loading the %s filter", roles[role].name);
		seccomp_release(ctx);
		return -1;
	}
	seccomp_release(ctx);
	log_debug("sandbox: %s filter installed", roles[role].name);
	return 0;
}

#ifdef HALOYD_TESTING
void
sandbox_test_violate(void)
{
	char *const argv[] = { NULL };

	/* No role may execve; without a filter this fails with ENOENT and nothing happens. */
	log_warnx("sandbox test: calling execve on purpose");
	execve("/nonexistent/haloyd-sandbox-test", argv, argv);
}
#endif
