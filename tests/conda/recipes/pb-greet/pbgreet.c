#include <stdio.h>

/* Prints the first line of the file at path, or an error. */
int pbgreet(const char *path) {
    char line[256];
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "pb-greet: cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    fputs(line, stdout);
    return 0;
}
