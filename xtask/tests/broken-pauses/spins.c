/* A pause that breaks one promise: it spins instead of sleeping. */
// harness: fails scenarios/idle
// harness: saying expected pause to use at most 10 ms of CPU over 1000 ms of waiting
#include <signal.h>
#include <unistd.h>

static void on_term(int signal_number) {
    (void)signal_number;
    const char message[] = "Shutting down, got signal: Terminated\n";
    write(2, message, sizeof message - 1);
    _exit(0);
}

int main(void) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    for (volatile unsigned long turns = 0;; turns++) {
    }
}
