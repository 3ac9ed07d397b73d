#!/usr/bin/env bash
# Issue 6: builds the .deb from this working tree, installs it with apt,
# checks accounts, files, modes, the unit and the man pages, starts the
# daemon exactly as the installed unit's ExecStart says (only the listen
# address moves to a free port, through haloyd.conf), with the notify socket
# and watchdog systemd would give it, steers it with haloyd-ctl as an admin
# and as nobody, finds the access entries in the journal, reloads a broken
# haloyd.conf, installs a newer-versioned copy of the .deb over the running
# daemon (postinst hands over: no request fails, the old master exits, the
# new one is MAINPID), then removes and purges the package. The second binary
# package, haloyd-tunnel (the agent), is built and installed beside it:
# its program, man page and systemd template are checked, and that it
# refuses to start without a client certificate.
#
# Run as root on a throw-away Debian 12 machine (CI, or a VM): it purges an
# installed haloyd and deletes the haloyd accounts first, so that the
# package is seen creating them. Works without systemd as PID 1 (it starts
# systemd-journald itself when none runs). Needs dpkg-dev, debhelper,
# lintian, systemd, man-db, bash-completion, curl, python3, procps (ps,
# pgrep) and the Build-Depends of debian/control (packages.txt lists them
# all). Prints one `ok N - ...` / `not ok N - ...` line per check, ends
# with `N passed, N failed`, exits non-zero when anything failed.
#
# usage: tests/package/test-deb.sh [--keep]   (--keep: leave the work folder)
# DEB_BUILD_OPTIONS defaults to "nocheck parallel=2": the unit tests run in
# tests/run, not a second time inside the package build.
set -u -o pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
WORK=$(mktemp -d /tmp/haloyd-deb.XXXXXX)
chmod 0755 "$WORK"
# Work from the work folder, not the checkout: what runs as another user
# (lintian as nobody, haloyd-ctl as an admin or as nobody) must not depend
# on where the checkout is or who may read it (/root is 0700).
cd "$WORK" || exit 1
UNIT=/lib/systemd/system/haloyd.service
CONF=/etc/haloyd/haloyd.conf
ADMIN=haloyd-t-admin	# a throw-away member of haloyd-admin
# Names unique to this run: the journal outlives runs.
RUN=$(date +%s)-$$
HOST=app-$RUN.deb-test.example
DEAD=dead-$RUN.deb-test.example
WATCHDOG_TEST_USEC=2000000	# the unit's WatchdogSec, shortened so pings show in the test
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck parallel=2}
export DEBIAN_FRONTEND=noninteractive

n=0 passed=0 failed=0
daemon_pid="" worker_pids="" backend_pid="" journald_pid="" notify_pid="" load_pid=""
conf_saved=0 installed=0

ok() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
# check DESCRIPTION COMMAND...: one numbered result from a command's status.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else notok "$what"; fi
}
note() { sed 's/^/# /'; }

# The run must end with the summary whatever happened, so every check is
# reported and cleanup runs from the EXIT trap; an aborted run still
# purges what it installed.
cleanup() {
	local p
	for p in $daemon_pid $worker_pids $backend_pid $notify_pid $load_pid; do
		kill -KILL "$p" 2>/dev/null
	done
	if [ "$conf_saved" = 1 ] && [ -f "$CONF" ]; then
		cp -p "$WORK/haloyd.conf.orig" "$CONF"
	fi
	[ -n "$journald_pid" ] && kill "$journald_pid" 2>/dev/null
	getent passwd "$ADMIN" >/dev/null && userdel "$ADMIN" 2>/dev/null
	[ "$installed" = 1 ] && apt-get purge -y -q haloyd haloyd-tunnel >/dev/null 2>&1
	if [ "$KEEP" = 1 ]; then echo "# work folder kept: $WORK"; else rm -rf "$WORK"; fi
}

finish() {
	cleanup
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'exit 1' INT TERM

# stat_is PATH "OWNER:GROUP MODE": one path's owner, group and octal mode.
stat_is() {
	local got
	got=$(stat -c '%U:%G %a' "$1" 2>/dev/null)
	[ "$got" = "$2" ] || { echo "# $1: ${got:-missing}, wanted $2"; return 1; }
}

free_port() {
	# HALOYD_PORT_SHARD: the port rule of tests/integration/harness.py (tests/run's job slots).
	/usr/bin/python3 -c 'import os, socket
i, n = (int(x) for x in os.environ.get("HALOYD_PORT_SHARD", "0/1").split("/"))
held = []
while True:
    s = socket.socket(); held.append(s); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if (p >> 1) % n == i: print(p); break'
}

# wait_for SECONDS COMMAND...: polls every 100 ms.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# as USER COMMAND...: runs a command with the user's ids and groups.
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
}

