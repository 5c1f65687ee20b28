/*
 * protocol.c — status texts and lines, decimal numbers, and the FILENAME
 * character set (see protocol.h).
 */
#include <string.h>

#include "protocol.h"

/* Each status with its text and its whole line, made once (a memcpy each answer). */
#define PROTOCOL_STATUS(st, num, text) { st, text, num " " text "\r\n", sizeof(num " " text "\r\n") - 1 }

static const struct {
	enum status status;
	const char *text;
	const char *line;
	size_t      len;
} protocol_statuses[] = {
	PROTOCOL_STATUS(STATUS_OK,                "0",   "OK"),
	PROTOCOL_STATUS(STATUS_BAD_EOL,           "100", "BAD EOL"),
	PROTOCOL_STATUS(STATUS_BAD_REQUEST,       "101", "BAD REQUEST"),
	PROTOCOL_STATUS(STATUS_INTERNAL_ERROR,    "199", "INTERNAL SERVER ERROR"),
	PROTOCOL_STATUS(STATUS_NO_SUCH_COMMAND,   "200", "NO SUCH COMMAND"),
	PROTOCOL_STATUS(STATUS_INVALID_ARGUMENTS, "201", "INVALID ARGUMENTS FOR COMMAND"),
	PROTOCOL_STATUS(STATUS_FILE_NOT_FOUND,    "202", "FILE NOT FOUND"),
	PROTOCOL_STATUS(STATUS_BAD_OFFSET,        "203", "OFFSET EXCEEDS FILE SIZE"),
};
#define PROTOCOL_NSTATUSES (sizeof(protocol_statuses) / sizeof(protocol_statuses[0]))
/* Where an unknown status is answered from: a broken invariant, said as 199. */
#define PROTOCOL_INTERNAL 3

static unsigned
protocol_status_index(enum status status)
{
	/* OK first: nearly every answer is found at once */
	for (unsigned i = 0; i < PROTOCOL_NSTATUSES; i++) {
		if (protocol_statuses[i].status == status)
			return i;
	}
	return PROTOCOL_INTERNAL;
}

const char *
protocol_status_text(enum status status)
{
	return protocol_statuses[protocol_status_index(status)].text;
}

const char *
protocol_status_line(enum status status, size_t *len)
{
	unsigned i = protocol_status_index(status);

	*len = protocol_statuses[i].len;
	return protocol_statuses[i].line;
}

bool
protocol_status_fatal(enum status status)
{
	return status >= 100 && status < 200;
}

size_t
protocol_decimal(char *dst, uint64_t v)
{
	char  digits[PROTOCOL_DECIMAL_MAX];
	char *q = digits + sizeof(digits);

	/* from the last digit back, then one copy */
	do {
		*--q = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	memcpy(dst, q, (size_t)(digits + sizeof(digits) - q));
	return (size_t)(digits + sizeof(digits) - q);
}

bool
protocol_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
protocol_name_valid(const char *name)
{
	if (*name == '\0')
		return false;
	for (; *name != '\0'; name++) {
		if (!protocol_name_char((unsigned char)*name))
			return false;
	}
	return true;
}
