/* minimal_server: the floors for upper-bench. Four models, all doing the
 * same blocking read -> upper-case -> write-all until EOF, then
 * shutdown(SHUT_WR) and close, in serve():
 *
 *   thread      a blocking accept loop; a new thread per connection
 *   fork        a blocking accept loop; a new forked child per connection
 *   prefork     N children forked at start, each blocking in accept() on the
 *               shared listening socket and serving one connection after
 *               another; the parent reaps and re-forks a child that dies
 *   threadpool  a fixed pool of N threads, each blocking in accept() on the
 *               listening socket and serving one connection after another
 *
 * No limits, no metrics, no admin, no table: thread and fork are what any
 * thread- or fork-per-connection server pays at least; prefork and
 * threadpool are what a server with ready workers pays at least (issue 16).
 *
 * To compare like with like it uses upperd's resource model: a 64 KiB
 * buffer on the worker's stack, 256 KiB thread stacks, TCP_NODELAY, SIGPIPE
 * ignored. fork: children reaped by the kernel (SIGCHLD ignored). prefork:
 * the parent reaps; on SIGTERM or SIGINT it kills its children, waits for
 * every one of them and exits 0 (children also get SIGTERM if the parent
 * dies: PR_SET_PDEATHSIG). threadpool: SIGTERM or SIGINT exits 0.
 *
 *   minimal_server thread|fork|prefork|threadpool [port] [bind] [workers]
 * port 0 = any free port (the default), bind defaults to 127.0.0.1,
 * workers (prefork and threadpool only) defaults to 64. Prints
 * "listening port=N" on stdout once ready. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
  kBufferSize = 64 * 1024,
  kStackSize = 256 * 1024,
  kDefaultWorkers = 64,
  kMaxWorkers = 100000,
};

static void upper_case(unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    p[i] ^= (unsigned char)(((unsigned char)(p[i] - 'a') < 26) << 5);
  }
}

static void serve(int fd) {
  unsigned char buffer[kBufferSize];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    upper_case(buffer, (size_t)n);
    for (ssize_t off = 0; off < n;) {
      ssize_t w = send(fd, buffer + off, (size_t)(n - off), MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) goto done;
      off += w;
    }
  }
  shutdown(fd, SHUT_WR);
done:
  close(fd);
}

/* One accepted connection, or -1 after a reason to try again: EINTR and
 * ECONNABORTED (the peer gave up while queued) retry at once; anything else
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...) backs off 10 ms first, so a worker
 * out of fds waits for one to be closed instead of spinning. */
static int accept_one(int lfd) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0) return fd;
  if (errno != EINTR && errno != ECONNABORTED) usleep(10000);
  return -1;
}

/* Serves connections from the shared listening socket, one after another,
 * forever: a prefork child or a pool thread. */
static void accept_loop(int lfd) {
  for (;;) {
    int fd = accept_one(lfd);
    if (fd >= 0) serve(fd);
  }
}

static void* thread_main(void* arg) {
  serve((int)(intptr_t)arg);
  return NULL;
}

static void* pool_thread_main(void* arg) {
  accept_loop((int)(intptr_t)arg);
  return NULL;
}

static void announce(int lfd) {
  struct sockaddr_in addr;
  socklen_t len = sizeof(addr);
  getsockname(lfd, (struct sockaddr*)&addr, &len);
  printf("listening port=%d\n", ntohs(addr.sin_port));
  fflush(stdout);
}

/* Per connection: a thread or a forked child. */
static int run_per_connection(int lfd, int forking) {
  if (forking) signal(SIGCHLD, SIG_IGN); /* no zombies, no reaper */
  announce(lfd);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kStackSize);
  for (;;) {
    int fd = accept_one(lfd);
    if (fd < 0) continue;
    if (forking) {
      pid_t pid = fork();
      if (pid == 0) {
        close(lfd);
        serve(fd);
        _exit(0);
      }
      close(fd); /* the child has it; on fork failure the client sees EOF */
    } else {
      pthread_t t;
      if (pthread_create(&t, &attr, thread_main, (void*)(intptr_t)fd) != 0) {
        close(fd);
      }
    }
  }
}