# notified PATTERN: the master (and only it) sent a notify line matching
# the extended regex PATTERN.
notified() {
	grep -qE "^$daemon_pid [0-9.]+ ($1)\$" "$WORK/notify.log" 2>/dev/null
}

# reload_notified: the master's last two state notifications are
# RELOADING=1 and READY=1 (before the first reload, there is READY=1 only).
reload_notified() {
	local seq
	seq=$(grep -E "^$daemon_pid [0-9.]+ (RELOADING|READY)=1\$" "$WORK/notify.log" 2>/dev/null |
		tail -n 2 | cut -d' ' -f3 | paste -sd,)
	[ "$seq" = "RELOADING=1,READY=1" ]
}

# unit_value KEY: the last KEY= line of the installed unit.
unit_value() {
	sed -n "s/^$1=//p" "$UNIT" | tail -n 1
}

[ "$(id -u)" = 0 ] || { notok "runs as root"; exit 1; }
# One run at a time on a machine: they share apt, /etc/haloyd and the accounts.
# Background processes get `9>&-` so a leftover one cannot hold the lock.
exec 9>/run/lock/haloyd-test-deb.lock
flock -w 900 9 || { notok "no other test-deb.sh holds /run/lock/haloyd-test-deb.lock"; exit 1; }
for t in dpkg-buildpackage dh lintian apt-get curl setpriv journalctl systemd-analyze man ps pgrep; do
	command -v "$t" >/dev/null || { notok "tool $t is installed"; exit 1; }
done
[ -x /lib/systemd/systemd-journald ] || { notok "systemd-journald is installed"; exit 1; }
[ -f /usr/share/bash-completion/bash_completion ] || { notok "bash-completion is installed"; exit 1; }

# --- start from a machine without haloyd (an earlier run may have left
# the accounts, which purge keeps on purpose).
for p in haloyd haloyd-tunnel; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv not-installed; then
		echo "# purging the $p package installed before this test"
		apt-get purge -y -q "$p" >/dev/null 2>&1
	fi
done
for u in haloyd haloyd-acme; do
	getent passwd "$u" >/dev/null && deluser --quiet --system "$u" >/dev/null 2>&1
	getent group "$u" >/dev/null && delgroup --quiet --system "$u" >/dev/null 2>&1
done
getent group haloyd-admin >/dev/null && delgroup --quiet --system haloyd-admin >/dev/null 2>&1

# --- build from a copy of the working tree: tracked and new files, none
# of the ignored build products, as in a clean checkout.
mkdir "$WORK/src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -C "$WORK/src" -xf -
else
	tar -C "$SRC" --exclude='./build*' --exclude=./autom4te.cache -cf - . | tar -C "$WORK/src" -xf -
fi
echo "# DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS"
if (cd "$WORK/src" && dpkg-buildpackage -b -us -uc) >"$WORK/build.log" 2>&1; then
	ok "dpkg-buildpackage -b -us -uc builds from a clean tree"
else
	notok "dpkg-buildpackage -b -us -uc builds from a clean tree"
	tail -n 40 "$WORK/build.log" | note
	exit 1
