/* A pause that breaks one promise: any signal but SIGCHLD ends it, where only SIGINT and
   SIGTERM should (a SIGHUP or SIGUSR1 from a node's tooling takes the whole pod down). */
// harness: fails scenarios/long-lived
// harness: saying cannot send SIGUSR1 to pause
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        int number = sigwaitinfo(&all, NULL);
        if (number == SIGCHLD) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
        } else if (number > 0) {
            const char message[] = "Shutting down, got a signal\n";
            write(2, message, sizeof message - 1);
            return 0;
        }
    }
}
