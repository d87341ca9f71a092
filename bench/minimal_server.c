/* minimal_server: the floor for upper-bench. A blocking accept loop; every
 * connection gets its own thread or forked child that does blocking
 * read -> upper-case -> write-all until EOF, then shutdown(SHUT_WR) and close.
 * No limits, no metrics, no admin, no table: what any thread- or
 * fork-per-connection server pays at least.
 *
 * To compare like with like it uses upperd's resource model: a 64 KiB
 * buffer on the worker's stack, 256 KiB thread stacks, TCP_NODELAY, SIGPIPE
 * ignored, children reaped by the kernel (SIGCHLD ignored).
 *
 *   minimal_server thread|fork [port] [bind]     (port 0 = any free port)
 * prints "listening port=N" on stdout once ready. */
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
#include <sys/socket.h>
#include <unistd.h>

enum { kBufferSize = 64 * 1024, kStackSize = 256 * 1024 };

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

static void* thread_main(void* arg) {
  serve((int)(intptr_t)arg);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2 || (strcmp(argv[1], "thread") && strcmp(argv[1], "fork"))) {
    fprintf(stderr, "usage: minimal_server thread|fork [port] [bind]\n");
    return 2;
  }
  const int forking = strcmp(argv[1], "fork") == 0;
  const int port = argc > 2 ? atoi(argv[2]) : 0;
  const char* bind_addr = argc > 3 ? argv[3] : "127.0.0.1";
  signal(SIGPIPE, SIG_IGN);
  if (forking) signal(SIGCHLD, SIG_IGN); /* no zombies, no reaper */

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
  socklen_t len = sizeof(addr);
  getsockname(lfd, (struct sockaddr*)&addr, &len);
  printf("listening port=%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kStackSize);
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) usleep(10000);
      continue;
    }
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
