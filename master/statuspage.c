/*
 * statuspage.c — the HTML page at GET / on the status listener.  A
 * placeholder: it names the endpoints; the data is at /status.
 */
#include "statuspage.h"

const char statuspage_html[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\"><head><meta charset=\"utf-8\"><title>hftpd status</title></head>\n"
	"<body><h1>hftpd status</h1>\n"
	"<p><a href=\"/status\">/status</a> (JSON), <a href=\"/metrics\">/metrics</a>"
	" (Prometheus), <a href=\"/health\">/health</a>.</p>\n"
	"</body></html>\n";
