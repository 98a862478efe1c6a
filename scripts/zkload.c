/*
 * zkload: a load generator built on Apache ZooKeeper's own C client
 * (libzookeeper_mt), so that Paddock and ZooKeeper are measured with a load
 * that is not Paddock's. Used by scripts/bench-cclient.py.
 *
 *   zkload HOSTS async [-s sessions] [-o outstanding] [-v value_bytes]
 *          [-n ops_per_phase] [-t seconds_per_phase] [-p prefix]
 *          [-x create,set,get,delete] [-P server_pid,...]
 *   zkload HOSTS sync  [same options; one session, one request at a time]
 *
 * HOSTS is a comma-separated list of host:port; session i talks to
 * HOSTS[i % count] only, so a 3-server run spreads sessions evenly.
 * Each phase runs until it has completed ops_per_phase operations or its
 * time bound has passed. For every phase one line is printed:
 *
 *   phase=create ops=N errors=E secs=S ops_per_sec=R client_us_per_op=C
 *   server_us_per_op=U server_switches_per_op=W p50_us=A p99_us=B
 *
 * server_us_per_op is the utime+stime (all threads, from /proc/PID/stat)
 * of the given server processes, summed, over the phase, per operation;
 * server_switches_per_op counts the context switches (voluntary and not)
 * of every server thread, from each /proc/PID/task/TID/status; client_us_per_op
 * is this process's own CPU (getrusage). Latencies are from
 * the request being handed to the library to its completion.
 *
 * Built with: cc -O2 -o zkload scripts/zkload.c -lzookeeper_mt -lpthread
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <zookeeper/zookeeper.h>

#define SESSIONS_MAX 64
#define PIDS_MAX 8
#define PATH_MAX_LEN 128

enum op_kind { OP_CREATE, OP_SET, OP_GET, OP_DELETE };
static const char *op_names[] = {"create", "set", "get", "delete"};

static int sessions = 4, outstanding = 128, value_bytes = 100;
static long ops_per_phase = 50000;
static double phase_secs_max = 60.0;
static const char *prefix = "/zkload";
static int pids[PIDS_MAX], pids_count = 0;
static char *value;

static zhandle_t *handles[SESSIONS_MAX];

/* The state of the phase that is running. */
static enum op_kind phase_op;
static long phase_target;     /* operations to complete */
static long phase_keys;       /* znodes that exist (set/get index modulo) */
static double phase_deadline; /* monotonic seconds */
static atomic_long issued, completed, errors;
static uint32_t *lat_us; /* one slot per issued op */
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double client_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of every server process, summed, in seconds. */
static double server_cpu_s(void) {
    double total = 0;
    long hz = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < pids_count; i++) {
        char path[64], buf[2048];
        snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        /* Fields after the command name, which is in parentheses and may
         * hold spaces: state is field 3, utime 14, stime 15. */
        char *p = strrchr(buf, ')');
        if (!p) continue;
        unsigned long ut = 0, st = 0;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            total += (double)(ut + st) / hz;
    }
    return total;
}

/* Context switches (voluntary + involuntary) of every thread of every
 * server process, summed: each is a wake-up or a preemption. */
static double server_switches(void) {
    double total = 0;
    for (int i = 0; i < pids_count; i++) {
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/task", pids[i]);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char path[400], line[256];
            snprintf(path, sizeof path, "%s/%s/status", dir, e->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            while (fgets(line, sizeof line, f)) {
                unsigned long n;
                if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1 ||
                    sscanf(line, "nonvoluntary_ctxt_switches: %lu", &n) == 1)
                    total += n;
            }
            fclose(f);
        }
        closedir(d);
    }
    return total;
}

struct slot {
    long index;
    double sent;
    int session;
};

static void issue(int session);

static void finish(struct slot *s, int rc) {
    double lat = now_s() - s->sent;
    if (rc != ZOK) atomic_fetch_add(&errors, 1);
    lat_us[s->index] = lat * 1e6 > 4e9 ? 4000000000u : (uint32_t)(lat * 1e6);
    int session = s->session;
    free(s);
    long done = atomic_fetch_add(&completed, 1) + 1;
    if (done >= phase_target || now_s() > phase_deadline) {
        pthread_mutex_lock(&done_mu);
        pthread_cond_broadcast(&done_cv);
        pthread_mutex_unlock(&done_mu);
    }
    issue(session);
}

static void on_string(int rc, const char *v, const void *d) { (void)v; finish((struct slot *)d, rc); }
static void on_stat(int rc, const struct Stat *st, const void *d) { (void)st; finish((struct slot *)d, rc); }
static void on_data(int rc, const char *v, int n, const struct Stat *st, const void *d) {
    (void)v; (void)n; (void)st;
    finish((struct slot *)d, rc);
}
static void on_void(int rc, const void *d) { finish((struct slot *)d, rc); }