fi
deb=$(ls "$WORK"/haloyd_*_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
tdeb=$(ls "$WORK"/haloyd-tunnel_*_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
check "the build made the haloyd-tunnel package too (${tdeb:-none})" [ -n "$tdeb" ]

# As nobody: lintian unpacks what it checks and warns when run as root. It
# runs in the work folder (0755, in /tmp), on the artefacts there.
setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$WORK" \
	lintian --fail-on error --tag-display-limit 0 --display-info \
	"$WORK"/haloyd_*.changes >"$WORK/lintian.log" 2>&1
lint=$?
note <"$WORK/lintian.log"
check "lintian reports no errors" [ "$lint" -eq 0 ]

# --- install with apt, as a user would.
installed=1
if (cd "$WORK" && apt-get install -y -q "./$(basename "$deb")" "./$(basename "$tdeb")") \
	>"$WORK/install.log" 2>&1; then
	ok "apt-get install -y ./$(basename "$deb") ./$(basename "$tdeb")"
else
	notok "apt-get install -y ./$(basename "$deb") ./$(basename "$tdeb")"
	tail -n 30 "$WORK/install.log" | note
	exit 1
fi

# --- haloyd-tunnel, the agent: its own package, program, man page and template.
TUNIT=/lib/systemd/system/haloyd-tunnel@.service
check "haloyd-tunnel is installed" sh -c "dpkg-query -W -f='\${Status}' haloyd-tunnel | grep -q 'install ok installed'"
check "/usr/bin/haloyd-tunnel root:root 0755" stat_is /usr/bin/haloyd-tunnel "root:root 755"
out=$(/usr/bin/haloyd-tunnel --help 2>&1)
rc=$?
check "haloyd-tunnel --help exits 0 and shows the usage (exit $rc)" \
	eval '[ "$rc" -eq 0 ] && echo "$out" | grep -q -- "--proxy HOST:PORT"'
check "$TUNIT root:root 0644" stat_is "$TUNIT" "root:root 644"
check "the template reads /etc/haloyd-tunnel/%i.conf" grep -q -- '--config /etc/haloyd-tunnel/%i.conf' "$TUNIT"
check "the template runs as a dynamic user" grep -qx 'DynamicUser=yes' "$TUNIT"
systemd-analyze verify haloyd-tunnel@deb-test.service >"$WORK/tverify.log" 2>&1
rc=$?
note <"$WORK/tverify.log"
check "systemd-analyze verify haloyd-tunnel@deb-test.service (exit $rc)" [ "$rc" -eq 0 ]
check "/etc/haloyd-tunnel root:root 0755" stat_is /etc/haloyd-tunnel "root:root 755"
check "the example configuration is installed" \
	test -f /usr/share/doc/haloyd-tunnel/examples/haloyd-tunnel.conf.example
check "/usr/share/man/man1/haloyd-tunnel.1.gz root:root 0644" \
	stat_is /usr/share/man/man1/haloyd-tunnel.1.gz "root:root 644"
check "man -l haloyd-tunnel.1.gz renders without warnings" sh -c \
	"MANWIDTH=80 man --warnings -l /usr/share/man/man1/haloyd-tunnel.1.gz 2>&1 >/dev/null | (! grep -q .)"
out=$(/usr/bin/haloyd-tunnel --proxy 127.0.0.1:1 --to 127.0.0.1:2 2>&1)
rc=$?
check "haloyd-tunnel without a certificate exits non-zero (exit $rc): $out" \
	eval '[ "$rc" -ne 0 ] && echo "$out" | grep -q "client certificate is required"'
check "the haloyd package does not hold the agent" sh -c '! dpkg -L haloyd | grep -q haloyd-tunnel'

# Where systemd runs, the package started the service: check it came up,
# then stop it so the daemon below is the only one (same store and socket).
if [ -d /run/systemd/system ]; then
	check "systemctl is-active haloyd after install" systemctl is-active -q haloyd
	systemctl stop haloyd
fi

# --- accounts: system ids, no login, no home; the admin group.
for u in haloyd haloyd-acme; do
	IFS=: read -r _ _ uid gid _ home shell <<<"$(getent passwd "$u")"
	check "user $u exists as a system user (uid $uid < 1000)" eval '[ -n "$uid" ] && [ "$uid" -lt 1000 ]'
	check "user $u has no login shell and no home ($shell, $home)" \
		eval '[ "$shell" = /usr/sbin/nologin ] && [ "$home" = /nonexistent ] && [ ! -e /nonexistent ]'
	check "user $u has its own group" [ "$(getent group "$gid" | cut -d: -f1)" = "$u" ]
	check "user $u has no password" grep -qE "^$u:[*!]" /etc/shadow
	check "user $u is not in haloyd-admin" sh -c "! id -nG $u | grep -qw haloyd-admin"
done
gid=$(getent group haloyd-admin | cut -d: -f3)
check "group haloyd-admin exists as a system group (gid $gid < 1000)" eval '[ -n "$gid" ] && [ "$gid" -lt 1000 ]'

# --- files and modes.
check "/usr/sbin/haloyd root:root 0755" stat_is /usr/sbin/haloyd "root:root 755"
check "/usr/sbin/haloyd-ctl root:root 0755" stat_is /usr/sbin/haloyd-ctl "root:root 755"
check "/etc/haloyd root:root 0755" stat_is /etc/haloyd "root:root 755"
check "$CONF root:root 0644" stat_is "$CONF" "root:root 644"
check "$CONF is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' haloyd | grep -q ' $CONF '"
check "/var/lib/haloyd root:root 0700" stat_is /var/lib/haloyd "root:root 700"
check "$UNIT root:root 0644" stat_is "$UNIT" "root:root 644"
for m in man8/haloyd.8 man8/haloyd-ctl.8 man5/haloyd.conf.5; do
	check "/usr/share/man/$m.gz root:root 0644" stat_is "/usr/share/man/$m.gz" "root:root 644"
	check "man -l $m.gz renders without warnings" sh -c \
		"MANWIDTH=80 man --warnings -l /usr/share/man/$m.gz 2>&1 >/dev/null | (! grep -q .)"
done
check "bash completion root:root 0644" stat_is /usr/share/bash-completion/completions/haloyd-ctl "root:root 644"
# Every other path: directories 0755 and files 0644 or 0755, all root's.
# dpkg -L also lists the parents (/lib is a symlink on a merged-/usr system).
bad=$(dpkg -L haloyd | while read -r p; do
	[ -L "$p" ] && continue
	s=$(stat -c '%U:%G %a' "$p" 2>/dev/null) || { echo "$p missing"; continue; }
	case $s in
	"root:root 755" | "root:root 644") ;;
	*) echo "$p $s" ;;
	esac
done)
[ -n "$bad" ] && echo "$bad" | note
check "every installed path is root:root, 0755 or 0644" [ -z "$bad" ]
check "haloyd.service enabled (multi-user.target.wants link)" \
	[ -L /etc/systemd/system/multi-user.target.wants/haloyd.service ]

