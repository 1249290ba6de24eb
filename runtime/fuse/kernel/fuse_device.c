// fuse_device: the few syscalls a /dev/fuse session needs that Node's fs cannot do from the main loop
// (fs.read on a non-blocking fd goes through the thread pool and gives no readiness signal), with no
// libfuse. JS decodes and encodes the protocol; this file only waits, reads and writes.
//
//   watch(fd, onReadable) -> { close() }   uv_poll on the main loop; calls onReadable() when readable
//   read(fd, buf) -> n | -errno            one read(2)
//   writev(fd, bufs) -> n | -errno         one writev(2) of up to 16 buffers
//   trimHeap() -> 0|1                      malloc_trim(0): give glibc's free heap pages back
//
// Syscall errors are returned as -errno, never thrown: EAGAIN and ENODEV are normal results on
// /dev/fuse and a throw per request would cost more than the read. Only bad arguments throw.
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_IOV 16

// In a poll callback there is no JS caller to throw to: a failed napi call there is a bug, so abort loudly.
#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) napi_fatal_error(__FILE__, NAPI_AUTO_LENGTH, #call " failed", NAPI_AUTO_LENGTH); \
  } while (0)

// In a call from JS, a failed napi call (e.g. an array getter that throws) becomes a JS exception.
#define TRY(call)                                                              \
  do {                                                                         \
    if ((call) != napi_ok) return fail(env, #call " failed");                 \
  } while (0)

static napi_value fail(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, what);
  return NULL;
}

static napi_value type_error(napi_env env, const char* msg) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

// fd: a non-negative integer that fits an int (what the kernel gives).
static int get_fd(napi_env env, napi_value v, int* fd) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0 && d <= INT_MAX) || d != (double)(int)d) return 0;
  *fd = (int)d;
  return 1;
}

// Any ArrayBufferView counts as a Buffer for napi_is_buffer in Node >= 20; a detached one has no data.
static int get_buf(napi_env env, napi_value v, void** data, size_t* len) {
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  return napi_get_buffer_info(env, v, data, len) == napi_ok;
}

static napi_value number(napi_env env, ssize_t n) {
  napi_value r;
  TRY(napi_create_int64(env, (int64_t)n, &r));
  return r;
}

// ---- read / writev ----

static napi_value js_read(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd;
  void* data;
  size_t len;
  ssize_t n;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_fd(env, argv[0], &fd)) return type_error(env, "read: fd must be a non-negative integer");
  if (!get_buf(env, argv[1], &data, &len)) return type_error(env, "read: buf must be a Buffer");
  do n = read(fd, data, len); while (n < 0 && errno == EINTR);
  return number(env, n < 0 ? -errno : n);
}

static napi_value js_writev(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], el;
  struct iovec iov[MAX_IOV];
  uint32_t count, i;
  bool is_array;
  int fd;
  ssize_t n;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_fd(env, argv[0], &fd)) return type_error(env, "writev: fd must be a non-negative integer");
  TRY(napi_is_array(env, argv[1], &is_array));
  if (!is_array) return type_error(env, "writev: bufs must be an array of Buffers");
  TRY(napi_get_array_length(env, argv[1], &count));
  if (count > MAX_IOV) return type_error(env, "writev: at most 16 buffers");
  for (i = 0; i < count; i++) {
    TRY(napi_get_element(env, argv[1], i, &el));
    if (!get_buf(env, el, &iov[i].iov_base, &iov[i].iov_len)) return type_error(env, "writev: bufs must be an array of Buffers");
  }
  // No JS runs from here to the syscall, so no buffer can be detached under it.
  do n = writev(fd, iov, (int)count); while (n < 0 && errno == EINTR);
  return number(env, n < 0 ? -errno : n);
}

// ---- watch ----

typedef struct box_s box_t;

typedef struct {
  uv_poll_t poll;          // first member: the uv handle pointer is the watcher pointer
  napi_env env;
  napi_ref callback;       // strong: the watch owns onReadable until close()
  napi_async_context async;
  box_t* box;
  int closed;
} watcher_t;

// What close() points at. It outlives the watcher (freed when the JS function is collected), so a
// second close() finds w == NULL instead of freed memory.
struct box_s {
  watcher_t* w;
};

static void on_closed(uv_handle_t* h) { free(h); }

// Everything that needs the env is released now, synchronously: the uv close callback may run after
// the env is gone (worker teardown), so it only frees memory.
static void watcher_close(watcher_t* w) {
  if (w->closed) return;
  w->closed = 1;
  if (w->box) w->box->w = NULL;
  w->box = NULL;
  uv_poll_stop(&w->poll);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async);
  uv_close((uv_handle_t*)&w->poll, on_closed);
}

