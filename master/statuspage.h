/*
 * statuspage.h — the status page served at GET / on the status listener:
 * one self-contained HTML document (no external assets).
 */
#ifndef HFTPD_STATUSPAGE_H
#define HFTPD_STATUSPAGE_H

extern const char statuspage_html[];

#endif