# --- the unit: what the issue requires, verified by systemd-analyze.
unit_ok=1
for kv in Type=notify KillMode=mixed Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict \
	ProtectHome=yes PrivateTmp=yes LockPersonality=yes MemoryDenyWriteExecute=yes \
	SystemCallArchitectures=native RuntimeDirectory=haloyd ReadWritePaths=/var/lib/haloyd \
	'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6'; do
	[ "$(unit_value "${kv%%=*}")" = "${kv#*=}" ] || { echo "# unit: wanted $kv"; unit_ok=0; }
done
[ -n "$(unit_value WatchdogSec)" ] || { echo "# unit: no WatchdogSec="; unit_ok=0; }
caps=$(unit_value CapabilityBoundingSet)
echo "# CapabilityBoundingSet=$caps"
for c in CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID; do
	case " $caps " in *" $c "*) ;; *) echo "# unit: $c missing"; unit_ok=0 ;; esac
done
check "haloyd.service has the required settings and hardening" [ "$unit_ok" = 1 ]
reloads=$(sed -n 's/^ExecReload=//p' "$UNIT" | paste -sd'|')
check "ExecReload runs haloyd -t, then SIGHUP ($reloads)" \
	[ "$reloads" = '/usr/sbin/haloyd -t|/bin/kill -HUP $MAINPID' ]
systemd-analyze verify "$UNIT" >"$WORK/verify.log" 2>&1
rc=$?
note <"$WORK/verify.log"
check "systemd-analyze verify haloyd.service (exit $rc)" [ "$rc" -eq 0 ]
# --offline: the exposure score without systemd as PID 1 (systemd >= 250).
systemd-analyze security --offline=true "$UNIT" >"$WORK/security.log" 2>&1
score=$(sed -nE 's/.*Overall exposure level for haloyd.service: ([0-9.]+).*/\1/p' "$WORK/security.log")
grep '✗' "$WORK/security.log" | sed -E 's/ {2,}/  /g' | note
check "systemd-analyze security: exposure ${score:-unknown} (at most 3.0)" \
	/usr/bin/python3 -c "import sys; sys.exit(0 if '$score' and float('$score') <= 3.0 else 1)"

# --- the configuration file and the man pages cover every setting.
opts=$(/usr/sbin/haloyd --help | grep -oE -- '--[a-z][a-z0-9-]+' | sed 's/^--//; s/-/_/g' |
	grep -vxE 'config|help|version|name|takeover' | sort -u)
echo "# settings: $(echo $opts)"
documented=$(sed -nE 's/^#([a-z0-9_]+) .*/\1/p' "$CONF" | sort -u)
missing=$(comm -23 <(echo "$opts") <(echo "$documented"))
[ -n "$missing" ] && echo "# not in $CONF: $missing"
check "$CONF shows every setting of haloyd --help, commented" eval '[ -z "$missing" ] && [ -n "$opts" ]'
check "$CONF sets nothing (every line a comment or blank)" sh -c "! grep -vqE '^(#|$)' $CONF"
# Each setting of haloyd.conf(5) is a tagged paragraph: .BI name " value".
zcat /usr/share/man/man5/haloyd.conf.5.gz >"$WORK/conf.5"
missing=$(for o in $opts; do grep -qE "^\.B[IR]? $o " "$WORK/conf.5" || echo "$o"; done)
[ -n "$missing" ] && echo "# not in haloyd.conf(5): $missing"
check "haloyd.conf(5) documents every setting" [ -z "$missing" ]
man_text() { LC_ALL=C MANWIDTH=200 man -l "$1" 2>/dev/null; }
man_text /usr/share/man/man8/haloyd.8.gz >"$WORK/haloyd.txt"
missing=$(for o in $opts; do grep -q -- "--${o//_/-}" "$WORK/haloyd.txt" || echo "--${o//_/-}"; done)
[ -n "$missing" ] && echo "# not in haloyd(8): $missing"
check "haloyd(8) lists every command-line option" [ -z "$missing" ]
man_text /usr/share/man/man8/haloyd-ctl.8.gz >"$WORK/ctl.txt"
missing=$(/usr/sbin/haloyd-ctl --help | sed -nE 's/^  ([a-z]+( [a-z]+)?)( [A-Z].*)?$/\1/p' |
	while read -r c; do grep -qE "^ +$c( |\$)" "$WORK/ctl.txt" || echo "$c"; done)
