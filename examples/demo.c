/* Demonstrates nothing yet: a placeholder for the demo that `make demo` runs (examples/run_demo.sh
   starts a throwaway redis-server and sets RSBUS_URL). */
#define _POSIX_C_SOURCE 200809L
#define RSBUS_IMPLEMENTATION
#include "rsbus.h"

#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *url = getenv("RSBUS_URL");
    printf("demo: not written yet (RSBUS_URL=%s, rsbus %s)\n", url ? url : "(unset)", RSBUS_VERSION_STRING);
    return 0;
}
