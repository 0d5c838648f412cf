/*
 * command.c - splitting a command worker's command line into words, and
 * finding its program on a PATH (see command.h). Any process.
 */
#include "common/command.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* POSIX shell word splitting without expansion: outside quotes a backslash
 * keeps the next character; inside '...' everything is literal; inside
 * "..." a backslash keeps only $ ` " \ and newline, otherwise it stays. */
const char *command_split(const char *line, struct strv *words)
{
	size_t len = strlen(line);
	char *word = xcalloc(len + 1, 1);
	size_t n = 0;
	bool in_word = false;
	const char *why = NULL;
	for (const char *p = line; *p && !why; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n') {
			if (in_word) {
				word[n] = '\0';
				strv_push(words, xstrdup(word));
				n = 0;
				in_word = false;
			}
			continue;
		}
		in_word = true;
		if (*p == '\\') {
			if (!p[1])
				why = "a backslash at the end of the line escapes nothing";
			else
				word[n++] = *++p;
		} else if (*p == '\'') {
			const char *end = strchr(p + 1, '\'');
			if (!end)
				why = "unterminated single quote";
			else {
				memcpy(word + n, p + 1, (size_t)(end - p - 1));
				n += (size_t)(end - p - 1);
				p = end;
			}
		} else if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1] && strchr("$`\"\\\n", p[1]))
					p++;
				word[n++] = *p;
			}
			if (!*p) {
				why = "unterminated double quote";
				p--; /* the loop's p++ must not step past the end */
			}
		} else {
			word[n++] = *p;
		}
	}
	if (!why && in_word) {
		word[n] = '\0';
		strv_push(words, xstrdup(word));
	}
	free(word);
	if (!why && words->n == 0)
		why = "no program named";
	if (why)
		strv_free(words);
	return why;
}

char *command_find(const char *program, const char *path)
{
	if (strchr(program, '/'))
		return xstrdup(program);
	for (const char *p = path ? path : ""; ; ) {
		size_t n = strcspn(p, ":");
		char *file = n ? xasprintf("%.*s/%s", (int)n, p, program) : xasprintf("./%s", program);
		if (access(file, F_OK) == 0)
			return file;
		free(file);
		if (!p[n])
			return NULL;
		p += n + 1;
	}
}
