/* A pause that breaks one promise: it reaps one child per SIGCHLD. SIGCHLD does not queue:
   children that exit together send one, and the others stay zombies. */
// harness: fails scenarios/long-lived
// harness: saying expected the children of pause to equal "", got
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int signal_number) {
    (void)signal_number;
    const char message[] = "Shutting down, got signal: Terminated\n";
    write(2, message, sizeof message - 1);
    _exit(0);
}

static void on_child(int signal_number) {
    (void)signal_number;
    waitpid(-1, NULL, WNOHANG);
}

int main(void) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGCHLD, on_child);
    for (;;) pause();
}
