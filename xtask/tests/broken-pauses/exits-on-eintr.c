/* A pause that breaks one promise: a spurious wake-up ends it. After SIGSTOP and SIGCONT the
   kernel ends sigwaitinfo with EINTR, and this loop takes that for the end. */
// harness: fails scenarios/long-lived
// harness: saying container pause is not running (it exited with 42)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        int number = sigwaitinfo(&all, NULL);
        if (number == SIGINT || number == SIGTERM) {
            const char message[] = "Shutting down, got a signal\n";
            write(2, message, sizeof message - 1);
            return 0;
        }
        if (number == SIGCHLD) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
        } else if (number < 0) {
            return 42;
        }
    }
}
