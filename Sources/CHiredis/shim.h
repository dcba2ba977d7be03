// hiredis (0.14: RESP2, no TLS). Variadic calls do not import: use redisCommandArgv.
#ifndef RTC_CHIREDIS_SHIM_H
#define RTC_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

#endif