[ -n "$missing" ] && echo "# commands not in haloyd-ctl(8): $missing"
check "haloyd-ctl(8) documents every command of haloyd-ctl --help" [ -z "$missing" ]
missing=$(/usr/sbin/haloyd-ctl --help | sed -nE 's/^  ([0-9]+)  .*/\1/p' |
	while read -r c; do grep -qE "^ +$c +[A-Z]" "$WORK/ctl.txt" || echo "$c"; done)
[ -n "$missing" ] && echo "# exit statuses not in haloyd-ctl(8): $missing"
check "haloyd-ctl(8) documents every exit status of haloyd-ctl --help" [ -z "$missing" ]
check "haloyd-ctl(8) documents exit 4 with the refusal line" \
	grep -q "permission denied: join the haloyd-admin group" "$WORK/ctl.txt"
sed -nE 's/^#([a-z0-9_]+ .*)/\1/p' "$CONF" >"$WORK/all-defaults.conf"
out=$(/usr/sbin/haloyd -t -c "$WORK/all-defaults.conf" 2>&1)
check "haloyd -t accepts $CONF with every default uncommented ($out)" [ $? -eq 0 ]
out=$(/usr/sbin/haloyd -t 2>&1)
check "haloyd -t accepts the installed $CONF: $out" [ $? -eq 0 ]

# --- journald: systemd-journald by hand when none runs.
if [ ! -S /run/systemd/journal/socket ] || ! pgrep -x systemd-journal >/dev/null; then
	/lib/systemd/systemd-journald >"$WORK/journald.log" 2>&1 9>&- &
	journald_pid=$!
	wait_for 10 test -S /run/systemd/journal/socket
fi
check "systemd-journald runs" sh -c "test -S /run/systemd/journal/socket && pgrep -x systemd-journal >/dev/null"

# --- systemd's side of Type=notify: a notify socket that records who sent what.
cat >"$WORK/notify.py" <<'EOF'
import os, socket, struct, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o600)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
with open(log, "a", buffering=1) as f:
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, d in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", d[:12])[0]
        for line in data.decode(errors="replace").split("\n"):
            if line:
                f.write("%d %.3f %s\n" % (pid, time.monotonic(), line))
EOF
/usr/bin/python3 "$WORK/notify.py" "$WORK/notify.sock" "$WORK/notify.log" 9>&- &
notify_pid=$!
wait_for 5 test -S "$WORK/notify.sock"

# --- start the daemon as the unit's ExecStart says. Only the listen
# address changes, through haloyd.conf (an extra --listen-http would
# replace the file's addresses the same way, but changes the command line).
execstart=$(unit_value ExecStart)
read -r -a cmd <<<"${execstart#[-@:+!]}"
echo "# ExecStart: ${cmd[*]}"
port=$(free_port)
bport=$(free_port)
deadport=$(free_port)
nworkers=$(getconf _NPROCESSORS_ONLN)
cp -p "$CONF" "$WORK/haloyd.conf.orig"
conf_saved=1
printf 'listen_http 127.0.0.1:%s\n' "$port" >>"$CONF"
echo "# $CONF: listen_http 127.0.0.1:$port; NOTIFY_SOCKET, WATCHDOG_USEC=$WATCHDOG_TEST_USEC and WATCHDOG_PID as systemd sets them"
# exec keeps the pid, so WATCHDOG_PID names the master as systemd's MAINPID would;
# it starts in / as under systemd.
NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=$WATCHDOG_TEST_USEC \
	bash -c 'export WATCHDOG_PID=$$; cd / && exec "$@"' haloyd "${cmd[@]}" \
	</dev/null >"$WORK/daemon.out" 2>&1 9>&- &
daemon_pid=$!
if wait_for 30 notified 'READY=1'; then
	ok "the master notifies READY=1"
	st=$(haloyd-ctl --json status 2>&1)
	echo "$st" | note
	check "at READY every one of $nworkers workers serves the master's generation" \
		/usr/bin/python3 -c '
import json, sys
try:
    s = json.loads(sys.argv[1])
    g, w = s["master"]["generation"], s["workers"]
    sys.exit(0 if g > 0 and len(w) == int(sys.argv[2]) and all(x["generation"] == g for x in w) else 1)
except (ValueError, KeyError, TypeError):
    sys.exit(1)' "$st" "$nworkers"
else
	notok "the master notifies READY=1"
	notok "at READY every one of $nworkers workers serves the master's generation"
	{ cat "$WORK/daemon.out"; grep -v WATCHDOG=1 "$WORK/notify.log"
	  journalctl -q -o cat _PID="$daemon_pid" | tail -n 20; } 2>/dev/null | note
fi
notified 'STATUS=.*' && grep -E "^$daemon_pid [0-9.]+ STATUS=" "$WORK/notify.log" | tail -n 1 | cut -d' ' -f3- | note
worker_pids=$(ps -o pid= --ppid "$daemon_pid" | tr -d ' ' | paste -sd' ')
check "/run/haloyd root:haloyd-admin 0750" stat_is /run/haloyd "root:haloyd-admin 750"
check "/run/haloyd/control.sock root:haloyd-admin 0660" \
	stat_is /run/haloyd/control.sock "root:haloyd-admin 660"
