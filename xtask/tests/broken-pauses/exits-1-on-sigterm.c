/* A pause that breaks one promise: it exits 1, not 0, on SIGTERM. */
// harness: fails scenarios/shutdown
// harness: on cri fails scenarios/shutdown-sigterm (stopping a CRI sandbox is a SIGKILL: SIGTERM reaches pause only through its task)
// harness: saying expected pause to exit with code 0, it exited with 1
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void on_term(int signal_number) {
    (void)signal_number;
    const char message[] = "Shutting down, got signal: Terminated\n";
    write(2, message, sizeof message - 1);
    _exit(1);
}

int main(void) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    for (;;) pause();
}
