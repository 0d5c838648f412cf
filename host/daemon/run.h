/*
 * run.h - `ward run`: the supervising process. It owns the event loop, the
 * worker table, signal handling and reaping; it never loads plugin code.
 */
#ifndef WARD_RUN_H
#define WARD_RUN_H

/* Runs the host in the foreground until SIGTERM/SIGINT. Returns the exit status. */
int host_run(const char *config_dir);

struct host_observer;
/* The same host, running the one worker of a `ward test` configuration until
 * it has ended (or the observer's timeout), without control socket or
 * systemd; the observer (daemon/observer.h) is told what the report needs. */
int host_run_test(const char *config_dir, const struct host_observer *test);

#endif
