"""Listening sockets for the suite's hand-written servers, and the one safe
way to accept on them.

A thread must never sit inside a blocking accept() on a socket that another
thread may close. On gVisor (which CI and this machine run under) such a
call is restarted on the descriptor *number* once the socket is closed, so
it goes on accepting from whatever socket a later test opens with the same
number, and steals that server's connections: a test's backend then never
sees its request, and socketserver's shutdown() waits for ever on an accept
that no longer gets anything (seen as a hung integration run). So every
listening socket here is non-blocking and accept() below waits in poll()
first: the accept call itself never blocks, and a closed socket ends the
wait with OSError as the callers expect.
"""
import errno
import http.server
import select
import socket
import time


def listen(backlog=64, family=socket.AF_INET, host="127.0.0.1"):
    """A socket listening on host and a free port, ready for accept()."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        s.listen(backlog)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def accept(sock, timeout=None):
    """sock.accept() without ever blocking in the accept call: returns
    (connection, address) with the connection blocking; raises OSError once
    sock is closed, TimeoutError after timeout seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        fd = sock.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "the listening socket is closed")
        sock.setblocking(False)
        p = select.poll()
        p.register(fd, select.POLLIN)
        if p.poll(100):
            try:
                c, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                continue
            c.setblocking(True)
            return c, addr
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError("no connection within %s s" % timeout)


class PollAccept:
    """A socketserver mix-in (first among the bases) with the same rule: its
    socket is non-blocking once listening, so get_request() never blocks;
    serve_forever() polls before it, and a BlockingIOError is an OSError
    that it already ignores."""

    def server_activate(self):
        super().server_activate()
        self.socket.setblocking(False)

    def get_request(self):
        c, addr = self.socket.accept()
        c.setblocking(True)
        return c, addr


class ThreadingHTTPServer(PollAccept, http.server.ThreadingHTTPServer):
    """http.server's, with PollAccept."""
    daemon_threads = True
