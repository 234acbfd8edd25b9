/* libFuzzer: arbitrary bytes to a client-role HTTP/2 session with requests in flight. */
#include "fuzz_h2_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run(RILL_H2_CLIENT, data, size);
    return 0;
}
