# Doxygen input filter for include/rill/*.h (see docs/Doxyfile): the headers use plain C comments,
# which doxygen ignores, so this turns them into documentation comments as doxygen reads them
# (the files themselves are not changed):
#   - the comment that opens a file documents the file;
#   - section rulers ("/* ---- name ---- */") stay plain comments;
#   - a comment after code on the same line documents that code (a member, an enumerator);
#   - any other comment documents the declaration that follows it.
1,/\*\//s|\*/|@file */|
1s|^/\* |/** |
/^[[:space:]]*\/\* -{3,}.*-{3,}[[:space:]]*\*\/[[:space:]]*$/b
s|^([[:space:]]*)/\* -{3,}.*-{3,}[[:space:]]*$|\1/**|
s|^([[:space:]]*[^[:space:]/*].*)/\* |\1/**< |
s|^([[:space:]]*)/\* |\1/** |
