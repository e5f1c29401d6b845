// Returns memory the C allocator holds freed to the operating system (glibc malloc_trim).
//
// Node's threads (the event loop, V8's compiler and collector helpers, the libuv pool, worker threads) each
// allocate from a glibc arena; memory they free stays resident in that arena for reuse, and glibc gives back only
// what sits at the top of a heap. After a burst of work a Custos server held ~100 MiB of freed but resident
// memory this way (docs/operations.md). malloc_trim(0) releases the free pages of every arena.
//
// A plain thread of this module does it, so the event loop never waits for a trim. Every `intervalMs` it reads
// the resident set and the process's CPU time from /proc/self. It trims when the work that used the memory has
// ended (QUIET_INTERVALS intervals in a row in which the process used less than a quarter of a core, after one
// in which it used more: a client that pauses between queries is not an end), when the resident set grew by
// `growthBytes` since the last trim even though work goes on, and once per `periodMs` of uninterrupted work.
// Trimming in the middle of work costs more than it saves: the next buffers fault the released pages back in,
// and the trim holds each arena's lock while it walks it (WADO-RS ran ~20% slower with a trim at every 16 MiB
// of growth).
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/** Quiet intervals in a row that count as the end of work. */
#define QUIET_INTERVALS 4

static atomic_int running;
static atomic_long trims;
static long interval_ms;
static long growth_pages;
static long period_ms;

// Reads a small /proc file into buf; no allocation: it runs beside the threads it trims for.
static ssize_t read_proc(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return n;
}

// Resident pages of this process, or -1.
static long resident_pages(void) {
  char buf[128];
  if (read_proc("/proc/self/statm", buf, sizeof buf) < 0) return -1;
  char *end;
  strtol(buf, &end, 10);  // total program size; the resident set follows
  long resident = strtol(end, &end, 10);
  return resident > 0 ? resident : -1;
}

// User plus system CPU time of this process in clock ticks, or -1 (proc(5): fields 14 and 15 of stat).
static long cpu_ticks(void) {
  char buf[1024];
  if (read_proc("/proc/self/stat", buf, sizeof buf) < 0) return -1;
  char *p = strrchr(buf, ')');  // the command name may hold spaces and parentheses
  if (!p) return -1;
  p++;
  for (int field = 3; field < 14; field++) {  // skip state .. cmajflt
    while (*p == ' ') p++;
    while (*p && *p != ' ') p++;
  }
  char *end;
  long utime = strtol(p, &end, 10);
  long stime = strtol(end, &end, 10);
  return utime + stime;
}

static void trim(void) {
  malloc_trim(0);
  atomic_fetch_add(&trims, 1);
}

static void *watch(void *unused) {
  (void)unused;
  long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (ticks_per_second <= 0) ticks_per_second = 100;
  long base = resident_pages();
  long cpu = cpu_ticks();
  int worked = 0;  // some interval since the last trim was busy
  int quiet = 0;   // quiet intervals in a row
  long since = 0;  // milliseconds since the last trim
  for (;;) {
    struct timespec pause = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
    since += interval_ms;
    long now = resident_pages();
    long cpu_now = cpu_ticks();
    if (now < 0 || cpu_now < 0) continue;
    // Busy: at least a quarter of a core over the interval.
    int busy = (cpu_now - cpu) * 1000 * 4 >= interval_ms * ticks_per_second;
    cpu = cpu_now;
    if (busy) {
      worked = 1;
      quiet = 0;
    } else {
      quiet++;
    }
    if (now < base) base = now;
    int grown = now - base >= growth_pages;
    int ended = worked && quiet >= QUIET_INTERVALS;
    int long_work = worked && since >= period_ms;
    if (grown || ended || long_work) {
      trim();
      base = resident_pages();
      worked = busy;
      since = 0;
    }
  }
  return NULL;
}

static double number_arg(napi_env env, napi_value v) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return -1;
  return d;
}

// start(intervalMs, growthBytes, periodMs): starts the thread once per process; true if this call started it.
static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double interval = argc > 0 ? number_arg(env, argv[0]) : -1;
  double growth = argc > 1 ? number_arg(env, argv[1]) : -1;
  double period = argc > 2 ? number_arg(env, argv[2]) : -1;
  if (interval < 10 || growth < 0 || period < interval) {
    napi_throw_range_error(env, NULL, "start(intervalMs >= 10, growthBytes >= 0, periodMs >= intervalMs)");
    return NULL;
  }
  napi_value result;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&running, &expected, 1)) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  interval_ms = (long)interval;
  long page = sysconf(_SC_PAGESIZE);
  growth_pages = (long)(growth / (double)(page > 0 ? page : 4096));
  period_ms = (long)period;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  int failed = pthread_create(&thread, &attr, watch, NULL);
  pthread_attr_destroy(&attr);
  if (failed) {
    atomic_store(&running, 0);
    napi_throw_error(env, NULL, "could not start the memory return thread");
    return NULL;
  }
  napi_get_boolean(env, true, &result);
  return result;
}

// trim(): returns freed memory now, on the calling thread.
static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  trim();
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

// trims(): how many trims ran in this process.
static napi_value Trims(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int64(env, atomic_load(&trims), &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "start", NAPI_AUTO_LENGTH, Start, NULL, &fn);
  napi_set_named_property(env, exports, "start", fn);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_create_function(env, "trims", NAPI_AUTO_LENGTH, Trims, NULL, &fn);
  napi_set_named_property(env, exports, "trims", fn);
  return exports;
}