static void on_env_cleanup(void* arg) { watcher_close(arg); }

static void finalize_box(napi_env env, void* data, void* hint) {
  box_t* box = data;
  (void)env;
  (void)hint;
  if (box->w) box->w->box = NULL; // dropped without close(): the watch goes on, as fs.watch would
  free(box);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  watcher_t* w = (watcher_t*)h;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value cb, recv, result, exc;
  (void)status; // errors (POLLERR: the session is gone; libuv stops the poll) show in the next read
  (void)events;
  if (w->closed) return;
  CHECK(napi_open_handle_scope(env, &scope));
  CHECK(napi_get_reference_value(env, w->callback, &cb));
  CHECK(napi_get_global(env, &recv));
  // make_callback, not call_function: it drains process.nextTick and promise jobs afterwards, as
  // Node does after its own I/O callbacks; a throw goes to 'uncaughtException' like any other.
  if (napi_make_callback(env, w->async, recv, cb, 0, NULL, &result) == napi_pending_exception) {
    CHECK(napi_get_and_clear_last_exception(env, &exc));
    napi_fatal_exception(env, exc);
  }
  CHECK(napi_close_handle_scope(env, scope));
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  box_t* box;
  TRY(napi_get_cb_info(env, info, NULL, NULL, NULL, (void**)&box));
  if (box->w) {
    napi_remove_env_cleanup_hook(env, on_env_cleanup, box->w);
    watcher_close(box->w);
  }
  return NULL;
}

static napi_value js_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], handle, close_fn, name;
  napi_valuetype t;
  uv_loop_t* loop;
  watcher_t* w;
  box_t* box;
  int fd, rc, events = UV_READABLE;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_fd(env, argv[0], &fd)) return type_error(env, "watch: fd must be a non-negative integer");
  TRY(napi_typeof(env, argv[1], &t));
  if (t != napi_function) return type_error(env, "watch: onReadable must be a function");
  TRY(napi_get_uv_event_loop(env, &loop));

  // The JS side first: if it fails, nothing is polling yet (and a box with w == NULL is harmless).
  box = calloc(1, sizeof(*box));
  if (!box) return fail(env, "watch: out of memory");
  if (napi_create_function(env, "close", NAPI_AUTO_LENGTH, js_close, box, &close_fn) != napi_ok ||
      napi_add_finalizer(env, close_fn, box, finalize_box, NULL, NULL) != napi_ok) {
    free(box);
    return fail(env, "watch: cannot create close()");
  }
  TRY(napi_create_object(env, &handle));
  TRY(napi_set_named_property(env, handle, "close", close_fn));
  TRY(napi_create_string_utf8(env, "FUSE_DEVICE_WATCH", NAPI_AUTO_LENGTH, &name));

  w = calloc(1, sizeof(*w));
  if (!w) return fail(env, "watch: out of memory");
  w->env = env;
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok) {
    free(w);
    return fail(env, "watch: cannot reference onReadable");
  }
  if (napi_async_init(env, handle, name, &w->async) != napi_ok) {
    napi_delete_reference(env, w->callback);
    free(w);
    return fail(env, "watch: napi_async_init failed");
  }
  // uv_poll_init also makes the fd non-blocking (a readiness loop needs that anyway).
  rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async);
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc)); // e.g. EPERM: a regular file cannot be polled
    return NULL;
  }
  w->box = box;
  box->w = w;
#if UV_VERSION_HEX >= 0x010900
  events |= UV_DISCONNECT;
#endif
  rc = uv_poll_start(&w->poll, events, on_poll);
  if (rc != 0) {
    watcher_close(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, on_env_cleanup, w) != napi_ok) {
    watcher_close(w);
    return fail(env, "watch: napi_add_env_cleanup_hook failed");
  }
  return handle;
}

// The mount's file data travels in 1 MiB Buffers. After the first one is freed glibc serves the rest from
// its heap (its mmap threshold rises), and freed chunks between live ones stay resident: tens of MB after a
// streaming burst. malloc_trim gives those pages back (MADV_DONTNEED) without the cost of mapping every
// buffer afresh (MALLOC_MMAP_THRESHOLD_ halved sequential writes).
static napi_value js_trim_heap(napi_env env, napi_callback_info info) {
  (void)info;
  return number(env, malloc_trim(0));
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"watch", NULL, js_watch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"read", NULL, js_read, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writev", NULL, js_writev, NULL, NULL, NULL, napi_enumerable, NULL},
    {"trimHeap", NULL, js_trim_heap, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  TRY(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  return exports;
}
