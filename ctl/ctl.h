/*
 * haloyd-ctl: one command against the running daemon over its control
 * socket (HELLO, the request, then ROW* END / OK / FAIL), answered as text
 * or JSON, with the exit codes of enum ctl_code (share/msg.h).
 */
#ifndef HALOYD_CTL_CTL_H
#define HALOYD_CTL_CTL_H

#define CTL_TIMEOUT_MS 30000	/* longest wait for any one answer */

/* Runs haloyd-ctl with main()'s arguments; returns the exit code. */
int ctl_main(int argc, char *argv[]);

#endif
