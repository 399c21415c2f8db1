// zlib for RmapTrace's gzip trace files (Debian: zlib1g-dev).
#include <zlib.h>
