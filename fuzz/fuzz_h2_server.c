/* libFuzzer: arbitrary bytes to a server-role HTTP/2 session. */
#include "fuzz_h2_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run(RILL_H2_SERVER, data, size);
    return 0;
}
