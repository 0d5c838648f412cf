/*
 * command.h - a command worker's `command` line split into words as a shell
 * splits them (quotes, backslashes; no expansion, no shell run), and the
 * program it names found on a PATH. Shared by the configuration (config.c,
 * which checks the line) and the worker process (worker/child.c, which execs
 * it); runs in whichever process calls it.
 */
#ifndef WARD_COMMAND_H
#define WARD_COMMAND_H

#include "common/util.h"

/* The words of line into words (appended, each owned). NULL, or why the
 * line cannot be split (an unterminated quote, a trailing backslash, no
 * word at all); words is emptied then. */
const char *command_split(const char *line, struct strv *words);

/* The file program names: itself when it holds a '/', else the first
 * PATH directory (colon separated; an empty entry is the working directory)
 * where it exists. Owned; NULL when no directory has it. */
char *command_find(const char *program, const char *path);

#endif
