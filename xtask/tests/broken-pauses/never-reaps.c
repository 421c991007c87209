/* A pause that breaks one promise: it never reaps, so exited children stay zombies.
   SIGCHLD is blocked (not ignored: an ignored SIGCHLD would make the kernel reap for it). */
// harness: fails scenarios/reaping
// harness: saying expected no zombie in the PID namespace of app, found 300
#include <signal.h>
#include <unistd.h>

static void on_term(int signal_number) {
    (void)signal_number;
    const char message[] = "Shutting down, got signal: Terminated\n";
    write(2, message, sizeof message - 1);
    _exit(0);
}

int main(void) {
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child, 0);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    for (;;) pause();
}
