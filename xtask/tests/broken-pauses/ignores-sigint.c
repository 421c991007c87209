/* A pause that breaks one promise: SIGINT does not stop it. */
// harness: fails scenarios/shutdown-sigint
// harness: saying expected pause to exit within 10000 ms, it is still running
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void on_term(int signal_number) {
    (void)signal_number;
    const char message[] = "Shutting down, got signal: Terminated\n";
    write(2, message, sizeof message - 1);
    _exit(0);
}

static void on_int(int signal_number) {
    (void)signal_number;
}

int main(void) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_int);
    for (;;) pause();
}
