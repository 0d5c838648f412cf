/*
 * notify.h - telling systemd how the host is doing: ready, status line,
 * stopping, and watchdog pings, over the sd_notify protocol. It speaks the
 * protocol itself (one datagram of "KEY=value" lines per message to the
 * AF_UNIX socket named by NOTIFY_SOCKET), so ward needs no libsystemd. It
 * never blocks the host and never ends it: without NOTIFY_SOCKET every call
 * is a no-op, and a send that fails is logged once and its message goes
 * out with the next one.
 */
#ifndef WARD_NOTIFY_H
#define WARD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads NOTIFY_SOCKET (a path, or an abstract socket when it starts with '@';
 * systemd's vsock: addresses, for virtual machines, are not supported)
 * and removes it from the environment, so that no worker inherits it and
 * speaks for the host. Returns 0 when set up, and also when NOTIFY_SOCKET is
 * unset (then everything below is a no-op); -1 when it is set but unusable
 * (logged once; the host can run on, just unnoticed by systemd). Opening
 * again closes what an earlier call opened. Call once at start, before the
 * first worker is forked. */
int notify_open(void);
void notify_close(void);
/* Whether there is a systemd to tell (this process opened NOTIFY_SOCKET):
 * without one the host need not count what it would say. */
bool notify_enabled(void);

/* Sends one datagram made of fmt (newline-separated KEY=value assignments).
 * Only the process that called notify_open sends: a forked child never does.
 * Never blocks, never fatal: a failure is logged once (and its end once),
 * and what was not sent goes out with the next message. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* READY=1 plus STATUS=status (omitted when status is NULL). Newlines in
 * status become spaces: they would otherwise start new assignments. */
void notify_ready(const char *status);
/* STATUS=status: the one-line text `systemctl status` shows. */
void notify_status(const char *status);
/* STOPPING=1: the host began to stop its workers. */
void notify_stopping(void);

/* The watchdog timeout systemd set for this process (WATCHDOG_USEC, honoured
 * only when WATCHDOG_PID is unset or is our pid), in nanoseconds; 0 when there
 * is no watchdog or the variables are malformed (logged). Send notify_watchdog
 * every half of it, from the loop, so a stuck loop is what systemd detects.
 * Reads the environment on every call and changes nothing. */
int64_t notify_watchdog_ns(void);
/* WATCHDOG=1: "the loop is still turning". */
void notify_watchdog(void);

#endif