check "the master runs as root" [ "$(ps -o user= -p "$daemon_pid" | tr -d ' ')" = root ]
wusers=$(ps -o user= --ppid "$daemon_pid" | tr -d ' ' | sort -u | paste -sd,)
check "$nworkers workers run as user haloyd (${wusers:-none})" \
	eval '[ "$wusers" = haloyd ] && [ "$(ps -o pid= --ppid "$daemon_pid" | wc -l)" -eq "$nworkers" ]'
check "journal: the master logs ready with HALOYD_ROLE=master" \
	wait_for 5 sh -c "journalctl -q -o cat SYSLOG_IDENTIFIER=haloyd HALOYD_ROLE=master _PID=$daemon_pid | grep -q '^ready'"

# --- haloyd-ctl: a member of haloyd-admin may, nobody and the workers' user may not.
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
	-G haloyd-admin "$ADMIN"
mkdir "$WORK/www" && echo "hello from the deb test" >"$WORK/www/index.html"
/usr/bin/python3 -m http.server "$bport" --bind 127.0.0.1 --directory "$WORK/www" \
	>/dev/null 2>&1 9>&- &
backend_pid=$!
wait_for 5 curl -sf -o /dev/null "http://127.0.0.1:$bport/"
out=$(as "$ADMIN" haloyd-ctl route add "$HOST" "127.0.0.1:$bport" 2>&1)
rc=$?
check "haloyd-ctl route add as a member of haloyd-admin (exit $rc) $out" [ "$rc" -eq 0 ]
out=$(as "$ADMIN" haloyd-ctl route add "$DEAD" "127.0.0.1:$deadport" 2>&1)
rc=$?
check "haloyd-ctl route add (a dead backend) as a member of haloyd-admin (exit $rc) $out" [ "$rc" -eq 0 ]
out=$(as nobody haloyd-ctl route add "x.$HOST" "127.0.0.1:$bport" 2>&1)
rc=$?
check "haloyd-ctl route add as nobody exits 4 (got $rc)" [ "$rc" -eq 4 ]
check "haloyd-ctl as nobody says: $out" \
	eval '[ "${out#haloyd-ctl: }" = "permission denied: join the haloyd-admin group" ]'
out=$(as haloyd haloyd-ctl route list 2>&1)
rc=$?
check "haloyd-ctl as the workers' user exits 4 (got $rc)" [ "$rc" -eq 4 ]
check "haloyd-ctl route list --json as admin lists $HOST and not x.$HOST" \
	sh -c "setpriv --reuid=$ADMIN --regid=$(id -g "$ADMIN") --init-groups haloyd-ctl route list --json >'$WORK/routes.json' &&
		grep -q '\"$HOST\"' '$WORK/routes.json' && ! grep -q '\"x.$HOST\"' '$WORK/routes.json'"

# --- bash completion: commands, and route names from the running daemon.
complete_words() {
	bash -c '
		source /usr/share/bash-completion/bash_completion
		source /usr/share/bash-completion/completions/haloyd-ctl
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_haloyd_ctl haloyd-ctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
}
check "completion: haloyd-ctl ro<TAB> -> route" sh -c '[ "$1" = route ]' _ "$(complete_words haloyd-ctl ro)"
check "completion: haloyd-ctl route show <TAB> lists $HOST" \
	sh -c 'printf "%s\n" "$1" | grep -qx "$2"' _ "$(complete_words haloyd-ctl route show '')" "$HOST"

# --- a proxied request and a 502 are in the journal with their fields.
body=$(curl -s -m 10 -H "Host: $HOST" "http://127.0.0.1:$port/index.html")
check "a request for $HOST is proxied to the backend" [ "$body" = "hello from the deb test" ]
code=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -H "Host: $DEAD" "http://127.0.0.1:$port/")
check "a request for $DEAD gets 502 (got $code)" [ "$code" = 502 ]
check "journalctl HALOYD_HOST=$HOST finds the access entry" \
	wait_for 5 sh -c "journalctl -q -o cat HALOYD_HOST=$HOST HALOYD_STATUS=200 | grep -q ."
journalctl --no-pager -q -o verbose HALOYD_HOST="$HOST" -n 1 2>/dev/null >"$WORK/entry.txt"
grep -E '^ +(PRIORITY|SYSLOG_IDENTIFIER|_PID|_UID|HALOYD_[A-Z_]+)=' "$WORK/entry.txt" | note
for f in PRIORITY=6 SYSLOG_IDENTIFIER=haloyd HALOYD_ROLE=worker 'HALOYD_WORKER=[0-9]+$' HALOYD_METHOD=GET \
	HALOYD_PATH=/index.html HALOYD_STATUS=200 "HALOYD_BACKEND=127.0.0.1:$bport\$" 'HALOYD_DURATION_US=[0-9]+$' \
	'HALOYD_BYTES_OUT=[0-9]+$' 'HALOYD_REQUEST_ID=.+'; do
	check "the access entry carries $f" grep -qE "^ +$f" "$WORK/entry.txt"
