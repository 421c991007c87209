/* A pause that breaks one promise: it stops by itself after a while (its wait ends on a
   timeout, and the loop takes that for the end). */
// harness: fails scenarios/long-lived
// harness: saying to run for 60000 ms, it stopped after
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    const struct timespec timeout = {20, 0};
    for (;;) {
        int number = sigtimedwait(&all, NULL, &timeout);
        if (number == SIGINT || number == SIGTERM) {
            const char message[] = "Shutting down, got a signal\n";
            write(2, message, sizeof message - 1);
            return 0;
        }
        if (number == SIGCHLD) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
        } else if (number < 0 && errno == EAGAIN) {
            return 42;
        }
    }
}
