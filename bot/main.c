/* haibot: argument parsing and wiring only. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("haibot 0.1.0\n");
        return 0;
    }
    return 0;
}