static void key_path(char *out, long index) {
    long key = (phase_op == OP_SET || phase_op == OP_GET) ? index % phase_keys : index;
    snprintf(out, PATH_MAX_LEN, "%s/n%ld", prefix, key);
}

/* Issues the next operation of the phase on this session, if any is left. */
static void issue(int session) {
    if (now_s() > phase_deadline) return;
    long index = atomic_fetch_add(&issued, 1);
    if (index >= phase_target) return;
    struct slot *s = malloc(sizeof *s);
    s->index = index;
    s->session = session;
    char path[PATH_MAX_LEN];
    key_path(path, index);
    s->sent = now_s();
    zhandle_t *zh = handles[session];
    int rc;
    switch (phase_op) {
    case OP_CREATE:
        rc = zoo_acreate(zh, path, value, value_bytes, &ZOO_OPEN_ACL_UNSAFE, 0, on_string, s);
        break;
    case OP_SET: rc = zoo_aset(zh, path, value, value_bytes, -1, on_stat, s); break;
    case OP_GET: rc = zoo_aget(zh, path, 0, on_data, s); break;
    default: rc = zoo_adelete(zh, path, -1, on_void, s); break;
    }
    if (rc != ZOK) {
        fprintf(stderr, "zkload: %s request refused locally: %s\n", op_names[phase_op], zerror(rc));
        finish(s, rc);
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double switches_at_start;

static void report(enum op_kind op, long ops, double secs, double ccpu, double scpu) {
    double switches = server_switches() - switches_at_start;
    qsort(lat_us, ops, sizeof *lat_us, cmp_u32);
    uint32_t p50 = ops ? lat_us[ops / 2] : 0, p99 = ops ? lat_us[(long)(ops * 0.99)] : 0;
    printf("phase=%s ops=%ld errors=%ld secs=%.3f ops_per_sec=%.0f client_us_per_op=%.2f "
           "server_us_per_op=%.2f server_switches_per_op=%.3f p50_us=%u p99_us=%u\n",
           op_names[op], ops, atomic_load(&errors), secs, ops / secs, ops ? ccpu * 1e6 / ops : 0,
           ops ? scpu * 1e6 / ops : 0, ops ? switches / ops : 0, p50, p99);
    fflush(stdout);
}

static long run_async_phase(enum op_kind op, long keys) {
    phase_op = op;
    phase_keys = keys;
    phase_target = op == OP_DELETE ? keys : ops_per_phase;
    if (op == OP_CREATE) phase_target = ops_per_phase;
    atomic_store(&issued, 0);
    atomic_store(&completed, 0);
    atomic_store(&errors, 0);
    switches_at_start = server_switches();
    double c0 = client_cpu_s(), s0 = server_cpu_s(), t0 = now_s();
    phase_deadline = t0 + phase_secs_max;
    for (int k = 0; k < outstanding; k++)
        for (int i = 0; i < sessions; i++) issue(i);
    pthread_mutex_lock(&done_mu);
    for (;;) {
        long done = atomic_load(&completed);
        long sent = atomic_load(&issued);
        if (sent > phase_target) sent = phase_target;
        if (done >= phase_target || (now_s() > phase_deadline && done >= sent)) break;
        if (now_s() > phase_deadline + 30) {
            fprintf(stderr, "zkload: %ld requests never completed\n", sent - done);
            exit(2);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&done_cv, &done_mu, &ts);
    }
    pthread_mutex_unlock(&done_mu);
    double t1 = now_s(), c1 = client_cpu_s(), s1 = server_cpu_s();
    long done = atomic_load(&completed);
    report(op, done, t1 - t0, c1 - c0, s1 - s0);
    return done;
}

static long run_sync_phase(enum op_kind op, long keys) {
    zhandle_t *zh = handles[0];
    long target = op == OP_DELETE ? keys : ops_per_phase, done = 0;
    atomic_store(&errors, 0);
    phase_op = op;
    phase_keys = keys;
    switches_at_start = server_switches();
    double c0 = client_cpu_s(), s0 = server_cpu_s(), t0 = now_s();
    double deadline = t0 + phase_secs_max;
    char path[PATH_MAX_LEN], buf[4096];
    while (done < target && now_s() < deadline) {
        key_path(path, done);
        double sent = now_s();
        int rc, len = sizeof buf;
        switch (op) {
        case OP_CREATE: rc = zoo_create(zh, path, value, value_bytes, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0); break;
        case OP_SET: rc = zoo_set(zh, path, value, value_bytes, -1); break;
        case OP_GET: rc = zoo_get(zh, path, 0, buf, &len, NULL); break;
        default: rc = zoo_delete(zh, path, -1); break;
        }
        if (rc != ZOK) atomic_fetch_add(&errors, 1);
        lat_us[done++] = (uint32_t)((now_s() - sent) * 1e6);
    }
    double t1 = now_s(), c1 = client_cpu_s(), s1 = server_cpu_s();
    report(op, done, t1 - t0, c1 - c0, s1 - s0);
    return done;
}

static pthread_mutex_t conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_cv = PTHREAD_COND_INITIALIZER;
static int connected_count = 0;

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)path; (void)ctx;
    if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
        pthread_mutex_lock(&conn_mu);
        connected_count++;
        pthread_cond_broadcast(&conn_cv);
        pthread_mutex_unlock(&conn_mu);
    } else if (type == ZOO_SESSION_EVENT && state != ZOO_CONNECTING_STATE) {
        fprintf(stderr, "zkload: session event state %d\n", state);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: zkload HOSTS async|sync [-s sessions] [-o outstanding] [-v value_bytes] "
                    "[-n ops] [-t secs] [-p prefix] [-x phases] [-P pid,...]\n");
    exit(64);
}

