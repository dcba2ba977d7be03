// librdkafka, with its mock cluster (which must come after rdkafka.h).
#ifndef RTC_CRDKAFKA_SHIM_H
#define RTC_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#endif
