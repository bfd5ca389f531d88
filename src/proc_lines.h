/* Internal (not API): read a /proc text file line by line. */
#ifndef KITE_PROC_LINES_H
#define KITE_PROC_LINES_H

#include <stddef.h>

/* Call line(text, len, arg) for each newline-terminated line of path (len
 * excludes the newline; text is not NUL-terminated). A line longer than the
 * internal buffer (256 KiB, far above anything /proc writes) is dropped and
 * counted in *toolong if not NULL. A non-zero return from line stops the
 * walk and is returned; -errno if path cannot be read. */
int ki_proc_lines_each(const char *path,
		    int (*line)(const char *text, size_t len, void *arg),
		    void *arg, unsigned *toolong);

#endif