/* A fixed pool of threads in accept(); the main thread waits for SIGTERM or
 * SIGINT (blocked in every thread, so only sigwait sees them). */
static int run_threadpool(int lfd, int workers) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kStackSize);
  for (int i = 0; i < workers; ++i) {
    pthread_t t;
    int err = pthread_create(&t, &attr, pool_thread_main,
                             (void*)(intptr_t)lfd);
    if (err != 0) {
      fprintf(stderr, "minimal_server: thread %d of %d: %s\n", i + 1,
              workers, strerror(err));
      return 1;
    }
  }
  announce(lfd);
  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  return 0; /* exit() ends every pool thread with the process */
}

/* Forks one prefork child; -1 if fork failed. The child restores the
 * signals the parent blocks and dies with the parent. */
static pid_t fork_child(int lfd, pid_t parent, const sigset_t* blocked) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(0); /* the parent died before prctl */
  sigprocmask(SIG_UNBLOCK, blocked, NULL);
  accept_loop(lfd);
  _exit(0);
}

/* N children in accept(). The parent blocks SIGCHLD, SIGTERM and SIGINT and
 * takes them with sigtimedwait: SIGCHLD -> reap, re-fork the dead child's
 * slot; SIGTERM/SIGINT -> SIGTERM every child, reap them all, exit 0. A slot
 * whose fork failed is retried every 100 ms. */
static int run_prefork(int lfd, int workers) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGCHLD);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  const pid_t parent = getpid();
  pid_t* children = calloc((size_t)workers, sizeof(pid_t));
  if (children == NULL) {
    perror("minimal_server: calloc");
    return 1;
  }
  int missing = 0;
  for (int i = 0; i < workers; ++i) {
    children[i] = fork_child(lfd, parent, &sigs);
    if (children[i] < 0) ++missing;
  }
  if (missing == workers) {
    perror("minimal_server: fork");
    return 1;
  }
  announce(lfd);
  for (;;) {
    const struct timespec retry = {.tv_sec = 0, .tv_nsec = 100 * 1000000};
    int sig = sigtimedwait(&sigs, NULL, missing ? &retry : NULL);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGCHLD) {
      pid_t pid;
      while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
        for (int i = 0; i < workers; ++i) {
          if (children[i] == pid) {
            children[i] = -1;
            ++missing;
            break;
          }
        }
      }
    }
    for (int i = 0; i < workers && missing; ++i) {
      if (children[i] < 0 && (children[i] = fork_child(lfd, parent, &sigs)) > 0)
        --missing;
    }
  }
  for (int i = 0; i < workers; ++i) {
    if (children[i] > 0) kill(children[i], SIGTERM);
  }
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
  }
  free(children);
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: minimal_server thread|fork|prefork|threadpool [port] "
          "[bind] [workers]\n"
          "  port 0 (default): any free port; bind: 127.0.0.1; workers "
          "(prefork, threadpool): %d\n",
          kDefaultWorkers);
  return 2;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5) return usage();
  const char* model = argv[1];
  const int forking = strcmp(model, "fork") == 0;
  const int prefork = strcmp(model, "prefork") == 0;
  const int pool = strcmp(model, "threadpool") == 0;
  if (!forking && !prefork && !pool && strcmp(model, "thread") != 0) {
    return usage();
  }
  const int port = argc > 2 ? atoi(argv[2]) : 0;
  const char* bind_addr = argc > 3 ? argv[3] : "127.0.0.1";
  int workers = kDefaultWorkers;
  if (argc > 4) {
    char* end = NULL;
    long n = strtol(argv[4], &end, 10);
    if (!(prefork || pool) || *end != '\0' || n < 1 || n > kMaxWorkers) {
      return usage();
    }
    workers = (int)n;
  }
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1 ||
      bind(lfd, (struct sockaddr*)&addr, sizeof(addr)) != 0 ||
      listen(lfd, SOMAXCONN) != 0) {
    perror("minimal_server: bind/listen");
    return 1;
  }
  if (prefork) return run_prefork(lfd, workers);
  if (pool) return run_threadpool(lfd, workers);
  return run_per_connection(lfd, forking);
}
