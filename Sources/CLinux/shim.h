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

// The socket calls of the per-event path, made without libc's wrappers: read(2), write(2) and the rest are POSIX
// cancellation points, and glibc brackets each with two atomic updates of the thread's cancellation state (1.3 % of
// the gateway's CPU under HTTP load). No thread here is ever cancelled. Each returns the result, or -errno.
#if defined(__x86_64__)
static inline long rtc_raw_syscall6(long number, long a, long b, long c, long d, long e, long f) {
    long result;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}
#else
static inline long rtc_raw_syscall6(long number, long a, long b, long c, long d, long e, long f) {
    long result = syscall(number, a, b, c, d, e, f);
    return result < 0 ? -errno : result;
}
#endif
static inline long rtc_read(int fd, void *buffer, size_t count) {
    return rtc_raw_syscall6(__NR_read, fd, (long)buffer, (long)count, 0, 0, 0);
}
static inline long rtc_write(int fd, const void *bytes, size_t count) {
    return rtc_raw_syscall6(__NR_write, fd, (long)bytes, (long)count, 0, 0, 0);
}
static inline long rtc_writev(int fd, const struct iovec *vectors, int count) {
    return rtc_raw_syscall6(__NR_writev, fd, (long)vectors, count, 0, 0, 0);
}
static inline long rtc_recv(int fd, void *buffer, size_t count, int flags) {
    return rtc_raw_syscall6(__NR_recvfrom, fd, (long)buffer, (long)count, flags, 0, 0);
}
static inline long rtc_send(int fd, const void *bytes, size_t count, int flags) {
    return rtc_raw_syscall6(__NR_sendto, fd, (long)bytes, (long)count, flags, 0, 0);
}

#endif
