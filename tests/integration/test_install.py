"""`cmake --install` into a temporary prefix gives a usable library: rill, librill.so (soname),
librill.a, include/rill/*.h, rill.pc and rill(1). The examples build against the installed copy
with nothing but `pkg-config --cflags --libs rill` (the source tree is not on any path), link
with the shared library and, through `pkg-config --static`, with the static one, and serve."""
import glob
import os
import re
import shlex
import signal
import subprocess

import pytest

from conftest import free_port, wait_for_port

SOURCE = os.environ.get("RILL_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")
BUILD = os.environ.get("RILL_BUILD") or os.path.join(SOURCE, "build")
EXAMPLES = sorted(glob.glob(os.path.join(SOURCE, "examples", "*.c")))
WARN = ["-Wall", "-Wextra", "-Werror"]


class Prefix:
    def __init__(self, root):
        self.root = str(root)
        env = {k: v for k, v in os.environ.items() if k not in ("DESTDIR", "PKG_CONFIG_PATH")}
        r = subprocess.run(["cmake", "--install", BUILD, "--prefix", self.root], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        pcs = glob.glob(os.path.join(self.root, "**", "pkgconfig", "rill.pc"), recursive=True)
        assert len(pcs) == 1, f"rill.pc installed {len(pcs)} times: {pcs}"
        self.env = dict(env, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
        self.libdir = self.pkg_config("--variable=libdir")
        self.includedir = self.pkg_config("--variable=includedir")

    def pkg_config(self, *args):
        r = subprocess.run(["pkg-config", *args, "rill"], env=self.env, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def path(self, *parts):
        return os.path.join(self.root, *parts)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    return Prefix(tmp_path_factory.mktemp("prefix"))


def dynamic_section(path):
    return subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                          check=True).stdout


def test_layout(prefix):
    rill = prefix.path("bin", "rill")
    assert os.access(rill, os.X_OK)
    assert prefix.includedir == prefix.path("include")
    installed = sorted(os.listdir(prefix.path("include", "rill")))
    assert installed == sorted(os.listdir(os.path.join(SOURCE, "include", "rill")))
    with open(prefix.path("share", "man", "man1", "rill.1")) as a, \
            open(os.path.join(SOURCE, "docs", "rill.1")) as b:
        assert a.read() == b.read()

    lib = prefix.libdir
    assert lib.startswith(prefix.root + os.sep)
    version = prefix.pkg_config("--modversion")
    real = f"librill.so.{version}"
    assert os.path.isfile(os.path.join(lib, real)) and not os.path.islink(os.path.join(lib, real))
    assert os.readlink(os.path.join(lib, "librill.so.0")) == real
    assert os.readlink(os.path.join(lib, "librill.so")) == "librill.so.0"
    assert re.search(r"\(SONAME\)\s+Library soname: \[librill\.so\.0\]",
                     dynamic_section(os.path.join(lib, real)))
    members = subprocess.run(["ar", "t", os.path.join(lib, "librill.a")], capture_output=True,
                             text=True, check=True).stdout.split()
    assert len(members) > 20 and all(m.endswith(".o") for m in members)


def test_installed_binaries_stand_alone(prefix):
    version = prefix.pkg_config("--modversion")
    r = subprocess.run([prefix.path("bin", "rill"), "--version"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout.strip() == f"rill {version}"
    for path in (prefix.path("bin", "rill"), os.path.join(prefix.libdir, "librill.so")):
        dyn = dynamic_section(path)
        assert os.path.realpath(BUILD) not in dyn and BUILD not in dyn, f"{path} points into the build"
    assert "librill" not in subprocess.run(["ldd", prefix.path("bin", "rill")], capture_output=True,
                                           text=True, check=True).stdout


def test_pkg_config_flags(prefix):
    assert prefix.pkg_config("--cflags") == f"-I{prefix.includedir}"
    libs = prefix.pkg_config("--libs").split()
    assert libs == [f"-L{prefix.libdir}", "-lrill"]
    requires = prefix.pkg_config("--print-requires-private")
    assert {"libssl", "libcrypto", "zlib"} <= {line.split()[0] for line in requires.splitlines()}
    static = prefix.pkg_config("--static", "--libs").split()
    assert {"-lrill", "-lssl", "-lcrypto", "-lz", "-pthread"} <= set(static)


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_all_installed_headers_together(prefix, tmp_path, lang):
    src = tmp_path / ("all.c" if lang == "c" else "all.cpp")
    includes = "".join(f"#include <rill/{h}>\n"
                       for h in sorted(os.listdir(prefix.path("include", "rill"))))
    main = "int main(void)" if lang == "c" else "int main()"
    src.write_text(includes + main + " { return rill_strerror(RILL_OK) == 0; }\n")
    cc = "gcc" if lang == "c" else "g++"
    cmd = [cc, *WARN, str(src), "-o", str(tmp_path / "all"),
           *shlex.split(prefix.pkg_config("--cflags", "--libs"))]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=prefix.env)
    assert r.returncode == 0, r.stderr


def build_example(prefix, src, out, static):
    if static:  # librill.a, with what it needs from Requires.private / Libs.private
        libs = ["-l:librill.a" if f == "-lrill" else f
                for f in shlex.split(prefix.pkg_config("--static", "--libs"))]
    else:
        libs = shlex.split(prefix.pkg_config("--libs"))
    cmd = ["gcc", *WARN, *shlex.split(prefix.pkg_config("--cflags")), src, "-o", str(out), *libs]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(str(out)),
                       env=prefix.env)
    assert r.returncode == 0, f"{shlex.join(cmd)}\n{r.stderr}"
    return out


def test_examples_exist():
    assert any(os.path.basename(e) == "echo_server.c" for e in EXAMPLES)


@pytest.mark.parametrize("static", [False, True], ids=["shared", "static"])
@pytest.mark.parametrize("src", EXAMPLES, ids=[os.path.basename(e) for e in EXAMPLES])
def test_example_builds_against_installed_copy(prefix, tmp_path, src, static):
    exe = build_example(prefix, src, tmp_path / os.path.basename(src)[:-2], static)
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True,
                         env=dict(prefix.env, LD_LIBRARY_PATH=prefix.libdir)).stdout
    if static:
        assert "librill" not in ldd
    else:
        assert f"{prefix.libdir}/librill.so.0" in ldd


def curl(*args, data=None):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args], input=data,
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("static", [False, True], ids=["shared", "static"])
def test_echo_server_from_installed_copy_serves(prefix, tmp_path, static):
    src = os.path.join(SOURCE, "examples", "echo_server.c")
    exe = build_example(prefix, src, tmp_path / "echo_server", static)
    port = free_port()
    env = dict(os.environ, LD_LIBRARY_PATH=prefix.libdir)
    proc = subprocess.Popen([str(exe), "--listen", f"127.0.0.1:{port}", "--tls-listen", "none",
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    try:
        wait_for_port(port, proc)
        maps = open(f"/proc/{proc.pid}/maps").read()
        loaded = {line.split()[-1] for line in maps.splitlines() if "librill" in line}
        if static:
            assert not loaded
        else:  # the installed library, not the build's
            assert loaded == {os.path.join(prefix.libdir, "librill.so." + prefix.pkg_config("--modversion"))}

        url = f"http://127.0.0.1:{port}/echo"
        body = b"hello from an installed rill\n" * 100
        out = curl("--http2-prior-knowledge", "-H", "content-type: text/plain", "--data-binary",
                   "@-", "-w", "|%{http_version} %{content_type}", url, data=body)
        assert out == body + b"|2 text/plain"
        out = curl("--http1.1", "-w", "|%{http_version} %{response_code}",
                   f"http://127.0.0.1:{port}/trailers")
        assert out.startswith(b"a body, then trailers\n") and out.endswith(b"|1.1 200")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert rc == 0, proc.stderr.read().decode(errors="replace")
