/* Fuzz target: a server-role WebSocket codec (with and without permessage-deflate) fed arbitrary
 * bytes as if from a client. */
#include "fuzz_ws_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ws_run(RILL_WS_SERVER, data, size);
    return 0;
}
