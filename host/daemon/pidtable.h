/*
 * pidtable.h - the host's table of process id -> instance (host process).
 */
#ifndef WARD_PIDTABLE_H
#define WARD_PIDTABLE_H

#include <sys/types.h>

struct instance;

void pidtable_add(struct instance *in);    /* in->pid now names its process */
void pidtable_remove(struct instance *in); /* its pid may be reused from now on */
struct instance *pidtable_find(pid_t pid); /* NULL: no instance has that process */
void pidtable_free(void);                  /* the host is done: empty again */

#endif
