/* A pause that breaks one promise: it keeps a descriptor open beyond 0, 1 and 2 (here the
   directory it looked at on start-up), which pins what it points at for the pod's life. */
// harness: fails scenarios/pause-process
// harness: saying expected the open files of pause to match
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    open("/", O_RDONLY | O_DIRECTORY);
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
        }
    }
}
