/* A reference for `cargo xtask compare`: the behaviour of Kubernetes' pause.c, written here
   from its documented contract, for comparison only (podlab's pause is pause/). Signal
   handlers installed one by one (a signal that comes first is default-handled), reaping in a
   SIGCHLD handler, a message and exit(3) inside the shutdown handler. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

static void shut_down(int signal_number) {
    psignal(signal_number, "Shutting down, got signal");
    exit(0);
}

static void reap(int signal_number) {
    (void)signal_number;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    for (int index = 1; index < argc; index++) {
        if (strcasecmp(argv[index], "-v") == 0) {
            printf("pause.c-like reference (podlab)\n");
            return 0;
        }
    }
    if (getpid() != 1) {
        fprintf(stderr, "Warning: pause should be the first process\n");
    }
    struct sigaction down = {.sa_handler = shut_down};
    if (sigaction(SIGINT, &down, NULL) < 0) {
        return 1;
    }
    if (sigaction(SIGTERM, &down, NULL) < 0) {
        return 2;
    }
    struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    if (sigaction(SIGCHLD, &child, NULL) < 0) {
        return 3;
    }
    for (;;) {
        pause();
    }
    fprintf(stderr, "Error: infinite loop terminated\n");
    return 42;
}
