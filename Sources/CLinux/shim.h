// Linux system calls that Swift's Glibc module does not import: epoll, eventfd, timerfd, accept4, pipe2,
// splice, and liburing for the io_uring backend.
#ifndef RTC_CLINUX_SHIM_H
#define RTC_CLINUX_SHIM_H

// <features.h> first and _GNU_SOURCE never defined here: the Glibc module is built without it, and a
// different feature set in this module breaks clean builds (see PLATFORM.md).
#include <features.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <sys/syscall.h>
#include <liburing.h>

// GNU extensions, declared here because _GNU_SOURCE is not defined (glibc exports them all the same).
extern int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
extern int pipe2(int fds[2], int flags);
extern ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len, unsigned int flags);

#ifndef SPLICE_F_MOVE
#define SPLICE_F_MOVE 1
#define SPLICE_F_NONBLOCK 2
#define SPLICE_F_MORE 4
#define SPLICE_F_GIFT 8
#endif

#ifndef SO_REUSEPORT
#define SO_REUSEPORT 15
#endif

static inline int rtc_errno(void) { return errno; }
static inline void rtc_set_errno(int value) { errno = value; }

// errno values, as plain ints for Swift (some are macros over macros).
static inline int rtc_EAGAIN(void) { return EAGAIN; }
static inline int rtc_EINPROGRESS(void) { return EINPROGRESS; }

// io_uring helpers that are macros in liburing.h.
static inline unsigned rtc_io_uring_peek_batch(struct io_uring *ring, struct io_uring_cqe **cqes, unsigned count) {
    return io_uring_peek_batch_cqe(ring, cqes, count);
}
// IOSQE_* flags are macros over an enum: they do not import.
static inline unsigned rtc_IOSQE_CQE_SKIP_SUCCESS(void) { return IOSQE_CQE_SKIP_SUCCESS; }
static inline unsigned rtc_IOSQE_BUFFER_SELECT(void) { return IOSQE_BUFFER_SELECT; }
static inline unsigned rtc_IOSQE_IO_LINK(void) { return IOSQE_IO_LINK; }
// liburing 2.3's shared library lacks io_uring_enable_rings: the register call, made directly.
static inline int rtc_io_uring_enable_rings(struct io_uring *ring) {
    long result = syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    return result < 0 ? -errno : 0;
}

#endif
