/*
 * dbfile.h - what the host's two SQLite databases (ward.db, history.c;
 * jobs.db, jobstore_sqlite.c) share about their files: they are the host's
 * user's only (mode 0600, docs/security.md), -wal and -shm included. Host
 * daemon only.
 */
#ifndef WARD_DBFILE_H
#define WARD_DBFILE_H

#include <stdbool.h>

/* Makes the database file 0600 (creating it empty first when create), so
 * that SQLite, which gives -wal and -shm the database's mode, never creates
 * anything readable by others, whatever the umask. Call it before SQLite
 * has the file open: the close() here would drop SQLite's POSIX locks on
 * it. A failure is a warning, not an error: opening goes on. */
void db_make_private(const char *path, bool create);
/* -wal and -shm that an older ward or a host that died left with another
 * mode (SQLite reuses files as they are): 0600, by path. */
void db_make_companions_private(const char *path);

#endif
