/* fsync_delay: an LD_PRELOAD shim that makes a process's disk slow.
 *
 * fsync and fdatasync sleep, then call the real function (dlsym
 * RTLD_NEXT). The delay in ms is read on every call from the file named
 * by PADDOCK_CHAOS_FSYNC_DELAY_FILE (no file: no delay), so a running
 * process can be slowed and sped up; without that variable,
 * PADDOCK_CHAOS_FSYNC_DELAY_MS is a fixed delay. Each delayed call
 * appends one byte to PADDOCK_CHAOS_FSYNC_COUNT_FILE, which the
 * constructor creates: its existence shows the shim was loaded.
 *
 * PADDOCK_CHAOS_FSYNC_FAIL_FILE names a file that, while it exists and
 * starts with "eio" or "enospc", makes every fsync and fdatasync fail with
 * that errno (after the delay, without calling the real function): a
 * failing disk, switched on and off while the process runs.
 *
 * Only the call is delayed; the kernel's writeback is not. After start-up
 * the hooks use only async-signal-safe calls, and they keep errno.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Longest delay honoured, so a bad file cannot hang a process for hours. */
#define DELAY_MS_MAX 600000L

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static const char *delay_file;
static const char *fail_file;
static long fixed_ms;
static int count_fd = -1;

__attribute__((constructor)) static void fsync_delay_init(void) {
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (!real_fsync || !real_fdatasync) abort();
    delay_file = getenv("PADDOCK_CHAOS_FSYNC_DELAY_FILE");
    fail_file = getenv("PADDOCK_CHAOS_FSYNC_FAIL_FILE");
    const char *ms = getenv("PADDOCK_CHAOS_FSYNC_DELAY_MS");
    fixed_ms = ms ? strtol(ms, NULL, 10) : 0;
    const char *count = getenv("PADDOCK_CHAOS_FSYNC_COUNT_FILE");
    if (count) count_fd = open(count, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static long delay_ms(void) {
    if (!delay_file) return fixed_ms;
    int fd = open(delay_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    long ms = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        if ((ms = ms * 10 + (buf[i] - '0')) > DELAY_MS_MAX) return DELAY_MS_MAX;
    return ms;
}

static void delay(void) {
    int saved = errno;
    long ms = delay_ms();
    if (ms > 0) {
        if (count_fd >= 0 && write(count_fd, ".", 1) < 0) { /* counting is best effort */ }
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    errno = saved;
}

/* The errno the fail file asks for, or 0. */
static int failure(void) {
    if (!fail_file) return 0;
    int saved = errno;
    int fd = open(fail_file, O_RDONLY | O_CLOEXEC);
    errno = saved;
    if (fd < 0) return 0;
    char buf[8] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    errno = saved;
    if (n >= 3 && buf[0] == 'e' && buf[1] == 'i' && buf[2] == 'o') return EIO;
    if (n >= 6 && buf[0] == 'e' && buf[1] == 'n' && buf[2] == 'o' && buf[3] == 's'
        && buf[4] == 'p' && buf[5] == 'c') return ENOSPC;
    return 0;
}

int fsync(int fd) {
    delay();
    int e = failure();
    if (e) { errno = e; return -1; }
    return real_fsync(fd);
}
int fdatasync(int fd) {
    delay();
    int e = failure();
    if (e) { errno = e; return -1; }
    return real_fdatasync(fd);
}
