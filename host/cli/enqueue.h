/*
 * enqueue.h - `ward enqueue`: one job queued through libward-client, and
 * with --wait its outcome. CLI process only.
 */
#ifndef WARD_ENQUEUE_H
#define WARD_ENQUEUE_H

/* The state directory of configuration directory dir into *state_dir
 * (malloc'd): 0, or -1 after saying why. */
typedef int (*enqueue_state_dir_fn)(const char *dir, char **state_dir);

/* argv: what follows `ward enqueue`. Exit status: 0 queued (with --wait:
 * done), 1 failure (with --wait: failed or dead), 2 bad usage, 4 with --wait
 * still unfinished when the wait ended. */
int cmd_enqueue(int argc, char **argv, const char *config_dir, enqueue_state_dir_fn state_dir_of);

#endif
