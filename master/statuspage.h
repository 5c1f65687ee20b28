/*
 * statuspage.h - the status page (GET / on the status listener).
 */
#ifndef STATUSPAGE_H
#define STATUSPAGE_H

#include <stddef.h>

extern const char	statuspage_html[];
extern const size_t	statuspage_html_len;

#endif
