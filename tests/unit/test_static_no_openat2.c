/* Static files where openat2 does not exist (kernels before 5.6, some sandboxes, valgrind): a
 * seccomp filter makes openat2 fail with ENOSYS in this process, and files must still be served
 * from below the root only, with every symlink refused. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/static_files.h"

static char tmp_root[64];

static void write_file(const char *rel, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* openat2 -> ENOSYS, everything else allowed. */
static int deny_openat2(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof *filter, .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmp_root, "/tmp/rill-static2-XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    char path[256];
    snprintf(path, sizeof path, "%s/root", tmp_root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/root/dir", tmp_root);
    mkdir(path, 0755);
    write_file("root/index.html", "home");
    write_file("root/dir/page.txt", "page");
    write_file("secret.txt", "outside the root");
    snprintf(path, sizeof path, "%s/root/escape", tmp_root);
    if (symlink("../secret.txt", path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/root/inside", tmp_root);
    if (symlink("index.html", path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/root/linkdir", tmp_root);
    if (symlink("..", path) != 0)
        return -1;
    return deny_openat2();
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

static enum rill_static_status open_target(const char *target, char *content, size_t cap)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/root", tmp_root);
    int err = 0;
    rill_static_root *root = rill_static_root_open(dir, &err);
    assert_non_null(root);
    struct rill_static_file f;
    enum rill_static_status st = rill_static_open(root, target, strlen(target), NULL, 0, &f);
    if (st == RILL_STATIC_OK) {
        ssize_t n = read(f.fd, content, cap - 1);
        assert_true(n >= 0);
        content[n] = '\0';
        close(f.fd);
    }
    rill_static_root_close(root);
    return st;
}

static void the_filter_is_in_force(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0), -1);
    assert_int_equal(errno, ENOSYS);
}

static void files_below_the_root_are_served(void **state)
{
    (void)state;
    char body[64];
    assert_int_equal(open_target("/index.html", body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "home");
    assert_int_equal(open_target("/dir/page.txt?x=1", body, sizeof body), RILL_STATIC_OK);
    assert_string_equal(body, "page");
    assert_int_equal(open_target("/", body, sizeof body), RILL_STATIC_OK); /* the index */
    assert_string_equal(body, "home");
    assert_int_equal(open_target("/dir/none.txt", body, sizeof body), RILL_STATIC_NOT_FOUND);
}

static void every_symlink_is_refused(void **state)
{
    (void)state;
    char body[64];
    assert_int_equal(open_target("/escape", body, sizeof body), RILL_STATIC_FORBIDDEN);
    assert_int_equal(open_target("/inside", body, sizeof body), RILL_STATIC_FORBIDDEN);
    assert_int_equal(open_target("/linkdir/secret.txt", body, sizeof body), RILL_STATIC_FORBIDDEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_filter_is_in_force),
        cmocka_unit_test(files_below_the_root_are_served),
        cmocka_unit_test(every_symlink_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
