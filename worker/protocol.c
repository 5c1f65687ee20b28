/*
 * protocol.c — status texts and the FILENAME character set (see protocol.h).
 */
#include "protocol.h"

static const struct {
	enum status status;
	const char *text;
} protocol_statuses[] = {
	{ STATUS_OK,                "OK" },
	{ STATUS_BAD_EOL,           "BAD EOL" },
	{ STATUS_BAD_REQUEST,       "BAD REQUEST" },
	{ STATUS_INTERNAL_ERROR,    "INTERNAL SERVER ERROR" },
	{ STATUS_NO_SUCH_COMMAND,   "NO SUCH COMMAND" },
	{ STATUS_INVALID_ARGUMENTS, "INVALID ARGUMENTS FOR COMMAND" },
	{ STATUS_FILE_NOT_FOUND,    "FILE NOT FOUND" },
	{ STATUS_BAD_OFFSET,        "OFFSET EXCEEDS FILE SIZE" },
};

const char *
protocol_status_text(enum status status)
{
	for (unsigned i = 0; i < sizeof(protocol_statuses) / sizeof(protocol_statuses[0]); i++) {
		if (protocol_statuses[i].status == status)
			return protocol_statuses[i].text;
	}
	return "INTERNAL SERVER ERROR";
}

bool
protocol_status_fatal(enum status status)
{
	return status >= 100 && status < 200;
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
