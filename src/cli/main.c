/* `rill`: the command-line front end; dispatches to one subcommand per file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "rill/common.h"

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
#define RILL_COMMAND(name, summary) {#name, summary, rill_cmd_##name},
#include "cli/commands.def"
#undef RILL_COMMAND
};

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "rill %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'rill %s --help'.\n", cmd);
    return RILL_EXIT_USAGE;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void print_help(FILE *out)
{
    fprintf(out, "usage: rill <command> [options]\n\n"
                 "rill is an HTTP/2 stack: protocol library, server and client.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nOptions:\n"
                 "  -h, --help     show this help\n"
                 "  --version      show the version\n\n"
                 "Run 'rill <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return RILL_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (cli_is_help(name)) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("rill %s\n", rill_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (name[0] == '-')
        fprintf(stderr, "rill: unknown option '%s'\n", name);
    else
        fprintf(stderr, "rill: unknown command '%s'\n", name);
    fprintf(stderr, "Try 'rill --help'.\n");
    return RILL_EXIT_USAGE;
}
