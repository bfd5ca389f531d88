/* One hex digit's value, for the parsers of text we did not write (key
 * files, /proc/net tables): shared so both refuse the same bytes. */
#ifndef KITE_HEX_DIGIT_H
#define KITE_HEX_DIGIT_H

/* 0-15 for 0-9, a-f, A-F; -1 for any other byte. */
static inline int ki_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
