// PCRE2 with 8-bit code units; the macros Swift cannot import are wrapped as functions.
#ifndef RTC_CPCRE2_SHIM_H
#define RTC_CPCRE2_SHIM_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static inline size_t rtc_pcre2_zero_terminated(void) { return PCRE2_ZERO_TERMINATED; }
static inline size_t rtc_pcre2_unset(void) { return PCRE2_UNSET; }

#endif