done
check "the access entry comes from a worker running as haloyd" \
	grep -qE "^ +_UID=$(id -u haloyd)\$" "$WORK/entry.txt"
check "journalctl HALOYD_STATUS=502 finds the 502 for $DEAD" \
	wait_for 5 sh -c "journalctl -q -o cat HALOYD_STATUS=502 HALOYD_HOST=$DEAD | grep -q ."

# --- the watchdog: WATCHDOG=1 from the master's loop, at half the period.
check "the master sends WATCHDOG=1 (WATCHDOG_USEC=$WATCHDOG_TEST_USEC)" wait_for 5 notified 'WATCHDOG=1'
check "no notify message comes from another process than the master" \
	sh -c "! grep -vqE '^$daemon_pid ' '$WORK/notify.log'"

# --- reload: ExecReload refuses a broken haloyd.conf, and a SIGHUP with it
# keeps the running configuration and says why.
echo "no_such_setting 1" >>"$CONF"
reload_ok=1
while read -r line; do
	line=${line//\$MAINPID/$daemon_pid}
	read -r -a rcmd <<<"${line#[-@:+!]}"
	"${rcmd[@]}" >>"$WORK/reload.out" 2>&1 || { reload_ok=0; break; }
done < <(sed -n 's/^ExecReload=//p' "$UNIT")
note <"$WORK/reload.out"
check "ExecReload stops at haloyd -t with a broken haloyd.conf" [ "$reload_ok" = 0 ]
check "haloyd -t names the file, the line and the problem" \
	grep -q "^haloyd: $CONF:[0-9]*: unknown setting 'no_such_setting'" "$WORK/reload.out"
kill -HUP "$daemon_pid"
check "SIGHUP with a broken haloyd.conf logs why and keeps the running one" \
	wait_for 5 sh -c "journalctl -q -o cat SYSLOG_IDENTIFIER=haloyd _PID=$daemon_pid | grep -q 'no_such_setting.*keeping the running configuration'"
check "the reload notifies RELOADING=1, then READY=1 again" wait_for 5 reload_notified
check "the master still runs" kill -0 "$daemon_pid"
body=$(curl -s -m 10 -H "Host: $HOST" "http://127.0.0.1:$port/index.html")
check "requests are still proxied on the same port" [ "$body" = "hello from the deb test" ]
sed -i '/^no_such_setting/d' "$CONF"
kill -HUP "$daemon_pid"
check "SIGHUP with a fixed haloyd.conf reloads it" \
	wait_for 5 sh -c "journalctl -q -o cat SYSLOG_IDENTIFIER=haloyd _PID=$daemon_pid | grep -q 'configuration reloaded'"
check "nothing written to stdout/stderr with --log-target journal" [ ! -s "$WORK/daemon.out" ]
note <"$WORK/daemon.out"

# --- upgrade (issue 21): apt install of a newer-versioned .deb over the
# running daemon hands over (postinst: haloyd-ctl upgrade) under a curl loop:
# no refused or failed request, the old master exits, the new one is MAINPID.
mkdir "$WORK/newer"
dpkg-deb -R "$deb" "$WORK/newer/root"
version=$(dpkg-deb -f "$deb" Version)
sed -i "s/^Version: .*/Version: $version+upgrade1/" "$WORK/newer/root/DEBIAN/control"
dpkg-deb -b "$WORK/newer/root" "$WORK/newer/haloyd_upgrade.deb" >/dev/null
old_pid=$daemon_pid
rm -f "$WORK/load.stop"
(
	sent=0 bad=0
	while [ ! -e "$WORK/load.stop" ]; do
		code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' -H "Host: $HOST" \
			"http://127.0.0.1:$port/index.html")
		sent=$((sent + 1))
		[ "$code" = 200 ] || { bad=$((bad + 1)); echo "$code" >>"$WORK/load.bad"; }
	done
	echo "$sent $bad" >"$WORK/load.result"
) 9>&- &
load_pid=$!
(cd "$WORK/newer" && apt-get install -y -q ./haloyd_upgrade.deb) >"$WORK/upgrade.log" 2>&1
rc=$?
tail -n 5 "$WORK/upgrade.log" | note
check "apt-get install -y of a newer .deb over the running haloyd (exit $rc)" [ "$rc" -eq 0 ]
new_pid=$(haloyd-ctl --json status 2>/dev/null | /usr/bin/python3 -c \
	'import json, sys; print(json.load(sys.stdin)["master"]["pid"])' 2>/dev/null)
check "a new master serves (pid ${new_pid:-none}, was $old_pid)" \
	eval '[ -n "$new_pid" ] && [ "$new_pid" != "$old_pid" ]'
check "the old master drains and exits 0 within 60 s" wait_for 60 sh -c "! kill -0 $old_pid 2>/dev/null"
wait "$old_pid" 2>/dev/null
rc=$?
check "the old master's exit status is 0 (got $rc)" [ "$rc" -eq 0 ]
check "the old master named the new one MAINPID= with READY=1" \
	grep -qE "^$old_pid [0-9.]+ MAINPID=$new_pid\$" "$WORK/notify.log"
touch "$WORK/load.stop"
wait "$load_pid" 2>/dev/null
load_pid=""
read -r sent bad <"$WORK/load.result"
echo "# during the upgrade: $sent requests, $bad not 200 ($(sort "$WORK/load.bad" 2>/dev/null | uniq -c | paste -sd' '))" | note
check "no request refused or failed during the upgrade ($sent sent, $bad bad)" \
	eval '[ "$sent" -gt 0 ] && [ "$bad" -eq 0 ]'
check "dpkg has the newer version" \
	eval '[ "$(dpkg-query -W -f "\${Version}" haloyd)" = "$version+upgrade1" ]'
daemon_pid=$new_pid
worker_pids=$(ps -o pid= --ppid "$daemon_pid" | tr -d ' ' | paste -sd' ')
check "the new master sends WATCHDOG=1 itself" wait_for 5 notified 'WATCHDOG=1'

# --- stop: SIGTERM (what systemd sends the main process) stops everything.
kill -TERM "$daemon_pid"
# The new master is not this shell's child: its exit is read from the journal.
check "SIGTERM stops the master within 40 s (TimeoutStopSec)" wait_for 40 sh -c "! kill -0 $daemon_pid 2>/dev/null"
check "the master logs that it stopped" \
	wait_for 5 sh -c "journalctl -q -o cat SYSLOG_IDENTIFIER=haloyd _PID=$daemon_pid | grep -q '^stopped'"
check "the master notified STOPPING=1" notified 'STOPPING=1'
daemon_pid=""
left=""
for p in $worker_pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
check "no worker is left${left:+:$left}" [ -z "$left" ]
worker_pids=""
kill "$backend_pid" "$notify_pid" 2>/dev/null
backend_pid="" notify_pid=""
cp -p "$WORK/haloyd.conf.orig" "$CONF"
conf_saved=0

# --- remove keeps the store and the configuration; purge removes them.
check "the store exists: /var/lib/haloyd/haloyd.db root:root 0600" \
	stat_is /var/lib/haloyd/haloyd.db "root:root 600"
apt-get remove -y -q haloyd >"$WORK/remove.log" 2>&1
check "apt-get remove -y haloyd" [ $? -eq 0 ]
check "remove keeps /var/lib/haloyd/haloyd.db and $CONF" eval '[ -f /var/lib/haloyd/haloyd.db ] && [ -f "$CONF" ]'
check "remove removes the programs" eval '[ ! -e /usr/sbin/haloyd ] && [ ! -e /usr/sbin/haloyd-ctl ]'
apt-get purge -y -q haloyd >"$WORK/purge.log" 2>&1
check "apt-get purge -y haloyd" [ $? -eq 0 ]
installed=0
left=""
for p in /etc/haloyd /var/lib/haloyd /run/haloyd "$UNIT" /etc/systemd/system/multi-user.target.wants/haloyd.service \
	/usr/share/doc/haloyd /usr/share/bash-completion/completions/haloyd-ctl /usr/share/man/man8/haloyd.8.gz; do
	{ [ -e "$p" ] || [ -L "$p" ]; } && left="$left $p"
done
check "purge leaves nothing behind:${left:- nothing}" [ -z "$left" ]
check "dpkg no longer lists haloyd (not even as rc)" sh -c '! dpkg -l haloyd 2>/dev/null | grep -qE "^[a-z][a-zA-Z] "'
apt-get purge -y -q haloyd-tunnel >"$WORK/tpurge.log" 2>&1
check "apt-get purge -y haloyd-tunnel" [ $? -eq 0 ]
check "purge removes the agent, its template and /etc/haloyd-tunnel" \
	eval '[ ! -e /usr/bin/haloyd-tunnel ] && [ ! -e "$TUNIT" ] && [ ! -e /etc/haloyd-tunnel ]'
# Where the package and the daemon write (not /tmp: other test runs'
# folders there may be handed to haloyd-admin by their own daemons).
owned=$(find /etc /var /run /usr /opt /srv /home /root \
	\( -user haloyd -o -user haloyd-acme -o -group haloyd -o -group haloyd-acme -o -group haloyd-admin \) \
	-print 2>/dev/null | head -n 5)
[ -n "$owned" ] && echo "$owned" | note
check "no file owned by haloyd, haloyd-acme or haloyd-admin is left" [ -z "$owned" ]
