#include <stdio.h>

static const char *paths[] = {
    PREFIX,
    PREFIX "/lib/pb-longbin/a/rather/long/suffix/that/follows/the/prefix/in/one/string/libpblong.so.1.2.3",
    PREFIX "/lib:" PREFIX "/share",
};

int main(void) {
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++)
        puts(paths[i]);
    return 0;
}
