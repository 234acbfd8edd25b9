/* Shared helpers for the `rill` subcommands. */
#ifndef RILL_CLI_H
#define RILL_CLI_H

#include <stdbool.h>

#define RILL_COMMAND(name, summary) int rill_cmd_##name(int argc, char **argv);
#include "cli/commands.def"
#undef RILL_COMMAND

/* Exit status for bad usage, as every command uses it. */
#define RILL_EXIT_USAGE 2

/* Prints "rill <cmd>: <message>" and a hint to stderr; returns RILL_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True if arg is -h or --help. */
bool cli_is_help(const char *arg);

#endif