int main(int argc, char **argv) {
    if (argc < 3) usage();
    char *hosts = argv[1];
    int sync_mode = strcmp(argv[2], "sync") == 0;
    if (!sync_mode && strcmp(argv[2], "async") != 0) usage();
    char *phases = "create,set,get,delete";
    int c;
    optind = 3;
    while ((c = getopt(argc, argv, "s:o:v:n:t:p:x:P:")) != -1) {
        switch (c) {
        case 's': sessions = atoi(optarg); break;
        case 'o': outstanding = atoi(optarg); break;
        case 'v': value_bytes = atoi(optarg); break;
        case 'n': ops_per_phase = atol(optarg); break;
        case 't': phase_secs_max = atof(optarg); break;
        case 'p': prefix = optarg; break;
        case 'x': phases = optarg; break;
        case 'P':
            for (char *t = strtok(optarg, ","); t && pids_count < PIDS_MAX; t = strtok(NULL, ","))
                pids[pids_count++] = atoi(t);
            break;
        default: usage();
        }
    }
    if (sync_mode) sessions = 1;
    if (sessions < 1 || sessions > SESSIONS_MAX || outstanding < 1 || ops_per_phase < 1 || value_bytes < 0)
        usage();
    value = malloc(value_bytes + 1);
    memset(value, 'v', value_bytes);
    lat_us = calloc(ops_per_phase + 1, sizeof *lat_us);
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);

    char *host_list[SESSIONS_MAX];
    int host_count = 0;
    for (char *t = strtok(hosts, ","); t && host_count < SESSIONS_MAX; t = strtok(NULL, ","))
        host_list[host_count++] = t;
    for (int i = 0; i < sessions; i++) {
        handles[i] = zookeeper_init(host_list[i % host_count], watcher, 30000, 0, 0, 0);
        if (!handles[i]) { perror("zookeeper_init"); return 1; }
    }
    pthread_mutex_lock(&conn_mu);
    double connect_deadline = now_s() + 30;
    while (connected_count < sessions && now_s() < connect_deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&conn_cv, &conn_mu, &ts);
    }
    pthread_mutex_unlock(&conn_mu);
    if (connected_count < sessions) { fprintf(stderr, "zkload: sessions did not connect\n"); return 1; }

    int rc = zoo_create(handles[0], prefix, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (rc != ZOK && rc != ZNODEEXISTS) { fprintf(stderr, "zkload: create %s: %s\n", prefix, zerror(rc)); return 1; }

    long keys = 0;
    char *list = strdup(phases);
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        enum op_kind op;
        if (!strcmp(t, "create")) op = OP_CREATE;
        else if (!strcmp(t, "set")) op = OP_SET;
        else if (!strcmp(t, "get")) op = OP_GET;
        else if (!strcmp(t, "delete")) op = OP_DELETE;
        else usage();
        if (op != OP_CREATE && keys == 0) keys = ops_per_phase; /* znodes made by an earlier run */
        long done = sync_mode ? run_sync_phase(op, keys) : run_async_phase(op, keys);
        if (op == OP_CREATE) keys = done;
        if (op == OP_DELETE) keys = 0;
    }
    for (int i = 0; i < sessions; i++) zookeeper_close(handles[i]);
    return 0;
}
